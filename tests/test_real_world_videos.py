"""Videos as phones, browsers and broadcast tools write them (ffmpeg): every sampled frame shows the right second.

Each test video marks, in every frame, the second it belongs to (`tests/real_world_videos.py`); a sampled frame at
position `k` (at the average rate `fps`) must show second `int(k / fps)`, whatever the container or frame rate.
"""

import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modeling_tvr import video_decoding
from modeling_tvr.video_decoding import VideoReadError, read_video_frames
from modeling_tvr.video_processing_drl import DRLVideoProcessor

from .real_world_videos import (
    decode_with_ffmpeg,
    ffmpeg,
    second_shown,
    write_joined_recording,
    write_lavfi_clip,
    write_paused_recording,
    write_piped,
    write_raw_stream,
    write_rotated,
    write_seconds_video,
    write_variable_frame_rate,
)

SECONDS, FPS = 40, 25


@pytest.fixture(scope="module")
def containers(tmp_path_factory) -> dict[str, Path]:
    """The same 40 s clip in the containers real recordings come in."""
    folder = tmp_path_factory.mktemp("real_world")
    base = write_seconds_video(folder / "clip.mp4", SECONDS, fps=FPS)
    ts = folder / "broadcast.ts"
    ffmpeg("-i", str(base), "-c", "copy", str(ts))
    raw = folder / "camera.h264"
    ffmpeg("-i", str(base), "-c", "copy", "-bsf:v", "h264_mp4toannexb", "-f", "h264", str(raw))
    return {
        "mp4": base,
        "mpeg-ts": ts,
        "webm written to a pipe": write_piped(base, folder / "browser.webm", "webm", ("-c:v", "libvpx", "-g", "50")),
        "matroska written to a pipe": write_piped(
            base, folder / "obs.mkv", "matroska", ("-c:v", "libx264", "-g", "50")
        ),
        "raw h264": raw,
    }


CONTAINERS = ["mp4", "mpeg-ts", "webm written to a pipe", "matroska written to a pipe", "raw h264"]


def seconds_of(frames: np.ndarray) -> list[int]:
    return [second_shown(frame) for frame in frames]


@pytest.mark.parametrize("strategy", ["decode", "seek", "auto"])
@pytest.mark.parametrize("container", CONTAINERS)
def test_every_sampled_frame_shows_its_second(containers, container, strategy):
    sampled = read_video_frames(containers[container], max_frames=12, strategy=strategy)
    assert len(sampled.indices) == 12
    assert seconds_of(sampled.frames) == [int(index / FPS) for index in sampled.indices]


@pytest.mark.parametrize("container", CONTAINERS)
def test_seeking_returns_the_frames_full_decoding_returns(containers, container):
    decoded = read_video_frames(containers[container], max_frames=8, strategy="decode")
    sought = read_video_frames(containers[container], max_frames=8, strategy="seek")
    np.testing.assert_array_equal(sought.indices, decoded.indices)
    np.testing.assert_array_equal(sought.frames, decoded.frames)


def test_segments_of_a_broadcast_recording_stay_inside_the_segment(containers):
    sampled = read_video_frames(containers["mpeg-ts"], start=21.0, end=33.0, max_frames=12, strategy="seek")
    shown = seconds_of(sampled.frames)
    assert shown == [int(index / FPS) for index in sampled.indices]
    assert shown[0] == 21 and shown[-1] == 33  # the authors' segments include their end second


def test_variable_frame_rate_clip_returns_the_frame_shown_at_each_sampled_second(tmp_path):
    # 5 s at 30 fps then 5 s at 10 fps: positions at the average rate map to the frame on screen at that time.
    path = write_variable_frame_rate(tmp_path / "phone_vfr.mp4")
    sampled = read_video_frames(path, max_frames=12)
    fps = 200 / 9.8  # the stream's average rate: 200 frames over 9.8 s
    assert len(sampled.indices) == 10  # one per second, not the 7 that frame counting at 30 fps found
    assert seconds_of(sampled.frames) == [int(index / fps) for index in sampled.indices]
    assert seconds_of(sampled.frames)[-3:] == [6, 7, 8]  # from the 10 fps half


