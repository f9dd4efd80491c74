"""Reading the sampled frames of a video file with PyAV, by presentation time, by seeking or decoding straight through.

The authors' sampling names frames by position at the video's average frame rate (frame `k` is second `k / fps`).
Here that position is taken to mean what it means on a constant-rate file, the frame shown at that second, and frames
are found by their presentation timestamps, read from the packets first (no decoding). So the same seconds are
returned on files whose rate changes, whose container states no duration or frame count (WebM / Matroska written to a
pipe, raw H.264), whose timestamps do not start at 0 (MPEG-TS), or restart where recordings were joined (MPEG-TS
segments put together with `cat`: played in file order, as players do); seeking is used only in containers whose index
can be trusted, and checked even there. Frames are turned as the display matrix asks (phone clips), very large frames
are reduced in the decoder's scaler before conversion, and frames above `max_pixels` are refused before decoding.

Work that changes no returned pixel is skipped: the packets read for the timestamps are decoded without reading the file
again, only the wanted frames are converted to RGB, and in H.264 the frames no other frame is predicted from (about
half of a usual file's) are not decoded unless wanted; should a wanted frame go missing that way, every frame is
decoded again.
"""

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import av
import numpy as np

from .frame_sampling import SLICE_UNIFORM, FrameSamplingError, sample_frame_indices

# Decode strategies. "decode" walks the stream from the start and converts only the wanted frames; "seek" jumps to the
# key frame before each wanted frame when that skips frames. Seeking wins once wanted frames lie far apart
# (bench/video_decoding.py); it is only used in containers with a reliable index (`_SEEKABLE_FORMATS`).
STRATEGIES = ("auto", "decode", "seek")
# "auto" seeks when wanted frames are on average more than this many frames apart.
AUTO_SEEK_MIN_GAP = 50
# Containers whose seeking lands where asked: MP4 / MOV (sample tables) and Matroska / WebM with cues. MPEG-TS seeks
# by byte position and lands seconds off; a stream without duration has no index to seek with.
_SEEKABLE_FORMATS = ("mov", "mp4", "matroska", "webm")
# Default limit on pixels per frame: 8192 x 4320 (DCI 8K). Larger frames are refused unless the caller raises it.
DEFAULT_MAX_PIXELS = 8192 * 4320
# Frames whose shortest side is this many times the size the processor resizes to are first reduced (area
# filter, in FFmpeg's scaler) to `_REDUCED_FACTOR` times it; smaller frames are converted at full size, as the authors'
# pipeline does, so their pixels are unchanged.
_REDUCE_ABOVE_FACTOR = 8
_REDUCED_FACTOR = 4
# Demuxer flags (libavformat's AVFMT_*). Raw elementary streams (.h264, .hevc, .m2v) carry no timestamps of their own;
# MPEG-TS / MPEG-PS (and Ogg, FLV live, HLS) allow timestamps to restart or jump, as at the join of recordings put
# together with `cat`.
_AVFMT_NOTIMESTAMPS = 0x0080
_AVFMT_TS_DISCONT = 0x0200
# FFmpeg's own rule for those formats (ffmpeg's `dts_delta_threshold`): a decode timestamp more than a tenth of a
# second behind the one before, or more than 10 s ahead of it, starts a new run of timestamps.
_DISCONTINUITY_BACK_S = 0.1
_DISCONTINUITY_AHEAD_S = 10.0
# Codecs whose decoders, told to discard non-reference frames (AVDISCARD_NONREF), drop only frames that no other frame
# is predicted from (H.264: nal_ref_idc 0), so every frame they keep decodes to the same pixels. Half the frames of a
# usual H.264 file (x264's B-frames) are such frames. Left out: HEVC, whose "sub-layer non-reference" pictures may still
# be referenced from higher temporal layers, and codecs whose packets can hold more than one frame (MPEG-4 part 2).
_SKIP_NONREF_CODECS = ("h264",)
# Files up to this size keep the packets their timeline pass read, so decoding needs no second open and demux.
_KEEP_PACKETS_MAX_BYTES = 64 * 1024**2


