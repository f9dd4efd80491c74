"""train.py --frame_cache DIR (issue 23): every clip the run reads is decoded once into the cache, then training,
validation and test evaluation read its uint8 frames, normalised on the device by the processor's `normalize`.

The batches' numbers are checked against the processor's in process; whole runs of train.py run in this process too
(what its `main` runs, one CPU process, `--num_workers 0` so that decoding happens here, where `av.open` can be
patched): the toy benchmark cached and uncached gives the same metrics and weights, and a warm cache trains with a
decoder that cannot open any file; own videos check a changed file or setting, a file that cannot be decoded and
--eval_only. A resumed cached run (a checkpoint every step) and two processes filling one cache (a subprocess,
`accelerate launch`) are marked slow.
"""

import json
import logging
import os
import random
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file

from modeling_tvr import DRLVideoProcessor
from modeling_tvr.frame_cache import CachedFramesDataset, FrameCache, collate_frames
from modeling_tvr.training import run as training_run
from modeling_tvr.training.cached_frames import (
    CachedTrainingPairs,
    UndecodableVideosError,
    fill_for_rows,
    model_inputs,
    random_state_kept,
    without_undecodable,
)
from modeling_tvr.training.command_line import build_parser

from .own_videos import write_own_videos_folder
from .train_runs import accelerate_launch_train, train_in_process
from .videos import write_video

# The toy at its smallest with a validation split (32 train pairs, 8 validation and 72 test videos), validated every
# epoch so that validation reads the cache too: two epochs of four steps.
TOY = [
    "--benchmark_options",
    '{"num_videos": 88, "num_validation_videos": 8}',
    "--max_steps",
    "8",
    "--batch_size",
    "8",
    "--max_frames",
    "4",
    "--validate_every_epochs",
    "1",
    "--eval_batch_size",
    "16",
    "--num_workers",
    "0",
]
# Your own videos: a from-scratch CLIP, two steps of two pairs, two small frames.
TINY = ["--max_steps", "2", "--batch_size", "2", "--max_frames", "2", "--num_workers", "0", "--eval_batch_size", "4"]


# --- helpers ---------------------------------------------------------------------------------------------------------


class FillRecorder:
    """Each fill's report, in the order the runs filled the cache."""

    def __init__(self) -> None:
        self.fill_reports = []

    def __call__(self, *args, **kwargs):
        report = fill_for_rows(*args, **kwargs)
        self.fill_reports.append(report)
        return report


def runs_in_this_process(monkeypatch: pytest.MonkeyPatch) -> FillRecorder:
    """Makes train.py's runs one CPU process in this one, recording each fill's report."""
    monkeypatch.setattr(training_run, "make_accelerator", lambda train_args: Accelerator(cpu=True))
    recorder = FillRecorder()
    monkeypatch.setattr(training_run, "fill_for_rows", recorder)
    return recorder


def refuse_to_decode(*args, **kwargs):
    raise AssertionError("av.open was called: a video was decoded")


def metrics_of(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def assert_same_weights(first: Path, second: Path) -> None:
    a, b = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[name], b[name]) for name in a), [n for n in a if not torch.equal(a[n], b[n])]


def rows_of(folder: Path, names: list[str], captions: list[str]) -> list[dict]:
    return [
        {"video": str(folder / name), "start": None, "end": None, "caption": caption}
        for name, caption in zip(names, captions, strict=True)
    ]


@pytest.fixture
def own_videos(tmp_path: Path) -> Path:
    return write_own_videos_folder(tmp_path / "my_videos")


@pytest.fixture
def fills(monkeypatch: pytest.MonkeyPatch, isolated_datasets_cache) -> FillRecorder:
    """Runs of train.py in this process (`train_in_process`), and the reports of their cache fills."""
    return runs_in_this_process(monkeypatch)


# --- the batches -----------------------------------------------------------------------------------------------------


