"""train.py on your own videos (issue 22): a folder with metadata.csv (`--benchmark videofolder --data_dir DIR`), split
folders with metadata.jsonl, a parquet file (`--dataset_name FILE --video_dir DIR`) and what `python -m
dataset_builders videofolder --push-to-hub` writes, loaded back with `--dataset_name`; each bad input is one line.

Argument handling, data loading and the refusals run in process; a few tiny runs of train.py (a from-scratch CLIP, two
steps) check the whole path, one of them always, the others marked slow."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from accelerate import Accelerator

from dataset_builders import load_benchmark
from dataset_builders.__main__ import main as dataset_cli
from dataset_builders.publish import relative_video_paths
from modeling_tvr.training import run as training_run
from modeling_tvr.training.arguments import data_label
from modeling_tvr.training.command_line import build_parser, parse_arguments
from modeling_tvr.training.presets import preset_settings
from modeling_tvr.training.run import announce_splits, load_data

from .own_videos import OWN_VIDEOS, write_jsonl, write_own_videos_folder, write_videos
from .train_runs import ROOT, TRAIN_SCRIPT, train_in_process

# A from-scratch CLIP, two steps of two pairs, few small frames: the whole path in seconds.
TINY = ["--max_steps", "2", "--batch_size", "2", "--max_frames", "2", "--num_workers", "0", "--eval_batch_size", "4"]

pytestmark = pytest.mark.usefixtures("isolated_datasets_cache")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_own_videos_folder(tmp_path / "my_videos")


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """train.py's runs in this test are one CPU process in this one."""
    monkeypatch.setattr(training_run, "make_accelerator", lambda train_args: Accelerator(cpu=True))


def parse(*argv: str):
    """train.py's arguments of `argv`, presets resolved."""
    return parse_arguments(build_parser(), list(argv))


def run_in_process(monkeypatch: pytest.MonkeyPatch, *argv: str) -> SystemExit:
    """What `python train.py argv` runs, which must stop with SystemExit (a refusal)."""
    with pytest.raises(SystemExit) as raised:
        train_in_process(monkeypatch, *argv)
    return raised.value


def run_train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(cwd / "hf_datasets"),
        "HF_MODULES_CACHE": str(cwd / "modules"),
    }
    return subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def assert_ran(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr[-4000:]


def metrics_of(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


# --- arguments and presets -------------------------------------------------------------------------------------------


def test_own_videos_take_the_toy_recipe_from_scratch_and_the_paper_recipe_from_a_clip(folder):
    scratch = parse("--benchmark", "videofolder", "--data_dir", str(folder))
    _, data_args, train_args = scratch
    assert (train_args.recipe, train_args.batch_size, train_args.lr) == ("adamw", 32, 2e-3)
    assert (data_args.max_frames, data_args.video_framerate) == (8, 4)
    assert train_args.output_dir == str(Path("outputs") / "drl-my_videos")  # named after the folder

    _, data_args, train_args = parse("--benchmark", "videofolder", "--data_dir", str(folder), "--clip", "c")
    msrvtt = preset_settings("msrvtt", None)
    assert (train_args.recipe, train_args.batch_size, train_args.lr) == ("authors", 128, msrvtt["lr"])
    assert (data_args.max_frames, data_args.video_framerate) == (msrvtt["max_frames"], msrvtt["video_framerate"])

    # --dataset_name has no benchmark; it takes the same recipe and names its outputs after the dataset.
    _, data_args, train_args = parse("--dataset_name", "me/my-clips", "--init", "outputs/drl-x")
    assert data_args.benchmark is None and train_args.recipe == "authors"
    assert train_args.output_dir == str(Path("outputs") / "drl-me--my-clips")
    _, _, train_args = parse("--dataset_name", "me/my-clips", "--init", "model", "--eval_only")
    assert train_args.output_dir == str(Path("outputs") / "eval" / "model-me--my-clips")


def test_existing_benchmarks_keep_their_settings_and_output_folders():
    _, data_args, train_args = parse()
    assert data_args.benchmark == "toy" and train_args.output_dir == str(Path("outputs") / "drl-toy")
    assert preset_settings("toy", None) == preset_settings("toy", None, pretrained=True)
    _, _, train_args = parse("--benchmark", "msrvtt", "--data_dir", "d")
    assert train_args.output_dir == str(Path("outputs") / "drl-msrvtt")


def test_help_says_what_own_videos_train_with(capsys):
    with pytest.raises(SystemExit):
        parse("--help")
    help_text = " ".join(capsys.readouterr().out.split())
    for text in ("--dataset_name", "--test_fraction", "--missing_videos {error,skip}", "metadata.csv"):
        assert text in help_text, text
    own_videos = (
        "videofolder your own videos (--data_dir DIR with a metadata.csv), and any --dataset_name: with --clip or "
        "--init the defaults (msrvtt's recipe); without, a tiny CLIP from scratch with the toy's settings"
    )
    assert own_videos in help_text


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--benchmark", "videofolder"], "needs --data_dir DIR"),
        (["--dataset_name", "me/clips", "--benchmark", "toy"], "pass one of them"),
        (["--dataset_config", "main"], "--dataset_config applies only with --dataset_name"),
        (["--video_column", "v", "--test_fraction", "0.2"], "--video_column, --test_fraction apply only to your own"),
        (["--missing_videos", "skip"], "--missing_videos does not apply to the toy benchmark"),
    ],
)
def test_data_options_that_do_not_fit_are_usage_errors(capsys, argv, named):
    with pytest.raises(SystemExit) as raised:
        parse(*argv)
    assert raised.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert ": error: " in error and named in error, error