def check_decode_strategy(strategy: object, name: str = "strategy") -> None:
    """Check that `strategy` is one of `STRATEGIES`.

    Args:
        strategy (`object`):
            The value to check.
        name (`str`, *optional*, defaults to `"strategy"`):
            The option as the caller spells it, for the message.

    Raises:
        ValueError: If `strategy` is not one of `STRATEGIES`.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"{name} must be one of {STRATEGIES}, got {strategy!r}.")


class VideoReadError(ValueError):
    """A video could not be read or sampled.

    Raised for a missing, truncated or corrupt file, a file without a video stream, a zero-length video, a segment
    outside the video, or frames above the pixel limit. The message is built from the fields, so a caller that knows a
    better position asks `at` for a new error rather than editing the text.

    Args:
        source (`str`):
            Names the video.
        reason (`str`):
            Says what is wrong.
        position (`int`, *optional*):
            The video's place in the list `where` names, when known.
        where (`str`, *optional*, defaults to `"the batch"`):
            The list `position` counts in (the processor's batch, the pipeline's input).
    """

    def __init__(self, source: str, reason: str, position: int | None = None, where: str = "the batch"):
        self.source = source
        self.reason = reason
        self.position = position
        self.where = where
        located = "" if position is None else f" (video {position} of {where})"
        super().__init__(f"{source}: {reason}{located}")

    def at(self, position: int, where: str = "the batch") -> "VideoReadError":
        """Return the same failure, as video `position` of `where`."""
        return type(self)(self.source, self.reason, position, where)

    def __reduce__(self):
        # Rebuilt from the fields (the default would call the class with the message alone), so the error crosses
        # process boundaries such as data-loader workers intact.
        return type(self), (self.source, self.reason, self.position, self.where)


# A saved model or processor carries a copy of this file, which transformers imports as a module of its own
# (`transformers_modules.<folder>.video_decoding`) when loading with `trust_remote_code=True`. Where the modeling_tvr
# package is installed, that copy raises the package's class, so that `except modeling_tvr.VideoReadError` (and the
# search index, which records unreadable files) catches errors from either copy: `except` matches by class identity,
# not by name. Inside `try` so that transformers does not list the package as a requirement of the saved code.
if __name__ != "modeling_tvr.video_decoding":
    try:  # noqa: SIM105 (transformers' import scan skips `try` blocks, not `contextlib.suppress`)
        from modeling_tvr.video_decoding import VideoReadError  # noqa: F811
    except ImportError:
        pass  # the package is not installed: the copy's own class above is the only one there is


@dataclass(frozen=True)
class VideoFrames:
    """The sampled frames of a video and where they come from.

    Args:
        frames (`np.ndarray`):
            The uint8 frames `[F, H, W, 3]`.
        indices (`np.ndarray`):
            Their indices in the video (positions at its average frame rate).
    """

    frames: np.ndarray
    indices: np.ndarray


@dataclass(frozen=True)
class _Timeline:
    """The video stream's frames in display order: their timestamps (stream time base) and which are key frames.

    `pts` is None when the stream carries no timestamps (raw H.264): frames are then known by position only. Where the
    timestamps restart (joined MPEG-TS recordings) the frames fall into segments, each a run of timestamps in file
    order: `pts[starts[s]:starts[s + 1]]` are segment `s`'s, sorted, and a frame is known by (segment, pts).
    """

    pts: np.ndarray | None
    count: int
    keyframe_pts: np.ndarray
    starts: np.ndarray  # where each segment begins in `pts`, the first at 0

    @property
    def segments(self) -> int:
        return len(self.starts)

    def segment_ends(self) -> list[int]:
        """The last pts of each segment: a frame decoded after a later timestamp belongs to a later segment."""
        return self.pts[np.append(self.starts[1:], len(self.pts)) - 1].tolist()

    def seconds(self, time_base: float, frame_duration: float) -> np.ndarray:
        """Each frame's time in seconds from the first; each segment starts one frame after the one before ends."""
        times = (self.pts - self.pts[0]) * time_base
        if self.segments == 1:
            return times
        restarts = times[self.starts[1:] - 1] + frame_duration - times[self.starts[1:]]
        shifts = np.concatenate(([0.0], np.cumsum(restarts)))
        return times + np.repeat(shifts, np.diff(np.append(self.starts, len(times))))

    def key(self, ordinal: int) -> tuple[int, int]:
        """The frame at `ordinal` in display order, as (segment, pts)."""
        return int(np.searchsorted(self.starts, ordinal, side="right")) - 1, int(self.pts[ordinal])


