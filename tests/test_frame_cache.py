"""The frame cache stores exactly the processor's frames, reads them back without decoding, decodes again what changed
(file or setting), records undecodable clips once, and stays complete and correct through a kill and two processes
filling it at once."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from modeling_tvr import VideoReadError
from modeling_tvr.frame_cache import (
    CachedFramesDataset,
    ClipNotCachedError,
    FrameCache,
    as_clip,
    collate_frames,
    storage,
)

from .frame_cache_filler import SHARD_BYTES, processor
from .videos import write_video

FILLER = Path(__file__).with_name("frame_cache_filler.py")


def write_videos(folder: Path, count: int = 4) -> list[str]:
    """Videos of 1-4 s (the shorter ones give fewer than 6 frames, so padding is exercised)."""
    return [
        str(write_video(folder / f"video{i}.mp4", seconds=1 + i, width=48 + 8 * i, height=40)) for i in range(count)
    ]


def clips_of(videos: list[str]) -> list:
    """Whole videos plus two segments of the longest one."""
    return [*videos, (videos[-1], 0.5, 2.5), (videos[-1], 2.0, None)]


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A cache filled by two data-loader workers, one shard per clip."""
    folder = tmp_path_factory.mktemp("frame_cache")
    clips = clips_of(write_videos(folder))
    report = FrameCache(folder / "cache", processor(), shard_bytes=SHARD_BYTES).fill(clips, num_workers=2)
    assert (report.filled, report.reused, report.failed) == (len(clips), 0, {})
    return folder / "cache", clips


@pytest.fixture
def no_decoding(monkeypatch):
    """Any attempt to open a video with PyAV fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a video was decoded")

    monkeypatch.setattr(av, "open", refuse)


def expected_pixels(video_processor, clips) -> dict:
    return video_processor([clip if isinstance(clip, str) else tuple(clip) for clip in clips])


def test_cached_frames_are_the_processors_uint8_frames_and_normalise_to_its_pixels_bit_for_bit(filled):
    folder, clips = filled
    video_processor = processor()
    cache = FrameCache(folder, video_processor)
    expected = expected_pixels(video_processor, clips)
    for position, clip in enumerate(clips):
        frames, mask = cache.frames(clip)
        own = video_processor.processed_frames(clip)
        assert frames.dtype == torch.uint8 and frames.shape == (6, 32, 32, 3)
        assert np.array_equal(frames[: len(own)].numpy(), own) and not frames[len(own) :].any()
        assert mask.tolist() == [1] * len(own) + [0] * (6 - len(own))
        pixels = video_processor.normalize(frames, mask)
        assert torch.equal(pixels, expected["pixel_values_videos"][position])
    frames, masks = cache.frames_batch(clips)
    assert torch.equal(video_processor.normalize(frames, masks), expected["pixel_values_videos"])
    assert torch.equal(masks, expected["video_mask"])
    assert 0 < masks.sum(1).min() < 6  # some clips are padded


def test_a_data_loader_over_the_cache_gives_uint8_batches_that_normalise_to_preprocess(filled, no_decoding):
    folder, clips = filled
    video_processor = processor()
    # Forked workers inherit the patched `av.open`: nothing is decoded there either.
    dataset = CachedFramesDataset(FrameCache(folder, video_processor), clips)
    expected = FrameCache(folder, video_processor).frames_batch(clips)
    for collate in (collate_frames, None):  # the batch as read, or stacked items
        batches = list(DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=collate))
        frames = torch.cat([batch["video_frames"] for batch in batches])
        masks = torch.cat([batch["video_mask"] for batch in batches])
        assert frames.dtype == torch.uint8
        assert torch.equal(frames, expected[0]) and torch.equal(masks, expected[1])


def test_once_filled_unchanged_files_are_read_without_decoding(filled, no_decoding):
    folder, clips = filled
    cache = FrameCache(folder, processor())
    report = cache.fill(clips, show_progress=False)
    assert (report.filled, report.reused, report.failed) == (0, len(clips), {})
    for clip in clips:
        assert clip in cache
        cache.frames(clip)


def test_a_clip_never_filled_is_refused_by_name(filled, tmp_path):
    folder, _ = filled
    cache = FrameCache(folder, processor())
    with pytest.raises(ClipNotCachedError, match="fill it first"):
        cache.frames(str(tmp_path / "elsewhere.mp4"))


def test_a_rewritten_file_is_decoded_again(tmp_path):
    videos = write_videos(tmp_path, count=2)
    video_processor = processor()
    cache = FrameCache(tmp_path / "cache", video_processor)
    cache.fill(videos, num_workers=0, show_progress=False)
    before = cache.frames(videos[0])[0]
    write_video(Path(videos[0]), seconds=2, fps=10, width=56, height=40)  # same name, other content
    report = cache.fill(videos, num_workers=0, show_progress=False)
    assert (report.filled, report.reused) == (1, 1)
    after, mask = FrameCache(tmp_path / "cache", video_processor).frames(videos[0])
    assert not torch.equal(before, after)
    own = video_processor.processed_frames(videos[0])
    assert np.array_equal(after[: len(own)].numpy(), own)


def test_a_touched_file_with_the_same_content_is_not_decoded_again(tmp_path, monkeypatch):
    videos = write_videos(tmp_path, count=1)
    FrameCache(tmp_path / "cache", processor()).fill(videos, num_workers=0, show_progress=False)
    os.utime(videos[0], ns=(1, 1))  # other times, same bytes: the content hash decides
    monkeypatch.setattr(av, "open", lambda *a, **k: pytest.fail("decoded"))
    report = FrameCache(tmp_path / "cache", processor()).fill(videos, num_workers=0, show_progress=False)
    assert (report.filled, report.reused) == (0, 1)


def test_a_changed_frame_setting_is_decoded_again_and_normalisation_settings_are_not_one(filled):
    folder, clips = filled
    other = FrameCache(folder, processor(max_frames=4))
    assert other.path != FrameCache(folder, processor()).path
    report = other.fill(clips, num_workers=0, show_progress=False)
    assert (report.filled, report.reused) == (len(clips), 0)
    assert other.frames(clips[-1])[0].shape == (4, 32, 32, 3)
    # Mean, std and rescaling apply after the cache: the same stored frames serve them.
    assert FrameCache(folder, processor(image_mean=[0.5] * 3)).path == FrameCache(folder, processor()).path
    assert processor().frame_settings() != processor(size={"shortest_edge": 40}).frame_settings()


def test_an_undecodable_file_is_recorded_once_and_tried_again_only_when_it_changes(tmp_path, monkeypatch):
    videos = write_videos(tmp_path, count=1)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    missing = str(tmp_path / "missing.mp4")
    clips = [*videos, str(broken), missing]
    report = FrameCache(tmp_path / "cache", processor()).fill(clips, num_workers=0, show_progress=False)
    assert report.filled == 1 and set(report.failed) == {as_clip(broken), as_clip(missing)}
    assert "corrupt" in report.failed[as_clip(broken)] and "No such file" in report.failed[as_clip(missing)]

    monkeypatch.setattr(av, "open", lambda *a, **k: pytest.fail("decoded again"))
    cache = FrameCache(tmp_path / "cache", processor())
    again = cache.fill(clips, num_workers=0, show_progress=False)
    assert (again.filled, again.reused, again.failed) == (0, 1, report.failed)
    assert cache.failure(broken) == report.failed[as_clip(broken)]
    with pytest.raises(VideoReadError, match="corrupt"):
        cache.frames(broken)

    monkeypatch.undo()
    write_video(broken, seconds=1)  # fixed
    write_video(Path(missing), seconds=1)  # now there
    fixed = FrameCache(tmp_path / "cache", processor()).fill(clips, num_workers=0, show_progress=False)
    assert (fixed.filled, fixed.reused, fixed.failed) == (2, 1, {})


def run_filler(folder: Path, clips_file: Path, *stall: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(FILLER), str(folder), str(clips_file), *stall],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def assert_complete_and_correct(folder: Path, clips: list) -> None:
    """Every clip is stored with the processor's frames; reading decodes nothing."""
    video_processor = processor()
    expected = {as_clip(clip): video_processor.processed_frames(clip) for clip in clips}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(av, "open", lambda *a, **k: pytest.fail("decoded"))
        cache = FrameCache(folder, video_processor)
        report = cache.fill(clips, num_workers=0, show_progress=False)
        assert (report.filled, report.reused, report.failed) == (0, len(clips), {})
        for clip in clips:
            frames, mask = cache.frames(clip)
            own = expected[as_clip(clip)]
            assert np.array_equal(frames[: len(own)].numpy(), own) and int(mask.sum()) == len(own)