# --- data loading ----------------------------------------------------------------------------------------------------


def test_splits_are_used_as_announced_and_multi_caption_videos_stay_one_video(folder, caplog):
    _, data_args, train_args = parse("--benchmark", "videofolder", "--data_dir", str(folder), "--test_fraction", "0.5")
    data, eval_split = load_data(data_args, Accelerator(cpu=True))
    assert eval_split == "test" and set(data) == {"train", "test"}
    with caplog.at_level("INFO", logger="train"):
        uses = announce_splits(data, eval_split, data_args, train_args)
    assert uses["train"]["used_for"] == "training" and uses["test"]["used_for"] == "reported metrics"
    assert uses["test"]["source"] == f"held out 50% of videos (2 of 4 videos) from {folder / 'metadata.csv'}"
    # Five captions of four videos: the dog's two captions are two rows of one video, in whichever split it is.
    assert sum(use["captions"] for use in uses.values()) == 5 and sum(use["videos"] for use in uses.values()) == 4
    assert "no validation split: the model of the last step is kept" in caplog.text
    test = uses["test"]
    assert f"  test ({test['captions']} captions, 2 videos): reported metrics; source: held out 50%" in caplog.text


def test_a_validation_split_is_used_for_model_selection(folder):
    (folder / "metadata.csv").write_text(
        "file_name,caption,split\ncat.mp4,a cat,train\nclips/dog.mp4,a dog,train\nbird.mp4,a bird,validation\n"
        "fish.mp4,a fish,test\n"
    )
    _, data_args, train_args = parse("--benchmark", "videofolder", "--data_dir", str(folder))
    data, eval_split = load_data(data_args, Accelerator(cpu=True))
    uses = announce_splits(data, eval_split, data_args, train_args)
    assert uses["validation"]["used_for"] == "model selection (best epoch on t2v R@1)"
    assert uses["test"] == {
        "used_for": "reported metrics",
        "source": f"rows with split test in {folder / 'metadata.csv'}",
        "captions": 1,
        "videos": 1,
    }
    _, data_args, train_args = parse("--benchmark", "videofolder", "--data_dir", str(folder), "--eval_only")
    uses = announce_splits(data, eval_split, data_args, train_args)
    assert [use["used_for"] for use in uses.values()] == ["not used", "not used", "reported metrics"]


