"""Videos as phones, browsers and broadcast tools write them (ffmpeg): every sampled frame shows the right second.

Each test video marks, in every frame, the second it belongs to (`tests/real_world_videos.py`); a sampled frame at
position `k` (at the average rate `fps`) must show second `int(k / fps)`, whatever the container or frame rate.
"""

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from modeling_tvr.video_decoding import VideoReadError, read_video_frames

from .real_world_videos import (
    decode_with_ffmpeg,
    ffmpeg,
    second_shown,
    write_piped,
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


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_phone_clips_come_out_turned_as_players_show_them(tmp_path, degrees):
    source = write_seconds_video(tmp_path / "landscape.mp4", 3, fps=10, extra=("-vf", "scale=96:48"))
    rotated = write_rotated(source, tmp_path / f"portrait_{degrees}.mp4", degrees)
    ours = read_video_frames(rotated, max_frames=3)
    height, width = (96, 48) if degrees % 180 else (48, 96)
    shown = decode_with_ffmpeg(rotated, width, height)[ours.indices]  # ffmpeg applies the display matrix
    assert ours.frames.shape == shown.shape
    assert np.abs(ours.frames.astype(int) - shown.astype(int)).mean() < 2


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
