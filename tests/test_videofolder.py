"""The ``videofolder`` benchmark: your own videos beside a metadata.csv / metadata.jsonl, as users write them."""

import hashlib
from pathlib import Path

import pytest

from dataset_builders import VideoFolderBenchmark, load_benchmark, split_sources
from dataset_builders.__main__ import main
from dataset_builders.annotated import MissingVideosError
from dataset_builders.annotation_files import MalformedAnnotationError
from dataset_builders.columns import MissingColumnError
from dataset_builders.splits import VideoInTwoSplitsError

from .own_videos import METADATA_CSV, OWN_VIDEOS, write_jsonl, write_videos

pytestmark = pytest.mark.usefixtures("isolated_datasets_cache")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A user's folder: four videos (one in a subfolder) and a metadata.csv naming them, five captions."""
    data_dir = tmp_path / "my videos"
    write_videos(data_dir, *OWN_VIDEOS)
    (data_dir / "metadata.csv").write_text(METADATA_CSV)
    return data_dir


def all_rows(dataset) -> list[dict]:
    return [row for split in dataset.values() for row in split]


def test_csv_rows_name_videos_relative_to_the_metadata_file(folder):
    dataset = load_benchmark("videofolder", folder, test_fraction=0)
    assert list(dataset) == ["train"]
    rows = dataset["train"].to_list()
    assert [row["video_id"] for row in rows] == ["cat.mp4", "clips/dog.mp4", "clips/dog.mp4", "bird.mp4", "fish.mp4"]
    assert all(row["video"] == str(folder / row["video_id"]) for row in rows)
    # Two rows of one video: two captions of it, the quoted comma kept.
    assert rows[2]["caption"] == "a brown dog plays in the waves, barking"
    assert all(row["start"] is None and row["end"] is None for row in rows)
    assert split_sources(dataset) == {"train": str(folder / "metadata.csv")}


def test_text_column_is_accepted_for_captions(folder):
    (folder / "metadata.csv").write_text("file_name,text\ncat.mp4,a cat\nbird.mp4,a bird\n")
    rows = load_benchmark("videofolder", folder, split="train", test_fraction=0).to_list()
    assert [row["caption"] for row in rows] == ["a cat", "a bird"]


def test_jsonl_caption_list_is_one_row_per_caption(folder):
    (folder / "metadata.csv").unlink()
    write_jsonl(
        folder / "metadata.jsonl",
        [
            {"file_name": "cat.mp4", "caption": ["a cat jumps", "a cat on a table"]},
            {"file_name": "fish.mp4", "caption": "a fish"},
        ],
    )
    rows = load_benchmark("videofolder", folder, split="train", test_fraction=0).to_list()
    assert [(row["video_id"], row["caption"]) for row in rows] == [
        ("cat.mp4", "a cat jumps"),
        ("cat.mp4", "a cat on a table"),
        ("fish.mp4", "a fish"),
    ]


def test_start_and_end_columns_make_clips_and_empty_ones_the_whole_video(folder):
    (folder / "metadata.csv").write_text(
        "file_name,caption,start,end\n"
        "clips/dog.mp4,a dog runs,0,2.5\nclips/dog.mp4,a dog swims,2.5,4\ncat.mp4,a cat,,\n"
    )
    rows = load_benchmark("videofolder", folder, split="train", test_fraction=0).to_list()
    assert [(row["video_id"], row["start"], row["end"]) for row in rows] == [
        ("clips/dog.mp4", 0.0, 2.5),
        ("clips/dog.mp4", 2.5, 4.0),
        ("cat.mp4", None, None),
    ]


def test_split_column_gives_the_splits_and_nothing_is_held_out(folder):
    (folder / "metadata.csv").write_text(
        "file_name,caption,split\ncat.mp4,a cat,train\nclips/dog.mp4,a dog,train\nbird.mp4,a bird,val\n"
        "fish.mp4,a fish,test\n"
    )
    dataset = load_benchmark("videofolder", folder)
    assert {split: rows["video_id"] for split, rows in dataset.items()} == {
        "train": ["cat.mp4", "clips/dog.mp4"],
        "validation": ["bird.mp4"],
        "test": ["fish.mp4"],
    }
    metadata = folder / "metadata.csv"
    assert split_sources(dataset) == {split: f"rows with split {split} in {metadata}" for split in dataset}