@pytest.mark.parametrize("output_format", ["h264", "mpeg2video"])
def test_raw_streams_are_sampled_at_their_own_frame_rate(tmp_path, output_format):
    # A 30 fps stream without a container: the raw demuxer states 25 fps (its default) and, for H.264, an
    # r_frame_rate of 60 (fields); sampled at 25 fps the segment 10-12 s gave seconds 8, 9, 10.
    source = write_seconds_video(tmp_path / "camera.mp4", 14, fps=30)
    raw = write_raw_stream(source, tmp_path / f"camera.{output_format}", output_format)
    for strategy in ("decode", "seek", "auto"):
        segment = read_video_frames(raw, start=10, end=12, strategy=strategy)
        assert segment.indices.tolist() == [300, 330, 360]
        assert seconds_of(segment.frames) == [10, 11, 12]
    whole = read_video_frames(raw, max_frames=14)
    assert seconds_of(whole.frames) == list(range(14))  # not past the end of the 14 s


@pytest.mark.parametrize(
    "offsets",
    [("0", "0"), ("1000", "0"), ("0", "1000")],
    ids=["timestamps restart", "timestamps go back", "timestamps jump ahead"],
)
def test_joined_recordings_play_one_after_the_other(tmp_path, offsets):
    # Two 8 s MPEG-TS recordings joined with `cat`: the second part's frames were all taken for the first part's
    # last frame (its timestamps repeat the first part's, or lie far from them).
    joined = write_joined_recording(tmp_path, 8, offsets)
    for strategy in ("decode", "seek", "auto"):
        whole = read_video_frames(joined, max_frames=16, strategy=strategy)
        assert whole.indices.tolist() == list(range(0, 400, 25))
        assert seconds_of(whole.frames) == list(range(16))
    across = read_video_frames(joined, start=6, end=10)
    assert seconds_of(across.frames) == [6, 7, 8, 9, 10]


def test_a_pause_in_a_broadcast_recording_is_a_still_frame_not_a_restart(tmp_path):
    # Timestamps 2 s apart across the pause: FFmpeg's rule (back, or more than 10 s ahead) sees no restart, so the
    # frame before the pause stays on screen during it, as players show it.
    paused = write_paused_recording(tmp_path / "paused.ts")
    sampled = read_video_frames(paused, max_frames=12)
    assert sampled.indices.tolist() == list(range(0, 200, 25))  # 200 frames at 25 fps: 8 s of positions
    assert seconds_of(sampled.frames) == [0, 1, 2, 3, 3, 3, 6, 7]


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_phone_clips_come_out_turned_as_players_show_them(tmp_path, degrees):
    source = write_seconds_video(tmp_path / "landscape.mp4", 3, fps=10, extra=("-vf", "scale=96:48"))
    rotated = write_rotated(source, tmp_path / f"portrait_{degrees}.mp4", degrees)
    ours = read_video_frames(rotated, max_frames=3)
    height, width = (96, 48) if degrees % 180 else (48, 96)
    shown = decode_with_ffmpeg(rotated, width, height)[ours.indices]  # ffmpeg applies the display matrix
    assert ours.frames.shape == shown.shape
    assert np.abs(ours.frames.astype(int) - shown.astype(int)).mean() < 2


@pytest.mark.slow
def test_very_large_frames_are_refused_before_decoding_and_reduced_when_allowed(tmp_path):
    # A few hundred kB holding 8192 x 8192 frames: decoded at full size it took gigabytes.
    path = write_seconds_video(tmp_path / "huge.mp4", 2, fps=1, size=8192, extra=("-preset", "ultrafast"))
    assert path.stat().st_size < 2_000_000
    with pytest.raises(VideoReadError, match=r"8192x8192 .* max_pixels"):
        read_video_frames(path)
    sampled = read_video_frames(path, max_pixels=8192 * 8192, reduce_to_shortest_edge=224)
    assert sampled.frames.shape == (2, 896, 896, 3)  # reduced in FFmpeg's scaler to 4 x the resize size
    assert seconds_of(sampled.frames) == [0, 1]


