"""The machinery shared by the real benchmarks: the video lookup hook, `attach_videos`, the annotation file readers."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataset_builders.annotated import MissingVideosError, VideoFileLookup, attach_videos
from dataset_builders.annotation_files import (
    MalformedAnnotationError,
    load_json,
    read_csv_columns,
    read_id_list,
)
from dataset_builders.msrvtt import MSRVTTBenchmark
from modeling_tvr.search.video_files import find_videos

from .msrvtt_files import CAPTIONS, TEST, TRAIN_7K, TRAIN_9K, write_msrvtt


def rows(*video_ids: str) -> list[dict]:
    return [
        {"video_id": video_id, "caption": f"about {video_id}", "start": None, "end": None} for video_id in video_ids
    ]


@pytest.fixture
def index(tmp_path: Path) -> VideoFileLookup:
    for name in ("a.mp4", "b.avi"):
        (tmp_path / name).touch()
    return VideoFileLookup(tmp_path)


def test_each_distinct_video_is_looked_up_once(index):
    looked_up: list[str] = []

    def find(video_id: str) -> Path | None:
        looked_up.append(video_id)
        return index.find(video_id)

    split_rows = {"train": rows("a", "a", "b", "a"), "test": rows("b", "a")}
    resolved = attach_videos(split_rows, index, "error", "bench", find=find)
    assert sorted(looked_up) == ["a", "b"]
    assert [Path(row["video"]).name for row in resolved["test"]] == ["b.avi", "a.mp4"]


def test_missing_videos_are_counted_once_and_skipped_per_row(index):
    split_rows = {"train": rows("a", "x", "x", "y"), "test": rows("y")}
    with pytest.raises(MissingVideosError, match=r"2 video\(s\).*first: x, y"):
        attach_videos(split_rows, index, "error", "bench")
    resolved = attach_videos(split_rows, index, "skip", "bench")
    assert list(resolved) == ["train"] and [row["video_id"] for row in resolved["train"]] == ["a"]


@pytest.mark.usefixtures("isolated_datasets_cache")
def test_find_video_is_the_only_lookup_a_benchmark_overrides(tmp_path, monkeypatch):
    write_msrvtt(tmp_path / "data", CAPTIONS, TRAIN_9K, TRAIN_7K, TEST)
    (tmp_path / "videos").mkdir()
    for video_id in CAPTIONS:
        (tmp_path / "videos" / f"clip_{video_id}.mp4").touch()

    class PrefixedMSRVTT(MSRVTTBenchmark):
        def find_video(self, index: VideoFileLookup, video_id: str) -> Path | None:
            return index.find(f"clip_{video_id}")

    builder = PrefixedMSRVTT(data_dir=str(tmp_path / "data"), video_dir=str(tmp_path / "videos"))
    builder.download_and_prepare()
    test = builder.as_dataset(split="test")
    assert [Path(path).name for path in test["video"]] == [f"clip_{video_id}.mp4" for video_id, _ in TEST]


def test_builders_and_the_search_command_find_the_same_videos_hidden_entries_skipped(tmp_path):
    """One walk and one rule: any depth, extensions in any case, hidden files and folders below the root left out
    (macOS's `._clip.mp4` resource forks, `.git`, the search index's `.drl-index`); the root itself may be hidden."""
    root = tmp_path / ".cache" / "videos"
    for name in ("a.mp4", "nested/b.MKV", "nested/deeper/c.webm", "._a.mp4", ".trash/d.mp4", "nested/.git/e.mp4"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).touch()
    (root / "notes.txt").touch()
    expected = sorted(str(root / name) for name in ("a.mp4", "nested/b.MKV", "nested/deeper/c.webm"))
    assert find_videos(root) == expected
    lookup = VideoFileLookup(root)
    assert sorted(str(path) for path in lookup.by_name.values()) == expected
    assert lookup.find("b") == root / "nested" / "b.MKV" and lookup.find("d") is None and lookup.find("._a") is None


def test_the_first_of_two_same_named_videos_in_the_walk_order_wins(tmp_path):
    """A folder's own files come before its sub-folders, sub-folders by name: the choice never depends on the disk."""
    for name in ("z/clip.mp4", "a/clip.mp4", "b/clip.avi"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    assert VideoFileLookup(tmp_path).find("clip") == tmp_path / "a" / "clip.mp4"
    (tmp_path / "clip.mov").touch()
    assert VideoFileLookup(tmp_path).find("clip") == tmp_path / "clip.mov"


def test_readers_name_file_and_place(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "a": 1,\n}')
    with pytest.raises(MalformedAnnotationError, match=r"broken\.json, line 3, column 1: expected valid JSON"):
        load_json(broken)

    table = tmp_path / "table.csv"
    table.write_text('video_id,sentence\nv1,"a, quoted ""b"""\nv2,\n')
    with pytest.raises(MalformedAnnotationError, match=r"table\.csv, line 3: expected a value in column 'sentence'"):
        read_csv_columns(table, ("video_id", "sentence"))
    assert read_csv_columns(table, ("video_id",))[0] == (2, {"video_id": "v1"})

    ids = tmp_path / "ids.txt"
    ids.write_text("v1\n\nv2\nv1\n")
    assert read_id_list(ids) == [(1, "v1"), (3, "v2")]
    ids.write_text("v1\nv2 v3\n")
    with pytest.raises(MalformedAnnotationError, match=r"ids\.txt, line 2: expected one video id per line"):
        read_id_list(ids)