def test_cached_batches_are_the_processors_numbers_bit_for_bit(tmp_path):
    """Training pairs and evaluation clips read from the cache and normalised by `model_inputs` give exactly what the
    processor gives when it decodes (uneven lengths: zero-padded frames, masks)."""
    names = ["a.mp4", "b.mp4", "c.mp4"]
    for name, seconds in zip(names, (0.5, 1.0, 2.0), strict=True):
        write_video(tmp_path / name, seconds=seconds, fps=4, width=40, height=30)
    video_processor = DRLVideoProcessor(
        max_frames=6, size={"shortest_edge": 24}, crop_size={"height": 24, "width": 24}, video_framerate=2
    )
    rows = rows_of(tmp_path, names, ["a red", "b green", "c blue"])
    cache = FrameCache(tmp_path / "frames", video_processor)
    report = fill_for_rows(cache, [rows], Accelerator(cpu=True), num_workers=0)
    assert (report.filled, report.reused, report.failed) == (3, 0, {})

    pairs = CachedTrainingPairs(rows, cache)
    tokenized = {"input_ids": torch.ones(3, 4, dtype=torch.long)}
    batch = pairs.collate(lambda captions: tokenized)(pairs.__getitems__([0, 1, 2]))
    assert batch["video_frames"].dtype == torch.uint8  # what travels to the device
    inputs = model_inputs(batch, video_processor)
    expected = video_processor([row["video"] for row in rows])
    assert torch.equal(inputs["pixel_values_videos"], expected["pixel_values_videos"])
    assert torch.equal(inputs["video_mask"], expected["video_mask"]) and "video_frames" not in inputs
    assert inputs["input_ids"] is tokenized["input_ids"]
    one_by_one = pairs.collate(lambda captions: tokenized)([pairs[0], pairs[1], pairs[2]])
    assert torch.equal(one_by_one["video_frames"], batch["video_frames"])

    evaluation = collate_frames(CachedFramesDataset(cache, [row["video"] for row in rows]).__getitems__([0, 1, 2]))
    assert torch.equal(model_inputs(evaluation, video_processor)["pixel_values_videos"], expected.pixel_values_videos)


def test_an_uncached_batch_passes_through_unchanged():
    batch = {"pixel_values_videos": torch.zeros(1, 2, 3, 4, 4), "video_mask": torch.ones(1, 2, dtype=torch.long)}
    assert model_inputs(batch, DRLVideoProcessor()) is batch


def test_a_fill_that_decodes_leaves_the_random_state_as_it_was(tmp_path):
    """A cold cache must not give another training run than a warm one: the fill's data loader draws no seed that
    training would have drawn."""
    write_video(tmp_path / "a.mp4", seconds=0.5, fps=4, width=16, height=16)
    rows = rows_of(tmp_path, ["a.mp4"], ["a"])
    cache = FrameCache(
        tmp_path / "frames",
        DRLVideoProcessor(max_frames=2, crop_size={"height": 16, "width": 16}, size={"shortest_edge": 16}),
    )
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    expected = torch.rand(3), np.random.rand(), random.random()
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    assert fill_for_rows(cache, [rows], Accelerator(cpu=True), num_workers=0).filled == 1
    assert (torch.equal(torch.rand(3), expected[0]), np.random.rand(), random.random()) == (True, *expected[1:])
    with random_state_kept():
        torch.rand(5)
    assert not torch.equal(torch.rand(3), expected[0])  # the generator moves on from where it was, as usual