def _segment_starts(dts: np.ndarray, time_base: float) -> np.ndarray:
    """Packet positions (decode order) where a run of decode timestamps begins, by FFmpeg's discontinuity rule.

    `dts` holds NaN where a packet has no decode timestamp; such packets stay in the run before them.
    """
    known = np.flatnonzero(~np.isnan(dts))
    steps = np.diff(dts[known]) * time_base
    jumps = (steps < -_DISCONTINUITY_BACK_S) | (steps > _DISCONTINUITY_AHEAD_S)
    return np.concatenate(([0], known[1:][jumps]))


def _read_timeline(container, stream, keep: list | None = None) -> _Timeline:
    """Read every frame's timestamp from the packets, without decoding (the cost of reading the file once).

    The packets read are appended to `keep` when given, for decoding without reading the file again.
    """
    pts, dts, keys, count, timestamped = [], [], [], 0, True
    for packet in container.demux(stream):
        if packet.size == 0:  # the flush packet at the end
            continue
        count += 1
        if keep is not None:
            keep.append(packet)
        if packet.pts is None:
            timestamped = False
            continue
        pts.append(packet.pts)
        dts.append(packet.dts)
        if packet.is_keyframe:
            keys.append(packet.pts)
    if not timestamped or not pts:
        return _Timeline(None, count, np.zeros(0, np.int64), np.zeros(1, np.int64))
    pts_array = np.array(pts, np.int64)
    keyframe_pts = np.unique(np.array(keys, np.int64))
    starts = np.zeros(1, np.int64)
    if container.format.flags & _AVFMT_TS_DISCONT:
        starts = _segment_starts(np.array(dts, np.float64), float(stream.time_base))  # None -> NaN
    if len(starts) == 1:  # the usual case: one run of timestamps
        return _Timeline(np.unique(pts_array), count, keyframe_pts, starts)
    # Timestamps restart: each segment sorted on its own, segments kept in file order.
    runs = [np.unique(run) for run in np.split(pts_array, starts[1:])]
    segment_starts = np.cumsum([0] + [len(run) for run in runs[:-1]])
    return _Timeline(np.concatenate(runs), count, keyframe_pts, segment_starts)


def _skippable_pts(stream, wanted_pts: Iterable[int], timeline: _Timeline) -> frozenset | None:
    """The wanted frames' timestamps when non-reference frames among the others may be skipped, else None.

    Only with timestamps (without them frames are known by counting, which skipping would break) and in codecs whose
    skipping is exact (`_SKIP_NONREF_CODECS`). A packet's pts is its frame's, so a packet whose pts is not wanted
    holds a frame nobody asked for: skipped if no frame refers to it, decoded otherwise.
    """
    if timeline.pts is None or stream.codec_context.name not in _SKIP_NONREF_CODECS:
        return None
    return frozenset(wanted_pts)


def _decoded(context, packets: Iterable, keep_pts: frozenset | None) -> Iterator:
    """Frames in display order from `packets`, then those the decoder still holds at the end.

    With `keep_pts`, a packet whose timestamp is not among them is decoded with non-reference frames discarded (the
    setting is read per packet, frame threads included), so only the frames kept and those they are predicted from
    cost decoding time; a packet without a timestamp is always decoded.
    """
    for packet in packets:
        if packet.size == 0:  # the demuxer's flush packet: flushed below
            continue
        if keep_pts is not None:
            context.skip_frame = "DEFAULT" if packet.pts is None or packet.pts in keep_pts else "NONREF"
        yield from context.decode(packet)
    context.skip_frame = "DEFAULT"
    yield from context.decode(None)