def test_missing_videos_skip_keeps_the_rest_with_a_warning(folder, caplog):
    (folder / "fish.mp4").unlink()
    _, data_args, _ = parse("--benchmark", "videofolder", "--data_dir", str(folder), "--missing-videos", "skip")
    data, _ = load_data(data_args, Accelerator(cpu=True))
    assert "fish.mp4" not in {row["video_id"] for split in data.values() for row in split}
    assert "1 video file(s) not found" in caplog.text and "skipping their 1 caption row(s)" in caplog.text


def test_a_pushed_videofolder_loads_back_from_the_hub_as_the_folder_does(folder, dataset_hub):
    assert dataset_cli(["videofolder", "--data-dir", str(folder), "--push-to-hub", "me/mine"]) == 0
    _, data_args, _ = parse("--dataset_name", "me/mine", "--video_dir", str(folder))
    loaded, eval_split = load_data(data_args, Accelerator(cpu=True))
    built = load_benchmark("videofolder", folder)
    assert eval_split == "test"
    assert {split: rows.to_list() for split, rows in loaded.items()} == {
        split: rows.to_list() for split, rows in built.items()
    }
    assert data_label(data_args) == "me/mine"


# --- bad input: one line, nothing left behind ------------------------------------------------------------------------

BAD_FOLDERS = {
    "missing column": (
        "movie,caption\ncat.mp4,a cat\n",
        ["columns ['movie', 'caption']", "'file_name'", "--video_column"],
    ),
    "empty caption": ("file_name,caption\ncat.mp4,a cat\nbird.mp4,\n", ["metadata.csv, line 3", "'caption'"]),
    "no file name": ("file_name,caption\ncat.mp4,a cat\n,a dog\n", ["metadata.csv, line 3", "'file_name'"]),
    "missing videos": (
        "file_name,caption\ncat.mp4,a cat\ngone.mp4,a ghost\nlost.mp4,a shadow\n",
        ["2 video file(s) not found", "gone.mp4", "lost.mp4", "--missing-videos skip"],
    ),
    "video in two splits": (
        "file_name,caption,split\ncat.mp4,a cat,train\ncat.mp4,a cat sits,test\nbird.mp4,a bird,train\n",
        ["1 video(s) are in two splits, first cat.mp4: in train", "line 2", "in test", "line 3"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_FOLDERS))
def test_each_bad_folder_is_one_line_and_leaves_no_output_folder(in_process, monkeypatch, folder, tmp_path, case):
    metadata, named = BAD_FOLDERS[case]
    (folder / "metadata.csv").write_text(metadata)
    out = tmp_path / "outputs" / "run"
    exit = run_in_process(
        monkeypatch,
        "--benchmark",
        "videofolder",
        "--data_dir",
        str(folder),
        "--output_dir",
        str(out),
        *TINY,
    )
    message = str(exit.code)
    assert message.startswith("error: ") and "\n" not in message, message
    for text in named:
        assert text in message, (text, message)
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    ("make", "named"),
    [
        ("no metadata", ["no metadata.csv or metadata.jsonl in", "file_name and a caption column"]),
        (
            "parquet without a caption column",
            ["rows.parquet", "expected a caption column named 'caption'", "--caption_column"],
        ),
        ("relative paths without video_dir", ["holds paths relative to a folder", "--video_dir"]),
        ("unknown option", ["Unknown --benchmark_options key(s) ['num_videos']"]),
        ("too few pairs for a batch", ["4 training pair(s), fewer than one batch (--batch_size 32)", "--batch_size 4"]),
        ("unreachable Hub dataset", ["--dataset_name someone/nothing-here:"]),
    ],
)
def test_other_bad_inputs_are_one_line_errors(in_process, monkeypatch, folder, tmp_path, make, named, dataset_hub):
    import datasets

    out = tmp_path / "outputs" / "run"
    argv = ["--output_dir", str(out), "--num_workers", "0"]
    if make == "no metadata":
        (folder / "metadata.csv").unlink()
        argv += ["--benchmark", "videofolder", "--data_dir", str(folder), *TINY]
    elif make == "parquet without a caption column":
        datasets.Dataset.from_dict({"video": ["cat.mp4"], "label": ["a cat"]}).to_parquet(folder / "rows.parquet")
        argv += ["--dataset_name", str(folder / "rows.parquet"), *TINY]
    elif make == "relative paths without video_dir":
        assert dataset_cli(["videofolder", "--data-dir", str(folder), "--push-to-hub", "me/mine"]) == 0
        argv += ["--dataset_name", "me/mine", *TINY]
    elif make == "unknown option":
        argv += ["--dataset_name", str(folder), "--benchmark_options", '{"num_videos": 3}', *TINY]
    elif make == "too few pairs for a batch":
        argv += ["--benchmark", "videofolder", "--data_dir", str(folder)]
    else:
        argv += ["--dataset_name", "someone/nothing-here", *TINY]
    message = str(run_in_process(monkeypatch, *argv).code)
    assert message.startswith("error: ") and "\n" not in message, message
    for text in named:
        assert text in message, (text, message)
    assert not (tmp_path / "outputs").exists()