def test_clips_that_cannot_be_decoded_are_one_line_errors_or_skipped_with_a_warning(caplog):
    rows = [
        {"video": f"/v/{name}.mp4", "start": None, "end": None, "caption": name} for name in ("a", "b", "c", "d", "e")
    ]
    failed = {(f"/v/{name}.mp4", None, None): "VideoReadError: no video stream" for name in ("b", "c", "d", "e")}
    with pytest.raises(UndecodableVideosError) as raised:
        without_undecodable([rows], failed, None)
    message = str(raised.value)
    assert "\n" not in message and message.startswith("4 video clip(s) could not be decoded")
    assert "/v/b.mp4 (VideoReadError: no video stream)" in message and "and 1 more" in message
    assert "/v/e.mp4" not in message and message.endswith("pass --missing_videos skip to drop their rows")
    with pytest.raises(UndecodableVideosError) as toy:  # the toy refuses --missing_videos: no fix to suggest
        without_undecodable([rows], failed, "error", skip_allowed=False)
    assert "--missing_videos" not in str(toy.value)
    with caplog.at_level(logging.WARNING, logger="train"):
        kept = without_undecodable([rows, rows[:2]], failed, "skip")
    assert kept == [rows[:1], rows[:1]]
    assert "4 video clip(s) could not be decoded; skipping their 5 caption row(s)" in caplog.text
    assert without_undecodable([rows], {}, None) == [rows]


def test_the_flag_is_documented(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    assert "--frame_cache" in capsys.readouterr().out


# --- the toy benchmark, cached and uncached --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory):
    """The toy run uncached, then cached from an empty cache, then again with a decoder that cannot open any file."""
    work = tmp_path_factory.mktemp("toy")
    common = ["--data_dir", str(work / "data"), *TOY]
    with pytest.MonkeyPatch.context() as monkeypatch:
        import datasets

        monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(work / "hf_cache"))
        fills = runs_in_this_process(monkeypatch)
        train_in_process(monkeypatch, *common, "--output_dir", str(work / "plain"))
        cache = ["--frame_cache", str(work / "frames")]
        train_in_process(monkeypatch, *common, *cache, "--output_dir", str(work / "cold"))
        monkeypatch.setattr(av, "open", refuse_to_decode)
        train_in_process(monkeypatch, *common, *cache, "--output_dir", str(work / "warm"))
    return work, fills.fill_reports


def test_cached_training_gives_the_uncached_metrics_and_weights_and_a_warm_cache_decodes_nothing(toy_runs):
    work, (cold, warm) = toy_runs
    plain = metrics_of(work / "plain")
    assert (cold.filled, cold.reused, cold.failed) == (16 + 8 + 72, 0, {})  # train, validation, test videos
    assert (warm.filled, warm.reused, warm.failed) == (0, 96, {})  # av.open raises: nothing was decoded
    for run_name in ("cold", "warm"):
        cached = metrics_of(work / run_name)
        for key in ("metrics", "selection", "steps", "num_texts", "num_videos", "splits"):
            assert cached[key] == plain[key], (run_name, key)
        assert set(cached["metrics"]) == {"t2v", "v2t"}
        assert cached["selection"].startswith("best epoch on validation")  # validation read the cache too
        assert_same_weights(work / "plain", work / run_name)
        assert cached["arguments"]["frame_cache"] == str(work / "frames")


# --- your own videos -------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_changed_file_or_frame_setting_is_decoded_again_and_nothing_else(fills, monkeypatch, own_videos):
    common = ["--benchmark", "videofolder", "--data_dir", str(own_videos), "--test_fraction", "0.5", *TINY]
    cache = ["--frame_cache", str(own_videos.parent / "frames")]
    out = ["--output_dir", str(own_videos.parent / "out")]
    train_in_process(monkeypatch, *common, *cache, *out)
    write_video(own_videos / "bird.mp4", seconds=0.5, fps=8, width=16, height=16)  # another video under that name
    train_in_process(monkeypatch, *common, *cache, *out)
    train_in_process(monkeypatch, *common, *cache, *out, "--max_frames", "3")
    reports = [(report.filled, report.reused, len(report.failed)) for report in fills.fill_reports]
    assert reports == [(4, 0, 0), (1, 3, 0), (4, 0, 0)]


