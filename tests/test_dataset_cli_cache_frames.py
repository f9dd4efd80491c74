"""`python -m dataset_builders BENCHMARK --cache-frames DIR`: every row's clip stored with the given processor's frame
settings, undecodable clips following --missing-videos."""

import argparse

import av
import datasets
import pytest

from dataset_builders.__main__ import cache_frames, main
from modeling_tvr import DRLVideoProcessor
from modeling_tvr.frame_cache import FrameCache, as_clip

from .helpers import tiny_processor
from .videos import write_video


def test_the_toy_benchmark_is_cached_with_the_saved_processors_settings(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    processor = tiny_processor(tmp_path)
    processor.save_pretrained(tmp_path / "model")
    options = ["num_videos=72", "num_validation_videos=0", "seconds=0.5", "fps=4", "size=32"]
    argv = ["toy", *(arg for option in options for arg in ("--option", option))]
    frames = tmp_path / "frames"
    assert (
        main([*argv, "--cache-frames", str(frames), "--processor", str(tmp_path / "model"), "--num-workers", "0"]) == 0
    )
    assert "72 clip(s) decoded and stored" in capsys.readouterr().out

    monkeypatch.setattr(av, "open", lambda *a, **k: pytest.fail("decoded"))  # a second run decodes nothing
    assert (
        main([*argv, "--cache-frames", str(frames), "--processor", str(tmp_path / "model"), "--num-workers", "0"]) == 0
    )
    assert "0 clip(s) decoded and stored, 72 already stored" in capsys.readouterr().out
    assert FrameCache(frames, processor).path.is_dir()


def test_frame_options_need_cache_frames(capsys):
    with pytest.raises(SystemExit):
        main(["toy", "--max-frames", "4"])
    assert "only apply with --cache-frames" in capsys.readouterr().err


@pytest.mark.parametrize("missing_videos, status", [(None, 1), ("error", 1), ("skip", 0)])
def test_undecodable_clips_follow_missing_videos(tmp_path, capsys, missing_videos, status):
    good = write_video(tmp_path / "good.mp4", seconds=1)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"no video here")
    rows = datasets.Dataset.from_dict(
        {"video": [str(good), str(broken), str(good)], "start": [None, None, 0.0], "end": [None, None, 0.5]}
    )
    args = argparse.Namespace(
        cache_frames=str(tmp_path / "frames"),
        processor=None,
        max_frames=4,
        num_workers=0,
        missing_videos=missing_videos,
    )
    assert cache_frames(datasets.DatasetDict({"test": rows}), args) == status
    err = capsys.readouterr().err
    assert str(broken) in err and ("error:" in err) == (status == 1)
    cache = FrameCache(tmp_path / "frames", DRLVideoProcessor(max_frames=4))  # the defaults, 4 frames
    assert as_clip(good) in cache and as_clip((good, 0.0, 0.5)) in cache