def _to_rgb(frame, reduce_to_shortest_edge: int | None) -> np.ndarray:
    """The frame as RGB uint8, turned as its display matrix says, very large frames reduced first."""
    width, height = frame.width, frame.height
    if reduce_to_shortest_edge and min(width, height) >= _REDUCE_ABOVE_FACTOR * reduce_to_shortest_edge:
        scale = _REDUCED_FACTOR * reduce_to_shortest_edge / min(width, height)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
        image = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA").to_ndarray()
    else:
        image = frame.to_ndarray(format="rgb24")
    quarter_turns = round((frame.rotation or 0) / 90) % 4  # counter-clockwise, as FFmpeg's display matrix
    return np.ascontiguousarray(np.rot90(image, quarter_turns)) if quarter_turns else image


class _SeekUntrusted(Exception):
    """A seek landed after the frame it was asked for: decode straight through instead."""


def _decode_through(frames_in_order: Iterable, wanted: dict, timeline: _Timeline, reduce: int | None) -> dict:
    """Walk the stream's decoded frames from the start, converting the wanted ones.

    `wanted` holds frames' (segment, pts) keys (positions, without timestamps). Decoders give frames in display order,
    so within a segment timestamps rise: a frame whose pts does not rise, or lies past the last pts of the current
    segment, starts the next segment (a restart of the timestamps).
    """
    frames: dict = {}
    last = max(wanted)
    segment, previous = 0, None
    ends = timeline.segment_ends() if timeline.pts is not None else []
    for position, frame in enumerate(frames_in_order):
        if timeline.pts is None:
            key = position
        elif frame.pts is None:
            continue
        else:
            rises = previous is None or previous < frame.pts <= ends[segment]
            if not rises and segment + 1 < len(ends):
                segment += 1
            previous = frame.pts
            key = (segment, frame.pts)
        if key in wanted and key not in frames:
            frames[key] = _to_rgb(frame, reduce)
        if key >= last:
            break
    return frames


def _decode_by_seeking(container, stream, wanted: dict, timeline: _Timeline, reduce: int | None) -> dict:
    """Seek to the key frame before each wanted frame when that skips frames, then decode up to it.

    Non-reference frames that are not wanted are skipped where the codec allows. Raises `_SeekUntrusted` when a seek
    lands after the wanted frame (an index that cannot be trusted).
    """
    keep_pts = _skippable_pts(stream, wanted, timeline)
    frames: dict = {}
    decoder = None
    current = None  # pts of the last decoded frame
    for target in sorted(wanted):
        position = int(np.searchsorted(timeline.keyframe_pts, target, side="right")) - 1
        key_pts = int(timeline.keyframe_pts[max(position, 0)])
        if decoder is None or current is None or key_pts > current:
            container.seek(key_pts, stream=stream, backward=True, any_frame=False)
            decoder = _decoded(stream.codec_context, container.demux(stream), keep_pts)
            current = None
        for frame in decoder:
            if frame.pts is None:
                raise _SeekUntrusted()
            if current is None and frame.pts > target:
                raise _SeekUntrusted()
            current = frame.pts
            if frame.pts >= target:
                if frame.pts != target:
                    raise _SeekUntrusted()  # the wanted timestamp was not on a decoded frame
                frames[target] = _to_rgb(frame, reduce)
                break
        else:
            break  # the stream ended before this frame
    return frames


def _walk(
    stream, packets: Iterable, wanted: dict, timeline: _Timeline, reduce: int | None, keep_pts: frozenset | None
) -> dict:
    """The wanted frames, decoding `packets` from the start (see `_decode_through`, `_decoded`)."""
    return _decode_through(_decoded(stream.codec_context, packets, keep_pts), wanted, timeline, reduce)


def _walk_file(source: str, wanted: dict, timeline: _Timeline, reduce: int | None, keep_pts: frozenset | None) -> dict:
    """`_walk` on a fresh demuxer: the timeline pass read to the end, and some inputs (raw H.264) cannot seek back."""
    with av.open(source) as container:
        stream = container.streams.video[0]
        _bound_decoder_memory(stream)
        return _walk(stream, container.demux(stream), wanted, timeline, reduce, keep_pts)