# --- train.py end to end ---------------------------------------------------------------------------------------------


def test_train_then_evaluate_a_folder_with_metadata_csv(folder, tmp_path):
    """The README's example: a five-row metadata.csv; training says which split does what, records it, names the
    folder on the card, and --eval_only --init on the same folder gives the same metrics."""
    out = tmp_path / "out"
    common = ["--benchmark", "videofolder", "--data_dir", str(folder), "--test_fraction", "0.5", *TINY]
    trained = run_train(*common, "--output_dir", str(out), cwd=tmp_path)
    assert_ran(trained)
    assert "Data: my_videos" in trained.stderr and "no validation split: the model of the last step is kept" in (
        trained.stderr
    )
    assert "source: held out 50% of videos (2 of 4 videos) from" in trained.stderr
    assert "| t2v |" in trained.stdout and "| v2t |" in trained.stdout
    metrics = metrics_of(out)
    assert (metrics["benchmark"], metrics["dataset"], metrics["split"]) == ("videofolder", "my_videos", "test")
    assert metrics["selection"] == "last step (no validation split)"
    assert set(metrics["splits"]) == {"train", "test"} and metrics["splits"]["test"]["used_for"] == "reported metrics"
    assert metrics["num_videos"] == 2 and metrics["num_texts"] == metrics["splits"]["test"]["captions"]
    from huggingface_hub import ModelCard

    card = ModelCard.load(out / "README.md")
    assert card.data.datasets == ["my_videos"] and "Trained on: my_videos" in card.text

    evaluated = run_train(*common, "--eval_only", "--init", str(out), cwd=tmp_path)
    assert_ran(evaluated)
    again = metrics_of(tmp_path / "outputs" / "eval" / "out-my_videos")
    for direction in ("t2v", "v2t"):
        assert again["metrics"][direction] == pytest.approx(metrics["metrics"][direction])
    assert again["splits"]["train"]["used_for"] == "not used"


@pytest.mark.slow
def test_split_folders_with_metadata_jsonl_select_the_best_epoch_on_validation(tmp_path):
    data_dir = tmp_path / "clips"
    layout = {
        "train": [("a.mp4", ["a red square", "a red square moves"]), ("b.mp4", "a blue ball"), ("c.mp4", "a cat")],
        "validation": [("d.mp4", "a dog"), ("e.mp4", "an eel")],
        "test": [("f.mp4", "a fish"), ("g.mp4", ["a goat", "a goat jumps"])],
    }
    for split, rows in layout.items():
        write_videos(data_dir / split, *(name for name, _ in rows))
        write_jsonl(data_dir / split / "metadata.jsonl", [{"file_name": name, "text": text} for name, text in rows])
    out = tmp_path / "out"
    options = ["--benchmark", "videofolder", "--data_dir", str(data_dir), *TINY, "--max_steps", "-1", "--epochs", "1"]
    result = run_train(*options, "--validate_every_epochs", "1", "--output_dir", str(out), cwd=tmp_path)
    assert_ran(result)
    metrics = metrics_of(out)
    assert metrics["selection"].startswith("best epoch on validation t2v R@1: epoch 1")
    assert metrics["splits"]["validation"]["used_for"] == "model selection (best epoch on t2v R@1)"
    assert metrics["splits"]["validation"]["source"] == str(data_dir / "validation" / "metadata.jsonl")
    # The goat's two captions: three test captions of two videos, scored both ways.
    assert (metrics["num_texts"], metrics["num_videos"]) == (3, 2) and set(metrics["metrics"]) == {"t2v", "v2t"}


