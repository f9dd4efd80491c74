"""``load_video_dataset``: any video/caption dataset that `datasets` loads, as rows of the shared schema; the Hub is
stood in for by local files (tests run offline; the `dataset_hub` fixture)."""

from pathlib import Path

import datasets
import pytest

import dataset_builders.publish as publish
from dataset_builders import load_benchmark, load_video_dataset, split_sources
from dataset_builders.__main__ import main
from dataset_builders.annotated import MissingVideosError
from dataset_builders.annotation_files import MalformedAnnotationError
from dataset_builders.columns import MissingColumnError
from dataset_builders.splits import VideoInTwoSplitsError

from .own_videos import METADATA_CSV, OWN_VIDEOS, write_videos

pytestmark = pytest.mark.usefixtures("isolated_datasets_cache")


@pytest.fixture
def video_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "videos"
    write_videos(folder, *OWN_VIDEOS)
    return folder


def test_pushed_videofolder_loads_back_from_the_hub_with_video_dir(tmp_path, video_dir, dataset_hub):
    (video_dir / "metadata.csv").write_text(METADATA_CSV)
    built = load_benchmark("videofolder", video_dir)
    assert main(["videofolder", "--data-dir", str(video_dir), "--push-to-hub", "me/mine"]) == 0
    # Published paths are relative to the video folder: loading needs to be told where the videos are here.
    with pytest.raises(ValueError, match=r"me/mine: column 'video' holds paths relative to a folder .*pass video_dir"):
        load_video_dataset("me/mine")
    loaded = load_video_dataset("me/mine", video_dir=video_dir)
    assert {split: rows.to_list() for split, rows in loaded.items()} == {
        split: rows.to_list() for split, rows in built.items()
    }
    assert loaded["train"].features == built["train"].features
    assert split_sources(loaded) == {"train": "split train of me/mine", "test": "split test of me/mine"}
    assert load_video_dataset("me/mine", video_dir=video_dir, split="test").to_list() == built["test"].to_list()


def test_local_parquet_export_loads_back_relative_to_its_own_folder(tmp_path, video_dir):
    (video_dir / "metadata.csv").write_text(METADATA_CSV)
    built = load_benchmark("videofolder", video_dir, test_fraction=0)
    relative = publish.relative_video_paths(built)
    relative["train"].to_parquet(video_dir / "rows.parquet")
    loaded = load_video_dataset(video_dir / "rows.parquet", test_fraction=0)
    assert loaded["train"].to_list() == built["train"].to_list()


def test_csv_file_columns_are_detected_and_a_test_split_held_out(tmp_path, video_dir):
    table = tmp_path / "videos" / "captions.csv"
    table.write_text("video_path,sentence\ncat.mp4,a cat\nclips/dog.mp4,a dog\nbird.mp4,a bird\nfish.mp4,a fish\n")
    loaded = load_video_dataset(table)
    assert set(loaded) == {"train", "test"} and loaded["test"].num_rows == 1
    rows = [row for split in loaded.values() for row in split]
    assert sorted(row["video"] for row in rows) == sorted(str(video_dir / name) for name in OWN_VIDEOS)
    assert split_sources(loaded)["test"] == f"held out 10% of videos (1 of 4 videos) from split train of {table}"


def test_given_column_names_are_used_and_a_missing_one_names_columns_found_and_wanted(tmp_path, video_dir):
    table = video_dir / "captions.csv"
    table.write_text("movie,label,caption\ncat.mp4,a cat,not this one\nbird.mp4,a bird,nor this\n")
    with pytest.raises(
        MissingColumnError, match=r"columns \['movie', 'label', 'caption'\]: expected a video column named 'video' or"
    ):
        load_video_dataset(table)
    rows = load_video_dataset(table, video_column="movie", caption_column="label", split="train", test_fraction=0)
    assert rows["caption"] == ["a cat", "a bird"] and rows["video_id"] == ["cat.mp4", "bird.mp4"]
    with pytest.raises(MissingColumnError, match=r"expected a caption column named 'sentences'"):
        load_video_dataset(table, video_column="movie", caption_column="sentences")


def test_video_feature_and_caption_lists_expand_to_one_row_per_caption(video_dir, dataset_hub):
    dataset_hub["me/clips"] = video_dir / "hub"
    rows = datasets.Dataset.from_dict(
        {
            "clip": [str(video_dir / "cat.mp4"), str(video_dir / "fish.mp4")],
            "captions": [["a cat", "a cat sits"], ["a fish"]],
        },
        features=datasets.Features({"clip": datasets.Video(), "captions": datasets.List(datasets.Value("string"))}),
    )
    rows.to_parquet(dataset_hub["me/clips"] / "data" / "test-00000-of-00001.parquet")
    loaded = load_video_dataset("me/clips", split="test")
    assert [(row["video"], row["caption"]) for row in loaded] == [
        (str(video_dir / "cat.mp4"), "a cat"),
        (str(video_dir / "cat.mp4"), "a cat sits"),
        (str(video_dir / "fish.mp4"), "a fish"),
    ]


def test_empty_caption_list_is_refused_naming_the_row(tmp_path, video_dir):
    datasets.Dataset.from_dict({"video": ["cat.mp4", "fish.mp4"], "captions": [["a cat"], []]}).to_parquet(
        video_dir / "rows.parquet"
    )
    with pytest.raises(
        MalformedAnnotationError, match=r"rows.parquet, train split, row 1: expected at least one caption"
    ):
        load_video_dataset(video_dir / "rows.parquet")


def test_missing_videos_are_counted_or_skipped(video_dir):
    (video_dir / "rows.csv").write_text("video,caption\ncat.mp4,a cat\ngone.mp4,a ghost\nbird.mp4,a bird\n")
    with pytest.raises(MissingVideosError, match=r"1 video file\(s\) not found \(first: .*gone.mp4"):
        load_video_dataset(video_dir / "rows.csv")
    rows = load_video_dataset(video_dir / "rows.csv", missing_videos="skip", test_fraction=0, split="train")
    assert rows["video_id"] == ["cat.mp4", "bird.mp4"]


def test_video_in_two_splits_is_named_with_both(video_dir):
    data = video_dir / "data"
    data.mkdir()
    (data / "train.csv").write_text("video,caption\ncat.mp4,a cat\nbird.mp4,a bird\n")
    (data / "test.csv").write_text("video,caption\nfish.mp4,a fish\nbird.mp4,a bird again\n")
    with pytest.raises(VideoInTwoSplitsError, match=r"first bird.mp4: in train \(.*row 1\) and in test \(.*row 1\)"):
        load_video_dataset(video_dir, video_dir=video_dir)


def test_a_video_folder_path_goes_to_the_videofolder_builder(video_dir):
    (video_dir / "metadata.csv").write_text(METADATA_CSV)
    loaded = load_video_dataset(video_dir, test_fraction=0.5)
    assert split_sources(loaded)["test"].startswith("held out 50% of videos (2 of 4 videos)")