def _bound_decoder_memory(stream) -> None:
    """Beyond 4K, one decoding thread: frame threads each hold a frame, which adds up at 8K and above."""
    context = stream.codec_context
    if context.width * context.height > 3840 * 2160:
        context.thread_count = 1


def _frame_rate(container, stream) -> float:
    """The rate that sampling positions count frames at: the stream's average rate, or its real rate in raw streams.

    Raw elementary streams (.h264, .hevc, .m2v) have no timestamps, so their average rate is the raw demuxer's default
    (25) whatever the stream holds. Their real rate is `guessed_rate` (FFmpeg's `av_guess_frame_rate`, the rate the
    ffmpeg tool itself uses): `r_frame_rate` (`base_rate`, ffprobe's "r_frame_rate", ffmpeg's "tbr"), replaced by the
    rate the codec header states (`codec_context.framerate`, the SPS timing) where `r_frame_rate` counts fields, as
    FFmpeg 7 and later do for H.264 (60 for a 30 fps stream). The codec rate alone is missing when the header states
    none, where `guessed_rate` keeps `r_frame_rate`.
    """
    if container.format.flags & _AVFMT_NOTIMESTAMPS:
        return float(stream.guessed_rate or stream.average_rate or 0)
    return float(stream.average_rate or stream.guessed_rate or 0)


def _is_seekable(container, stream) -> bool:
    names = set((container.format.name or "").split(","))
    return bool(names & set(_SEEKABLE_FORMATS)) and container.duration is not None and stream.duration is not None