@pytest.mark.slow
def test_a_parquet_file_and_a_pushed_folder_train_with_video_dir(folder, tmp_path, dataset_hub):
    """`--dataset_name FILE --video_dir DIR`, and what `--push-to-hub` writes (the repository's files, here the
    stand-in Hub's folder) loaded back the same way."""
    built = load_benchmark("videofolder", folder, test_fraction=0.5)
    rows = tmp_path / "rows.parquet"
    relative_video_paths(built)["train"].to_parquet(rows)
    out = tmp_path / "from-parquet"
    result = run_train(
        "--dataset_name", str(rows), "--video_dir", str(folder), *TINY, "--output_dir", str(out), cwd=tmp_path
    )
    assert_ran(result)
    metrics = metrics_of(out)
    assert metrics["benchmark"] is None and metrics["dataset"] == "rows.parquet"
    assert metrics["splits"]["test"]["source"].startswith(
        f"held out 10% of videos (1 of {len(set(built['train']['video']))}"
    )

    assert dataset_cli(["videofolder", "--data-dir", str(folder), "--push-to-hub", "me/mine"]) == 0
    out = tmp_path / "from-hub"
    result = run_train(
        "--dataset_name",
        str(dataset_hub["me/mine"]),
        "--video_dir",
        str(folder),
        *TINY,
        "--output_dir",
        str(out),
        cwd=tmp_path,
    )
    assert_ran(result)
    metrics = metrics_of(out)
    pushed = load_benchmark("videofolder", folder)
    assert metrics["splits"]["test"] == {
        "used_for": "reported metrics",
        "source": f"split test of {dataset_hub['me/mine']}",
        "captions": pushed["test"].num_rows,
        "videos": len(set(pushed["test"]["video"])),
    }


@pytest.mark.slow
def test_resume_and_search_over_the_same_folder(folder, tmp_path):
    out = tmp_path / "out"
    common = ["--benchmark", "videofolder", "--data_dir", str(folder), *TINY, "--output_dir", str(out)]
    assert_ran(run_train(*common, "--checkpointing_steps", "1", "--max_steps", "1", cwd=tmp_path))
    resumed = run_train(*common, "--checkpointing_steps", "1", "--resume", "true", cwd=tmp_path)
    assert_ran(resumed)
    assert "Resumed from" in resumed.stderr and "at step 1" in resumed.stderr and metrics_of(out)["steps"] == 2

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    search = [sys.executable, "-m", "modeling_tvr.search", "--model", str(out), "--videos", str(folder), "a dog runs"]
    result = subprocess.run(search, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    # Every video of the folder is ranked; its metadata.csv is not taken for a video, and the folder still loads.
    assert "4 video(s) indexed" in result.stdout + result.stderr
    assert sorted(
        line.split()[-1] for line in result.stdout.splitlines() if line.strip()[:2].rstrip(".").isdigit()
    ) == (sorted(OWN_VIDEOS))
    assert load_benchmark("videofolder", folder, test_fraction=0)["train"].num_rows == 5


@pytest.mark.slow
def test_a_bad_folder_fails_in_one_line_without_training_or_an_output_folder(folder, tmp_path):
    (folder / "metadata.csv").write_text("file_name,caption\ncat.mp4,a cat\nbird.mp4,\nfish.mp4,a fish\n")
    result = run_train("--benchmark", "videofolder", "--data_dir", str(folder), *TINY, cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {folder / 'metadata.csv'}, line 3: expected a value in column 'caption'"
    )
    assert not (tmp_path / "outputs").exists()