def test_split_folders_each_read_their_own_metadata_file(tmp_path):
    write_videos(tmp_path, "train/a.mp4", "train/b.mp4", "validation/c.mp4", "test/d.mp4")
    (tmp_path / "train" / "metadata.csv").write_text("file_name,caption\na.mp4,clip a\nb.mp4,clip b\n")
    write_jsonl(tmp_path / "validation" / "metadata.jsonl", [{"file_name": "c.mp4", "text": "clip c"}])
    (tmp_path / "test" / "metadata.csv").write_text("file_name,caption\nd.mp4,clip d\n")
    dataset = load_benchmark("videofolder", tmp_path)
    assert {split: rows["video_id"] for split, rows in dataset.items()} == {
        "train": ["train/a.mp4", "train/b.mp4"],
        "validation": ["validation/c.mp4"],
        "test": ["test/d.mp4"],
    }
    assert split_sources(dataset)["validation"] == str(tmp_path / "validation" / "metadata.jsonl")


def held_out_folder(tmp_path: Path, videos: int) -> Path:
    names = [f"v{index:02d}.mp4" for index in range(videos)]
    write_videos(tmp_path, *names)
    lines = [f"{name},first caption of {name}\n{name},second caption of {name}\n" for name in names]
    (tmp_path / "metadata.csv").write_text("file_name,caption\n" + "".join(lines))
    return tmp_path


def test_held_out_test_is_by_video_sized_and_chosen_by_a_seeded_hash(tmp_path):
    folder = held_out_folder(tmp_path, 20)
    dataset = load_benchmark("videofolder", folder, test_fraction=0.2)
    train, test = set(dataset["train"]["video_id"]), set(dataset["test"]["video_id"])
    assert len(test) == 4 and len(train) == 16 and not train & test
    assert dataset["test"].num_rows == 8  # both captions of each held-out video
    # The rule, spelled out: the videos first by SHA-256 of "<seed>\0<path relative to the folder>".
    ranked = sorted(train | test, key=lambda video: hashlib.sha256(f"0\0{video}".encode()).hexdigest())
    assert test == set(ranked[:4])
    notes = split_sources(dataset)
    assert notes["test"] == f"held out 20% of videos (4 of 20 videos) from {folder / 'metadata.csv'}"
    assert notes["train"] == f"{folder / 'metadata.csv'}, less the held-out test videos"

    # The same again on another load; another seed picks others.
    assert set(load_benchmark("videofolder", folder, split="test", test_fraction=0.2)["video_id"]) == test
    assert set(load_benchmark("videofolder", folder, split="test", test_fraction=0.2, seed=1)["video_id"]) != test


def test_held_out_test_has_at_least_one_video_and_leaves_one_to_train(tmp_path):
    folder = held_out_folder(tmp_path, 3)
    dataset = load_benchmark("videofolder", folder)  # 10% of 3 videos rounds to none: one is held out
    assert len(set(dataset["test"]["video_id"])) == 1 and len(set(dataset["train"]["video_id"])) == 2
    assert "held out 10% of videos (1 of 3 videos)" in split_sources(dataset)["test"]
    (folder / "metadata.csv").write_text("file_name,caption\nv00.mp4,only one video\n")
    with pytest.raises(ValueError, match="leaves no video to train on"):
        load_benchmark("videofolder", folder)


def test_changed_metadata_is_read_again_under_its_own_cache_key(folder):
    assert load_benchmark("videofolder", folder, test_fraction=0)["train"].num_rows == 5
    before = VideoFolderBenchmark(data_dir=str(folder), test_fraction=0).cache_dir
    (folder / "metadata.csv").write_text("file_name,caption\ncat.mp4,a cat sleeps\n")
    assert load_benchmark("videofolder", folder, test_fraction=0)["train"]["caption"] == ["a cat sleeps"]
    assert VideoFolderBenchmark(data_dir=str(folder), test_fraction=0).cache_dir != before