@pytest.mark.slow
def test_a_kill_while_filling_leaves_committed_shards_and_a_refill_completes_the_cache(tmp_path):
    clips = clips_of(write_videos(tmp_path))
    clips_file = tmp_path / "clips.json"
    clips_file.write_text(json.dumps(clips))
    ready = tmp_path / "stalled"
    filler = run_filler(tmp_path / "cache", clips_file, "3", str(ready))
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert filler.poll() is None and time.monotonic() < deadline, filler.communicate()
        time.sleep(0.1)
    filler.send_signal(signal.SIGKILL)  # after its 3rd shard's frames were written, before their records
    filler.wait()

    cache = FrameCache(tmp_path / "cache", processor())
    shards = cache.path / storage.SHARD_FOLDER
    orphans = [path for path in shards.glob("*.npy") if not path.with_suffix(".json").exists()]
    assert len(orphans) == 1
    assert sum(clip in cache for clip in clips) == 2  # the two committed shards, and not the orphan
    report = cache.fill(clips, num_workers=0, show_progress=False)
    assert (report.filled, report.reused) == (len(clips) - 2, 2)
    assert not orphans[0].exists()  # its writer is gone: removed
    assert not [path for path in shards.iterdir() if path.name.endswith(storage.PARTIAL_SUFFIX)]
    assert_complete_and_correct(tmp_path / "cache", clips)


@pytest.mark.slow
def test_two_processes_filling_one_folder_at_once_leave_a_complete_correct_cache(tmp_path):
    videos = write_videos(tmp_path, count=6)
    clips = clips_of(videos)
    forward, backward = tmp_path / "forward.json", tmp_path / "backward.json"
    forward.write_text(json.dumps(clips))
    backward.write_text(json.dumps(clips[::-1]))
    fillers = [run_filler(tmp_path / "cache", forward), run_filler(tmp_path / "cache", backward)]
    for filler in fillers:
        out, err = filler.communicate(timeout=300)
        assert filler.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1])["failed"] == 0
    assert_complete_and_correct(tmp_path / "cache", clips)
    manifest = json.loads((FrameCache(tmp_path / "cache", processor()).path / storage.MANIFEST_FILE).read_text())
    assert len(manifest["records"]) == len(clips)  # repeats of a clip decoded by both are not kept