def read_video_frames(
    path: str | os.PathLike,
    start: float | None = None,
    end: float | None = None,
    max_frames: int = 12,
    video_framerate: float = 1.0,
    slice_framepos: int = SLICE_UNIFORM,
    strategy: str = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    reduce_to_shortest_edge: int | None = None,
) -> VideoFrames:
    """Decode the frames that `sample_frame_indices` selects from a video file (any container FFmpeg reads).

    Frame `k` of the sampling is the frame shown at second `k / fps` (`fps` the stream's average rate): on a
    constant-rate file exactly frame `k`, on a variable-rate one the frame on screen at that second.

    Args:
        path (`str` or `os.PathLike`):
            The video file (a regular file: FIFOs and devices are refused before anything reads them).
        start (`float`, *optional*):
            Start of the segment in seconds; the start of the video when `None`.
        end (`float`, *optional*):
            End of the segment in seconds; the end of the video when `None`.
        max_frames (`int`, *optional*, defaults to `12`):
            Most frames sampled (see `sample_frame_indices`).
        video_framerate (`float`, *optional*, defaults to `1.0`):
            Frames sampled per second (see `sample_frame_indices`).
        slice_framepos (`int`, *optional*, defaults to `SLICE_UNIFORM`):
            How longer clips are thinned (see `sample_frame_indices`).
        strategy (`str`, *optional*, defaults to `"auto"`):
            `"decode"` (walk the stream), `"seek"` (jump to each frame; in containers with a reliable index only,
            otherwise it decodes) or `"auto"` (seek when frames are far apart).
        max_pixels (`int`, *optional*, defaults to `DEFAULT_MAX_PIXELS`):
            Largest frame (width x height) read; larger ones raise `VideoReadError` before decoding.
        reduce_to_shortest_edge (`int`, *optional*):
            The size the caller resizes frames to; frames at least 8 times larger are first reduced to 4 times it in
            FFmpeg's scaler, which bounds memory and time on very large frames.

    Returns:
        `VideoFrames`: The sampled uint8 frames `[F, H, W, 3]` and their indices.

    Raises:
        VideoReadError: Naming the file and the reason, for every way the file can fail.
    """
    check_decode_strategy(strategy)
    source = os.fspath(path)
    try:
        status = os.stat(source)
    except FileNotFoundError:
        raise VideoReadError(source, "file not found") from None
    except OSError as error:
        raise VideoReadError(source, f"cannot be read ({error.strerror or error})") from None
    if not stat.S_ISREG(status.st_mode):
        raise VideoReadError(source, "not a regular file (a folder, FIFO or device); give a video file")
    try:
        with av.open(source) as container:
            if not container.streams.video:
                raise VideoReadError(source, "the file has no video stream")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > max_pixels:
                raise VideoReadError(
                    source,
                    f"frames of {width}x{height} ({width * height / 1e6:.1f} MP) exceed the limit of "
                    f"{max_pixels / 1e6:.1f} MP per frame; raise max_pixels (DRLVideoProcessor(max_pixels=...)) to "
                    "read it",
                )
            _bound_decoder_memory(stream)
            fps = _frame_rate(container, stream)
            packets = [] if status.st_size <= _KEEP_PACKETS_MAX_BYTES else None
            timeline = _read_timeline(container, stream, packets)
            indices = sample_frame_indices(timeline.count, fps, start, end, video_framerate, max_frames, slice_framepos)
            if timeline.pts is None:  # no timestamps: positions are all there is
                keys = indices.tolist()
            else:
                # The frame on screen at second index / fps: the last one starting by then (a quarter of a frame
                # of slack absorbs timestamps rounded to the container's time base).
                times = timeline.seconds(float(stream.time_base), 1 / fps)
                ordinals = np.searchsorted(times, indices / fps + 0.25 / fps, side="right") - 1
                keys = [timeline.key(ordinal) for ordinal in np.clip(ordinals, 0, len(times) - 1).tolist()]
            wanted = {key: None for key in keys}
            mean_gap = (indices[-1] - indices[0]) / max(1, len(indices) - 1)
            use_seek = strategy == "seek" or (strategy == "auto" and mean_gap > AUTO_SEEK_MIN_GAP)
            decoded = None
            # Never across restarted timestamps: a seek to a pts cannot say which segment it means.
            if use_seek and timeline.pts is not None and timeline.segments == 1 and _is_seekable(container, stream):
                packets = None  # the decoder now holds the seeks' state: walk a fresh one if needed
                try:
                    by_pts = {pts: None for _, pts in wanted}
                    found = _decode_by_seeking(container, stream, by_pts, timeline, reduce_to_shortest_edge)
                    decoded = {(0, pts): frame for pts, frame in found.items()}
                except _SeekUntrusted:
                    decoded = None
            keep_pts = _skippable_pts(stream, [pts for _, pts in wanted] if timeline.pts is not None else [], timeline)
            if decoded is None and packets is not None:  # the packets already read, no second demux
                decoded = _walk(stream, packets, wanted, timeline, reduce_to_shortest_edge, keep_pts)
        if decoded is not None and len(decoded) < len(wanted) and keep_pts is not None:
            decoded = None  # a frame went missing while frames were skipped: decode every frame to be sure
            keep_pts = None
        if decoded is None:
            decoded = _walk_file(source, wanted, timeline, reduce_to_shortest_edge, keep_pts)
            if len(decoded) < len(wanted) and keep_pts is not None:
                decoded = _walk_file(source, wanted, timeline, reduce_to_shortest_edge, None)
    except FrameSamplingError as error:
        raise VideoReadError(source, str(error)) from None
    except EOFError as error:  # PyAV's EOFError is raised when a file holds no decodable data at all
        raise VideoReadError(source, f"the file ends before any frame (zero-length or truncated): {error}") from error
    except (av.error.FFmpegError, OSError) as error:
        raise VideoReadError(
            source, f"cannot decode ({type(error).__name__}: {error}); the file is corrupt, truncated or not a video"
        ) from error
    missing = [key for key in keys if key not in decoded]
    if missing:
        if not decoded:
            raise VideoReadError(source, "no frame could be decoded; the file is corrupt or truncated")
        raise VideoReadError(
            source,
            f"the stream ends before frame {keys.index(missing[0])} of the sample although its packets announce "
            f"{timeline.count} frames; the file is probably truncated",
        )
    return VideoFrames(frames=np.stack([decoded[key] for key in keys]), indices=indices)