def test_missing_videos_are_counted_named_or_skipped(folder):
    (folder / "clips" / "dog.mp4").unlink()
    (folder / "fish.mp4").unlink()
    with pytest.raises(MissingVideosError, match=r"2 video file\(s\) not found \(first: .*dog.mp4 \(.*line 3\)"):
        load_benchmark("videofolder", folder)
    rows = load_benchmark("videofolder", folder, test_fraction=0, missing_videos="skip")["train"]
    assert rows["video_id"] == ["cat.mp4", "bird.mp4"]


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ("file_name,caption\ncat.mp4,a cat\n,a nameless video\n", r"line 3: expected a value in column 'file_name'"),
        ("file_name,caption\ncat.mp4,a cat\nbird.mp4,\n", r"line 3: expected a value in column 'caption'"),
        ("file_name,caption\ncat.mp4,   \n", r"line 2: expected a caption with at least one word.*whitespace"),
        ("file_name,caption,start,end\ncat.mp4,a cat,1,\n", r"line 2: expected both start and end, or neither"),
        ("file_name,caption,start,end\ncat.mp4,a cat,3,1\n", r"line 2: expected an end after the start"),
        ("file_name,caption,split\ncat.mp4,a cat,holdout\n", r"line 2: expected a split in column 'split'"),
    ],
    ids=["no-file-name", "empty-caption", "blank-caption", "start-without-end", "end-before-start", "unknown-split"],
)
def test_bad_csv_row_names_file_and_line(folder, metadata, message):
    (folder / "metadata.csv").write_text(metadata)
    with pytest.raises(MalformedAnnotationError, match=message) as error:
        load_benchmark("videofolder", folder)
    assert str(error.value).startswith(str(folder / "metadata.csv"))


def test_empty_caption_list_and_broken_jsonl_line_name_the_line(folder):
    (folder / "metadata.csv").unlink()
    write_jsonl(
        folder / "metadata.jsonl",
        [{"file_name": "cat.mp4", "caption": "a cat"}, {"file_name": "fish.mp4", "caption": []}],
    )
    with pytest.raises(MalformedAnnotationError, match=r"metadata.jsonl, line 2: expected at least one caption"):
        load_benchmark("videofolder", folder)
    (folder / "metadata.jsonl").write_text('{"file_name": "cat.mp4", "caption": "a cat"}\n{"file_name": "fish.mp4",\n')
    with pytest.raises(MalformedAnnotationError, match=r"metadata.jsonl, line 2, column \d+: expected a JSON object"):
        load_benchmark("videofolder", folder)


def test_missing_column_names_the_columns_found_and_wanted(folder):
    (folder / "metadata.csv").write_text("file_name,label\ncat.mp4,a cat\n")
    with pytest.raises(
        MissingColumnError,
        match=r"columns \['file_name', 'label'\]: expected a caption column named 'caption' or 'text'",
    ):
        load_benchmark("videofolder", folder)
    # A column named by the option is looked for alone.
    rows = load_benchmark("videofolder", folder, split="train", test_fraction=0, caption_column="label")
    assert rows["caption"] == ["a cat"]


def test_video_in_two_splits_is_named_with_both(folder):
    (folder / "metadata.csv").write_text(
        "file_name,caption,split\ncat.mp4,a cat,train\nbird.mp4,a bird,train\ncat.mp4,a cat again,test\n"
    )
    with pytest.raises(
        VideoInTwoSplitsError,
        match=r"1 video\(s\) are in two splits, first cat.mp4: in train \(.*line 2\) and in test \(.*line 4\)",
    ):
        load_benchmark("videofolder", folder)


def test_metadata_in_both_layouts_or_none_is_refused(folder):
    write_videos(folder, "train/a.mp4")
    (folder / "train" / "metadata.csv").write_text("file_name,caption\na.mp4,clip a\n")
    with pytest.raises(MalformedAnnotationError, match="either this file or metadata files in split folders"):
        load_benchmark("videofolder", folder)
    (folder / "metadata.csv").unlink()
    (folder / "train" / "metadata.csv").unlink()
    with pytest.raises(FileNotFoundError, match="no metadata.csv or metadata.jsonl in"):
        load_benchmark("videofolder", folder)


def test_command_line_prints_splits_and_where_each_came_from(folder, capsys):
    assert main(["videofolder", "--data-dir", str(folder), "--option", "test_fraction=0.25"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "videofolder: 2 split(s)"
    assert lines[1].split() == ["train", "4", "rows", "3", "videos"]
    assert lines[2].split() == ["test", "1", "rows", "1", "videos"]
    assert lines[3] == f"train: {folder / 'metadata.csv'}, less the held-out test videos"
    assert lines[4] == f"test: held out 25% of videos (1 of 4 videos) from {folder / 'metadata.csv'}"

    (folder / "cat.mp4").unlink()
    assert main(["videofolder", "--data-dir", str(folder)]) == 1
    assert "1 video file(s) not found" in capsys.readouterr().err
