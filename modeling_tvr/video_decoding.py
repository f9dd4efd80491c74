"""Reading the sampled frames of a video file with PyAV, by seeking or by decoding straight through."""

import os
from dataclasses import dataclass

import av
import numpy as np

from .frame_sampling import SLICE_UNIFORM, FrameSamplingError, sample_frame_indices

# Decode strategies. "decode" walks the stream from the start and converts only the wanted frames; "seek" reads the
# key-frame positions from the packets and jumps over every group of pictures that holds no wanted frame. Seeking
# wins once wanted frames lie far apart (bench/video_decoding.py).
STRATEGIES = ("auto", "decode", "seek")
# "auto" seeks when wanted frames are on average more than this many frames apart.
AUTO_SEEK_MIN_GAP = 50


class VideoReadError(ValueError):
    """
    A video could not be read or sampled: a missing, truncated or corrupt file, a file without a video stream,
    a zero-length video, or a segment outside the video. `source` names the video and `reason` says what is wrong.
    """

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


@dataclass(frozen=True)
class VideoFrames:
    """Sampled frames `[F, H, W, 3]` uint8 and their indices in the video."""

    frames: np.ndarray
    indices: np.ndarray


def _stream_frame_count(stream: "av.video.stream.VideoStream", fps: float) -> tuple[int, bool]:
    """Frames in the stream and whether the container states it (True) or it is estimated from the duration."""
    if stream.frames:
        return int(stream.frames), True
    if stream.duration is not None:
        return int(round(float(stream.duration * stream.time_base) * fps)), False
    container_duration = stream.container.duration
    if container_duration:
        return int(round(container_duration / av.time_base * fps)), False
    return 0, False


def _decode_through(container, stream, indices: np.ndarray) -> dict[int, np.ndarray]:
    wanted = set(indices.tolist())
    last_wanted = int(indices.max())
    frames: dict[int, np.ndarray] = {}
    for position, frame in enumerate(container.decode(stream)):
        if position in wanted:
            frames[position] = frame.to_ndarray(format="rgb24")
        if position >= last_wanted:
            break
    return frames


def _keyframe_pts(container, stream) -> list[int]:
    """Presentation times of the key frames, read from the packets without decoding (a few ms per minute)."""
    keys = sorted(packet.pts for packet in container.demux(stream) if packet.is_keyframe and packet.pts is not None)
    return keys or [stream.start_time or 0]


def _decode_by_seeking(container, stream, indices: np.ndarray, fps: float) -> dict[int, np.ndarray]:
    """
    Jumps to the key frame before a wanted frame only when that skips frames: when the key frame lies beyond the
    last decoded frame. Otherwise it decodes on, so seeking never decodes a frame twice.
    """
    time_base = float(stream.time_base)
    start_pts = stream.start_time or 0
    keyframe_pts = _keyframe_pts(container, stream)
    keyframe_index = np.array([round((pts - start_pts) * time_base * fps) for pts in keyframe_pts])
    frames: dict[int, np.ndarray] = {}
    decoder = None
    current = -1  # index of the last decoded frame
    for index in sorted(set(indices.tolist())):
        key = int(np.searchsorted(keyframe_index, index, side="right")) - 1
        if decoder is None or keyframe_index[max(key, 0)] > current:
            container.seek(int(keyframe_pts[max(key, 0)]), stream=stream, backward=True, any_frame=False)
            decoder = container.decode(stream)
        for frame in decoder:
            current = int(round((frame.pts - start_pts) * time_base * fps)) if frame.pts is not None else current + 1
            if current >= index:
                frames[index] = frame.to_ndarray(format="rgb24")
                break
        else:
            break  # the stream ended before this frame
    return frames


def read_video_frames(
    path: str | os.PathLike,
    start: float | None = None,
    end: float | None = None,
    max_frames: int = 12,
    video_framerate: float = 1.0,
    slice_framepos: int = SLICE_UNIFORM,
    strategy: str = "auto",
) -> VideoFrames:
    """
    Decodes the frames that `sample_frame_indices` selects from a video file (any container FFmpeg reads).

    Args:
        path: the video file.
        start, end: an optional segment in seconds (None: the whole video).
        max_frames, video_framerate, slice_framepos: the sampling options (see `sample_frame_indices`).
        strategy: "decode" (walk the stream), "seek" (jump to each frame) or "auto" (seek when frames are far apart).

    Raises:
        VideoReadError: naming the file and the reason, for every way the file can fail.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}.")
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise VideoReadError(source, "file not found" if not os.path.exists(source) else "not a regular file")
    try:
        with av.open(source) as container:
            if not container.streams.video:
                raise VideoReadError(source, "the file has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            num_frames, exact_count = _stream_frame_count(stream, fps)
            indices = sample_frame_indices(num_frames, fps, start, end, video_framerate, max_frames, slice_framepos)
            mean_gap = (indices[-1] - indices[0]) / max(1, len(indices) - 1)
            if strategy == "seek" or (strategy == "auto" and mean_gap > AUTO_SEEK_MIN_GAP):
                decoded = _decode_by_seeking(container, stream, indices, fps)
            else:
                decoded = _decode_through(container, stream, indices)
    except FrameSamplingError as error:
        raise VideoReadError(source, str(error)) from None
    except EOFError as error:  # PyAV's EOFError is raised when a file holds no decodable data at all
        raise VideoReadError(source, f"the file ends before any frame (zero-length or truncated): {error}") from error
    except (av.error.FFmpegError, OSError) as error:
        raise VideoReadError(
            source, f"cannot decode ({type(error).__name__}: {error}); the file is corrupt, truncated or not a video"
        ) from error
    missing = [int(i) for i in indices if int(i) not in decoded]
    if missing:
        if exact_count or not decoded:
            raise VideoReadError(
                source,
                f"the stream ends before frame {missing[0]} although it announces {num_frames} frames; "
                "the file is probably truncated",
            )
        # The frame count was estimated from the duration: use the last frame the stream really has.
        last = decoded[max(decoded)]
        decoded.update({index: last for index in missing})
    return VideoFrames(frames=np.stack([decoded[int(i)] for i in indices]), indices=indices)