def test_a_file_that_cannot_be_decoded_follows_missing_videos(fills, monkeypatch, own_videos, caplog):
    (own_videos / "fish.mp4").write_bytes(b"not a video")
    common = ["--benchmark", "videofolder", "--data_dir", str(own_videos), "--test_fraction", "0", *TINY]
    common += ["--frame_cache", str(own_videos.parent / "frames"), "--do_eval", "false"]
    out = own_videos.parent / "out"
    with pytest.raises(SystemExit) as raised:
        train_in_process(monkeypatch, *common, "--output_dir", str(out))
    message = str(raised.value.code)
    assert message.startswith("error: 1 video clip(s) could not be decoded") and "fish.mp4" in message
    assert "\n" not in message and "--missing_videos skip" in message and not out.exists()

    monkeypatch.setattr(av, "open", refuse_to_decode)  # recorded once: the unchanged file is not tried again
    with caplog.at_level(logging.WARNING, logger="train"):
        train_in_process(monkeypatch, *common, "--output_dir", str(out), "--missing_videos", "skip")
    assert "skipping their 1 caption row(s)" in caplog.text and "fish.mp4" in caplog.text
    assert [(r.filled, r.reused, len(r.failed)) for r in fills.fill_reports] == [(3, 0, 1), (0, 3, 1)]
    assert metrics_of(out)["steps"] == 2


def test_eval_only_reads_the_cache_and_gives_the_trained_runs_metrics(fills, monkeypatch, own_videos):
    common = ["--benchmark", "videofolder", "--data_dir", str(own_videos), "--test_fraction", "0.5", *TINY]
    cache = ["--frame_cache", str(own_videos.parent / "frames")]
    trained = own_videos.parent / "out"
    train_in_process(monkeypatch, *common, *cache, "--output_dir", str(trained))
    monkeypatch.setattr(av, "open", refuse_to_decode)
    evaluated = own_videos.parent / "eval"
    evaluation = ["--eval_only", "--init", str(trained), "--output_dir", str(evaluated)]
    train_in_process(monkeypatch, *common, *cache, *evaluation)
    assert metrics_of(evaluated)["metrics"] == metrics_of(trained)["metrics"]
    assert (fills.fill_reports[-1].filled, fills.fill_reports[-1].reused) == (0, 2)  # test videos only


@pytest.mark.slow
def test_two_processes_fill_one_cache_and_train(own_videos, tmp_path):
    """`accelerate launch` with two CPU processes: the main one fills, the other finds every clip stored."""
    args = ["--benchmark", "videofolder", "--data_dir", str(own_videos), "--test_fraction", "0.5", *TINY]
    args += ["--frame_cache", str(tmp_path / "frames"), "--output_dir", str(tmp_path / "out")]
    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "hf_datasets"), "HF_MODULES_CACHE": str(tmp_path / "m")}
    result = subprocess.run(
        accelerate_launch_train("--multi_gpu", *args, processes=2),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "4 clip(s) decoded and stored, 0 already stored, 0 failed" in result.stderr
    assert metrics_of(tmp_path / "out")["steps"] == 2


class Stop(Exception):
    """Raised by a step callback: the run stops there, as a killed one would (its checkpoints stay)."""


@pytest.mark.slow
def test_a_resumed_cached_run_reaches_the_uninterrupted_runs_weights(fills, monkeypatch, own_videos):
    """Resuming skips the batches already seen in the cached loader as in the decoding one."""
    common = ["--benchmark", "videofolder", "--data_dir", str(own_videos), "--test_fraction", "0", *TINY]
    common += ["--max_steps", "5", "--checkpointing_steps", "1", "--do_eval", "false"]
    common += ["--frame_cache", str(own_videos.parent / "frames")]
    whole, split = own_videos.parent / "whole", own_videos.parent / "split"
    train_in_process(monkeypatch, *common, "--output_dir", str(whole))

    def stop_at_step_3(position) -> None:
        if position.step == 3:  # mid-epoch: two batches of two pairs per epoch (five pairs, the last dropped)
            raise Stop

    with pytest.raises(Stop):
        train_in_process(monkeypatch, *common, "--output_dir", str(split), callbacks=[stop_at_step_3])
    train_in_process(monkeypatch, *common, "--output_dir", str(split), "--resume", "true")
    assert metrics_of(split)["steps"] == 5
    assert_same_weights(whole, split)
