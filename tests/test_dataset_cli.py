"""The benchmark command line (``python -m dataset_builders``) and its Hub publishing, with the Hub mocked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
from huggingface_hub import DatasetCard
from huggingface_hub.errors import EntryNotFoundError

import dataset_builders.publish as publish
from dataset_builders.__main__ import main, parse_options

from .msrvtt_files import CAPTIONS, TEST, TRAIN_7K, TRAIN_9K, touch_videos, write_msrvtt

# Arrow files of these throwaway builds stay out of the user's datasets cache.
pytestmark = pytest.mark.usefixtures("isolated_datasets_cache")

REPO_ROOT = Path(__file__).resolve().parent.parent
# What `datasets`' push_to_hub leaves in README.md: the card must keep it, or the Hub loses the features and files.
DATASETS_README = """---
dataset_info:
  features:
  - name: video_id
    dtype: string
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
---
"""


@pytest.fixture
def msrvtt(tmp_path: Path) -> tuple[Path, Path]:
    """(data_dir, video_dir) of a small MSR-VTT in the real file formats, videos in nested folders."""
    data_dir, video_dir = tmp_path / "annotations", tmp_path / "videos"
    write_msrvtt(data_dir, CAPTIONS, TRAIN_9K, TRAIN_7K, TEST)
    touch_videos(video_dir, list(CAPTIONS), nested=True)
    return data_dir, video_dir


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict:
    """Mocks the three Hub calls of a push and records what they were given."""
    calls: dict = {}

    def push_rows(self, repo_id, **kwargs):
        calls["rows"] = (self, repo_id, kwargs)

    def download(repo_id, filename, **kwargs):
        calls["download"] = (repo_id, filename, kwargs)
        (tmp_path / "hub_readme.md").write_text(DATASETS_README)
        return str(tmp_path / "hub_readme.md")

    def push_card(self, repo_id, **kwargs):
        calls["card"] = (str(self), repo_id, kwargs)

    monkeypatch.setattr(datasets.DatasetDict, "push_to_hub", push_rows)
    monkeypatch.setattr(publish, "hf_hub_download", download)
    monkeypatch.setattr(DatasetCard, "push_to_hub", push_card)
    return calls


def test_prints_rows_and_videos_per_split(msrvtt, capsys):
    data_dir, video_dir = msrvtt
    assert main(["msrvtt", "--data-dir", str(data_dir), "--video-dir", str(video_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "msrvtt: 2 split(s)"
    assert lines[1].split() == ["train", "24", "rows", "7", "videos"]
    assert lines[2].split() == ["test", "3", "rows", "3", "videos"]


def test_options_and_missing_video_policy(msrvtt, capsys):
    data_dir, video_dir = msrvtt
    next(video_dir.rglob("video0.mp4")).unlink()
    args = ["msrvtt", "--data-dir", str(data_dir), "--video-dir", str(video_dir), "--option", "train_split=7k"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "1 video(s)" in err
    # The fix in the command line's spelling, not Python's.
    assert "--missing-videos skip" in err and "missing_videos=" not in err
    assert main([*args, "--missing-videos", "skip"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[3] == "4"  # the 7k list's 5 videos, less video0


def test_option_values_take_the_type_of_the_default():
    assert parse_options("toy", ["seed=3", "seconds=1.5", "num_validation_videos=0"]) == {
        "seed": 3,
        "seconds": 1.5,
        "num_validation_videos": 0,
    }
    assert parse_options("msrvtt", ["train_split=7k"]) == {"train_split": "7k"}
    with pytest.raises(ValueError, match="seed expects int"):
        parse_options("toy", ["seed=one"])
    with pytest.raises(ValueError, match="key=value"):
        parse_options("toy", ["seed"])


def test_toy_needs_no_data_dir_option(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    options = ["num_videos=72", "num_validation_videos=0", "seconds=0.5", "fps=4", "size=32"]
    assert main(["toy", *(arg for option in options for arg in ("--option", option))]) == 0
    assert capsys.readouterr().out.splitlines()[1].split() == ["test", "72", "rows", "72", "videos"]
    assert (tmp_path / "cache" / "modeling_tvr" / "toy").is_dir()


def test_bad_name_folder_or_flags_fail_clearly(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["msrvt", "--data-dir", str(tmp_path)])
    assert exit_info.value.code == 2 and "invalid choice: 'msrvt'" in capsys.readouterr().err

    with pytest.raises(SystemExit) as exit_info:
        main(["msrvtt"])
    assert exit_info.value.code == 2 and "--data-dir is required for msrvtt" in capsys.readouterr().err

    with pytest.raises(SystemExit):
        main(["msrvtt", "--data-dir", str(tmp_path), "--private"])
    assert "only apply with --push-to-hub" in capsys.readouterr().err

    assert main(["msrvtt", "--data-dir", str(tmp_path / "nowhere")]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: msrvtt: annotation folder") and "nowhere does not exist" in error

    assert main(["msrvtt", "--data-dir", str(tmp_path), "--option", "train_splits=7k"]) == 1
    assert "Unknown option(s) ['train_splits']" in capsys.readouterr().err


def test_help_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "dataset_builders", "--help"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "--push-to-hub REPO" in result.stdout and "msrvtt" in result.stdout


def test_push_uploads_relative_paths_and_a_card(msrvtt, hub, tmp_path, capsys):
    data_dir, video_dir = msrvtt
    args = ["msrvtt", "--data-dir", str(data_dir), "--video-dir", str(video_dir), "--push-to-hub", "me/msrvtt"]
    assert main([*args, "--private", "--revision", "v1"]) == 0
    assert "pushed msrvtt to dataset repository me/msrvtt" in capsys.readouterr().out

    rows, repo_id, kwargs = hub["rows"]
    assert repo_id == "me/msrvtt" and kwargs == {"private": True, "revision": "v1"}
    assert list(rows) == ["train", "test"] and rows["train"].num_rows == 24
    for split in rows.values():
        for row in split:
            # Relative to the folder holding all videos, in the archive's nested layout, so a copy resolves them.
            assert not os.path.isabs(row["video"]) and row["video"].startswith("part")
            assert (video_dir / row["video"]).name == f"{row['video_id']}.mp4"
            assert (video_dir / row["video"]).is_file()
            assert str(tmp_path) not in str(row)

    assert hub["download"] == ("me/msrvtt", "README.md", {"repo_type": "dataset", "revision": "v1"})
    content, card_repo, card_kwargs = hub["card"]
    assert card_repo == "me/msrvtt" and card_kwargs["repo_type"] == "dataset" and card_kwargs["revision"] == "v1"
    assert str(tmp_path) not in content
    (tmp_path / "README.md").write_text(content)
    card = DatasetCard.load(tmp_path / "README.md")
    assert card.data.pretty_name == "MSR-VTT"
    assert card.data.task_categories == ["text-to-video"] and "video-text-retrieval" in card.data.tags
    assert card.data.license == "other"
    assert card.data.configs[0]["data_files"][0]["path"] == "data/train-*"  # datasets' metadata survives
    assert "| train | 24 | 7 |" in card.text and "| test | 3 | 3 |" in card.text
    assert "## Videos" in card.text and "not uploaded" in card.text and 'load_dataset("me/msrvtt")' in card.text
    assert 'load_benchmark("msrvtt", data_dir, video_dir)' in card.text
    assert "| `video` | string |" in card.text and "under the benchmark's own license" in card.text


def test_push_without_private_or_existing_readme(msrvtt, hub, monkeypatch):
    data_dir, video_dir = msrvtt

    def no_readme(*args, **kwargs):
        raise EntryNotFoundError("README.md not found")

    monkeypatch.setattr(publish, "hf_hub_download", no_readme)
    assert main(["msrvtt", "--data-dir", str(data_dir), "--video-dir", str(video_dir), "--push-to-hub", "msrvtt"]) == 0
    assert hub["rows"][2] == {"private": None, "revision": None}
    assert DatasetCard(hub["card"][0]).data.pretty_name == "MSR-VTT"


def test_toy_prints_where_its_videos_are(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    options = ["num_videos=72", "num_validation_videos=0", "seconds=0.5", "fps=4", "size=32"]
    assert main(["toy", *(arg for option in options for arg in ("--option", option))]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    # <$XDG_CACHE_HOME or ~/.cache>/modeling_tvr/toy/<options key>/videos, the options key naming seed and size.
    assert re.fullmatch(
        rf"Toy videos: {re.escape(str(tmp_path))}/cache/modeling_tvr/toy/seed0-n72-[0-9a-f]{{12}}/videos", last
    )
    assert len(list(Path(last.removeprefix("Toy videos: ")).glob("*.mp4"))) == 72

    # --video-dir puts them elsewhere, and the line says so.
    elsewhere = tmp_path / "my videos"
    assert (
        main(["toy", "--video-dir", str(elsewhere), *(arg for option in options for arg in ("--option", option))]) == 0
    )
    assert capsys.readouterr().out.splitlines()[-1] == f"Toy videos: {elsewhere}"
    assert len(list(elsewhere.glob("*.mp4"))) == 72