def test_fifo_and_device_among_the_videos_are_refused_without_reading_them(tmp_path):
    from modeling_tvr.search.index import VideoIndex

    from .helpers import tiny_model_for, tiny_processor

    fifo = tmp_path / "recording.mp4"
    os.mkfifo(fifo)
    zeros = tmp_path / "zeros.mp4"
    zeros.symlink_to("/dev/zero")
    good = write_seconds_video(tmp_path / "good.mp4", 2, fps=5)
    for path in (fifo, zeros):
        with pytest.raises(VideoReadError, match="not a regular file"):
            read_video_frames(path)
    processor = tiny_processor(tmp_path)
    model = tiny_model_for(processor.tokenizer)
    built = {}
    worker = threading.Thread(
        target=lambda: built.update(index=VideoIndex.build(model, processor, [fifo, zeros, good], show_progress=False)),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "indexing a FIFO or /dev/zero must not hang"
    index = built["index"]
    assert index.paths == [str(good)]
    assert set(index.failed) == {str(fifo), str(zeros)}
    assert all("not a regular file" in reason for reason in index.failed.values())


# --- the fast path gives the frames the plain path gives ------------------------------------------------------------


def plain_frames(path: Path, monkeypatch: pytest.MonkeyPatch, **options) -> np.ndarray:
    """The sampled frames as the reader gave them before it skipped work: every frame decoded (no non-reference frame
    skipped) from a second demux of the file."""
    with monkeypatch.context() as patch:
        patch.setattr(video_decoding, "_SKIP_NONREF_CODECS", ())
        patch.setattr(video_decoding, "_KEEP_PACKETS_MAX_BYTES", -1)
        return read_video_frames(path, **options).frames


def pil_resize_and_crop(frame: np.ndarray, size: int = 224) -> np.ndarray:
    """The authors' transform in one PIL call each: bicubic resize of the shortest side, then centre crop."""
    image = Image.fromarray(frame)
    width, height = image.size
    scaled = (size, int(size * height / width)) if width <= height else (int(size * width / height), size)
    image = image.resize(scaled, resample=Image.Resampling.BICUBIC)
    top, left = int(round((image.height - size) / 2.0)), int(round((image.width - size) / 2.0))
    return np.asarray(image.crop((left, top, left + size, top + size)))


@pytest.fixture(scope="module")
def varied_clips(tmp_path_factory) -> dict[str, Path]:
    """Clips written as real tools write them: B-frames (libx264's defaults), deep B-pyramids, open GOPs, odd sizes
    (4:4:4, which allows them), portrait and rotated, variable frame rate, MPEG-TS, Matroska from a pipe, and the
    authors' 3 fps 224 px re-encode."""
    folder = tmp_path_factory.mktemp("fast_path")
    realistic = write_lavfi_clip(folder / "realistic.mp4", 6)
    clips = {
        "320x240 libx264 defaults": realistic,
        "mandelbrot, 8 B-frames, pyramid": write_lavfi_clip(
            folder / "pyramid.mp4", 5, source="mandelbrot", extra=("-x264-params", "bframes=8:b-pyramid=normal")
        ),
        "open GOP, key frame every 20": write_lavfi_clip(
            folder / "open_gop.mp4", 5, extra=("-x264-params", "open-gop=1:keyint=20:min-keyint=20")
        ),
        "161x121 yuv444p": write_lavfi_clip(folder / "odd.mp4", 4, size="161x121", extra=("-pix_fmt", "yuv444p")),
        "portrait 180x320": write_lavfi_clip(folder / "portrait.mp4", 4, size="180x320", fps=25),
        "rotated 90": write_rotated(realistic, folder / "rotated.mp4", 90),
        "variable frame rate": write_variable_frame_rate(folder / "vfr.mp4"),
        "mpeg-ts": folder / "broadcast.ts",
        "matroska written to a pipe": write_piped(realistic, folder / "obs.mkv", "matroska", ("-c:v", "libx264")),
        "3 fps 224 px (the authors' re-encode)": folder / "compressed.mp4",
    }
    ffmpeg("-i", str(realistic), "-c", "copy", str(clips["mpeg-ts"]))
    # CLIP4Clip's compress_video.py: shortest side 224, 3 fps (frames already at the resize size: cropped only)
    scale = "scale='if(gt(a,1),trunc(oh*a/2)*2,224)':'if(gt(a,1),224,trunc(ow*a/2)*2)'"
    ffmpeg("-i", str(realistic), "-filter:v", scale, "-r", "3", str(clips["3 fps 224 px (the authors' re-encode)"]))
    return clips


@pytest.mark.parametrize("strategy", ["auto", "seek"])
@pytest.mark.parametrize(
    "clip",
    [
        "320x240 libx264 defaults",
        "mandelbrot, 8 B-frames, pyramid",
        "open GOP, key frame every 20",
        "161x121 yuv444p",
        "portrait 180x320",
        "rotated 90",
        "variable frame rate",
        "mpeg-ts",
        "matroska written to a pipe",
        "3 fps 224 px (the authors' re-encode)",
    ],
)
@pytest.mark.slow
def test_fast_path_frames_are_bit_identical_to_the_plain_path(varied_clips, monkeypatch, clip, strategy):
    path = varied_clips[clip]
    options = {"max_frames": 12, "strategy": strategy, "reduce_to_shortest_edge": 224}
    fast = read_video_frames(path, **options).frames
    np.testing.assert_array_equal(fast, plain_frames(path, monkeypatch, **options))
    # and after the processor's transform (two PIL passes with the crop between them) as after PIL's one call
    processed = DRLVideoProcessor().resize_and_crop_frames(fast)
    np.testing.assert_array_equal(processed, np.stack([pil_resize_and_crop(frame) for frame in fast]))


def test_segments_read_fast_are_bit_identical_too(varied_clips, monkeypatch):
    path = varied_clips["mandelbrot, 8 B-frames, pyramid"]
    for start, end in ((0.5, 2.0), (1.3, 4.9)):
        fast = read_video_frames(path, start=start, end=end)
        np.testing.assert_array_equal(fast.frames, plain_frames(path, monkeypatch, start=start, end=end))


def test_frames_nobody_predicts_from_are_not_decoded(varied_clips, monkeypatch):
    # libx264's defaults make about half the frames B-frames no other frame refers to: none of them is wanted
    # (sampled frames are decoded in full), so the decoder skips them.
    decoded = []

    def counting(context, packets, keep_pts):
        for frame in original(context, packets, keep_pts):
            decoded.append(frame.pts)
            yield frame

    original = video_decoding._decoded
    monkeypatch.setattr(video_decoding, "_decoded", counting)
    sampled = read_video_frames(varied_clips["320x240 libx264 defaults"], strategy="decode")
    assert sampled.indices.tolist() == list(range(0, 180, 30))
    assert len(decoded) < 0.75 * 151  # 151 frames up to the last wanted one (frame 150)


def test_a_frame_missing_while_skipping_is_decoded_again_in_full(varied_clips, monkeypatch):
    # Should a decoder drop a wanted frame while others are skipped, the reader decodes every frame rather than fail.
    calls = []
    original = video_decoding._decoded

    def losing(context, packets, keep_pts):
        calls.append(keep_pts is not None)
        for frame in original(context, packets, keep_pts):
            if keep_pts is None or frame.pts != max(keep_pts):
                yield frame

    monkeypatch.setattr(video_decoding, "_decoded", losing)
    path = varied_clips["320x240 libx264 defaults"]
    frames = read_video_frames(path, strategy="decode").frames
    assert calls == [True, False]
    monkeypatch.setattr(video_decoding, "_decoded", original)
    np.testing.assert_array_equal(frames, plain_frames(path, monkeypatch, strategy="decode"))
