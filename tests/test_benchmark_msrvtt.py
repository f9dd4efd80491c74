"""The MSR-VTT builder (``dataset_builders.msrvtt``) on small files in the real formats, and one of realistic size."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from dataset_builders import benchmark_features, load_benchmark
from dataset_builders.annotated import MalformedAnnotationError, MissingVideosError

from .msrvtt_files import CAPTIONS, TEST, TRAIN_7K, TRAIN_9K, touch_videos, write_msrvtt

# Arrow files of these throwaway builds stay out of the user's datasets cache.
pytestmark = pytest.mark.usefixtures("isolated_datasets_cache")


@pytest.fixture
def small(tmp_path: Path) -> tuple[Path, Path]:
    data_dir, video_dir = tmp_path / "annotations", tmp_path / "videos"
    write_msrvtt(data_dir, CAPTIONS, TRAIN_9K, TRAIN_7K, TEST)
    touch_videos(video_dir, list(CAPTIONS), nested=True)
    return data_dir, video_dir


def test_splits_captions_and_test_order(small):
    data_dir, video_dir = small
    dataset = load_benchmark("msrvtt", data_dir=data_dir, video_dir=video_dir)
    assert list(dataset) == ["train", "test"]
    for split in dataset.values():
        assert split.features == benchmark_features()
        assert set(split["start"]) == {None} and set(split["end"]) == {None}
        for row in split:
            # Found in the nested folders, by id.
            assert os.path.isabs(row["video"]) and Path(row["video"]).name == f"{row['video_id']}.mp4"
            assert Path(row["video"]).is_relative_to(video_dir)
    train = dataset["train"]
    expected = sorted((video_id, caption) for video_id in TRAIN_9K for caption in CAPTIONS[video_id])
    assert sorted(zip(train["video_id"], train["caption"], strict=True)) == expected
    assert train.num_rows == len(expected) == 24
    # Test: the JSFusion pairs, one caption per video, in file order.
    assert list(zip(dataset["test"]["video_id"], dataset["test"]["caption"], strict=True)) == TEST


def test_7k_train_split(small):
    data_dir, video_dir = small
    train = load_benchmark("msrvtt", data_dir=data_dir, video_dir=video_dir, split="train", train_split="7k")
    assert set(train["video_id"]) == set(TRAIN_7K)
    assert sorted(train["caption"]) == sorted(caption for video_id in TRAIN_7K for caption in CAPTIONS[video_id])


def test_missing_videos_error_or_skip(small, caplog):
    data_dir, video_dir = small
    for video_id in ("video1", "video3", "video9"):
        next(video_dir.rglob(f"{video_id}.mp4")).unlink()
    with pytest.raises(MissingVideosError, match=r"3 video\(s\).*first: video1, video3, video9"):
        load_benchmark("msrvtt", data_dir=data_dir, video_dir=video_dir)

    with caplog.at_level(logging.WARNING, logger="dataset_builders"):
        dataset = load_benchmark("msrvtt", data_dir=data_dir, video_dir=video_dir, missing_videos="skip")
    assert "3 video(s)" in caplog.text
    assert set(dataset["train"]["video_id"]) == set(TRAIN_9K) - {"video1", "video3"}
    assert dataset["test"]["video_id"] == ["video7", "video8"]


def test_rebuild_after_annotations_change(small):
    data_dir, video_dir = small
    assert load_benchmark("msrvtt", data_dir=data_dir, video_dir=video_dir, split="train").num_rows == 24
    (data_dir / "MSRVTT_train.9k.csv").write_text("video_id\nvideo0\nvideo1\n")
    assert load_benchmark("msrvtt", data_dir=data_dir, video_dir=video_dir, split="train").num_rows == 7


def test_videos_default_to_data_dir(small):
    data_dir, _ = small
    touch_videos(data_dir / "videos" / "all", list(CAPTIONS))
    test = load_benchmark("msrvtt", data_dir=data_dir, split="test")
    assert all(Path(path).parent == data_dir / "videos" / "all" for path in test["video"])


def test_malformed_files_name_file_and_place(small):
    data_dir, video_dir = small
    train_csv = data_dir / "MSRVTT_train.9k.csv"
    train_csv.write_text("video_id\nvideo0\nvideo42\n")
    with pytest.raises(
        MalformedAnnotationError, match=r"MSRVTT_train\.9k\.csv, line 3 \(video_id 'video42'\)"
    ) as error:
        load_benchmark("msrvtt", data_dir=data_dir, video_dir=video_dir)
    assert "MSRVTT_data.json" in str(error.value)

    train_csv.write_text("vid\nvideo0\n")
    with pytest.raises(MalformedAnnotationError, match=r"MSRVTT_train\.9k\.csv, line 1.*columns \['video_id'\]"):
        load_benchmark("msrvtt", data_dir=data_dir, video_dir=video_dir)

    write_msrvtt(data_dir, CAPTIONS, TRAIN_9K, TRAIN_7K, TEST)
    (data_dir / "MSRVTT_JSFUSION_test.csv").write_text("key,vid_key,video_id,sentence\nret0,msr9,video9\n")
    with pytest.raises(MalformedAnnotationError, match=r"MSRVTT_JSFUSION_test\.csv, line 2.*'sentence'"):
        load_benchmark("msrvtt", data_dir=data_dir, video_dir=video_dir)

    write_msrvtt(data_dir, CAPTIONS, TRAIN_9K, TRAIN_7K, TEST)
    data = json.loads((data_dir / "MSRVTT_data.json").read_text())
    del data["sentences"][4]["caption"]
    (data_dir / "MSRVTT_data.json").write_text(json.dumps(data))
    with pytest.raises(MalformedAnnotationError, match=r"MSRVTT_data\.json, sentences\[4\]\['caption'\]: expected"):
        load_benchmark("msrvtt", data_dir=data_dir, video_dir=video_dir)

    (data_dir / "MSRVTT_data.json").write_text('{"sentences": [\n{"video_id": "video0",}\n]}')
    with pytest.raises(MalformedAnnotationError, match=r"MSRVTT_data\.json, line 2, column \d+: expected valid JSON"):
        load_benchmark("msrvtt", data_dir=data_dir, video_dir=video_dir)

    (data_dir / "MSRVTT_data.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"MSRVTT_data\.json not found"):
        load_benchmark("msrvtt", data_dir=data_dir, video_dir=video_dir)


def test_options_are_checked(small):
    data_dir, video_dir = small
    with pytest.raises(TypeError, match=r"train_splits.*valid options.*train_split"):
        load_benchmark("msrvtt", data_dir=data_dir, train_splits="9k")
    with pytest.raises(ValueError, match="train_split must be one of"):
        load_benchmark("msrvtt", data_dir=data_dir, train_split="1k")
    with pytest.raises(ValueError, match="missing_videos must be one of"):
        load_benchmark("msrvtt", data_dir=data_dir, missing_videos="ignore")


@pytest.mark.slow
def test_realistic_size(tmp_path):
    """9,000 train videos with 20 captions each and the 1,000 JSFusion test pairs, as in the real files."""
    train_ids = [f"video{i}" for i in range(9000)]
    test_ids = [f"video{i}" for i in range(9000, 10000)]
    captions = {
        video_id: [f"{video_id} caption {j}, with a comma" for j in range(20)] for video_id in train_ids + test_ids
    }
    test = [(video_id, f'"{video_id}" test sentence, quoted') for video_id in reversed(test_ids)]
    write_msrvtt(tmp_path / "data", captions, train_ids, train_ids[:7010], test)
    touch_videos(tmp_path / "videos", train_ids + test_ids, nested=True)

    dataset = load_benchmark("msrvtt", data_dir=tmp_path / "data", video_dir=tmp_path / "videos")
    assert dataset["test"].num_rows == 1000
    assert list(zip(dataset["test"]["video_id"], dataset["test"]["caption"], strict=True)) == test
    assert len(set(dataset["train"]["video_id"])) == 9000 and dataset["train"].num_rows == 180_000


@pytest.mark.parametrize("caption", ["   ", "\x00\x1b", ""])
def test_blank_or_control_only_caption_is_refused_where_it_enters(tmp_path, caption):
    captions = {**CAPTIONS, "video3": ["a man cooks", caption]}
    data_dir, video_dir = tmp_path / "ann", tmp_path / "videos"
    write_msrvtt(data_dir, captions, TRAIN_9K, TRAIN_7K, TEST)
    touch_videos(video_dir, list(captions))
    with pytest.raises(MalformedAnnotationError, match=r"video3.*a caption with at least one word"):
        load_benchmark("msrvtt", data_dir, video_dir)


@pytest.mark.parametrize(("encoding", "found"), [("cp1252", "cp1252"), ("utf-16", "UTF-16")])
def test_annotation_file_that_is_not_utf8_names_the_file_and_its_encoding(tmp_path, encoding, found):
    data_dir, video_dir = tmp_path / "ann", tmp_path / "videos"
    write_msrvtt(data_dir, CAPTIONS, TRAIN_9K, TRAIN_7K, TEST)
    touch_videos(video_dir, list(CAPTIONS))
    test_csv = data_dir / "MSRVTT_JSFUSION_test.csv"
    test_csv.write_bytes(test_csv.read_text().replace("someone cooks", "someone cooks crème brûlée").encode(encoding))
    with pytest.raises(MalformedAnnotationError, match=rf"MSRVTT_JSFUSION_test.csv.*{found}.*iconv"):
        load_benchmark("msrvtt", data_dir, video_dir)


def write_test_csv(data_dir: Path, lines: list[str]) -> None:
    """MSRVTT_JSFUSION_test.csv from raw lines: the released file leaves its sentences unquoted."""
    text = "key,vid_key,video_id,sentence\n" + "".join(f"{line}\n" for line in lines)
    (data_dir / "MSRVTT_JSFUSION_test.csv").write_text(text, encoding="utf-8")


def test_test_sentence_with_unquoted_commas_is_read_whole(small):
    data_dir, video_dir = small
    # The sentence is the last column, so the commas after the third one belong to it; quotes inside stay verbatim.
    write_test_csv(
        data_dir,
        ['ret0,msr9,video9,a man, in a hat, says "hi, there"', "ret1,msr7,video7,a dog runs", "ret2,msr8,video8,x,"],
    )
    test = load_benchmark("msrvtt", data_dir=data_dir, video_dir=video_dir, split="test")
    assert test["caption"] == ['a man, in a hat, says "hi, there"', "a dog runs", "x,"]


def test_csv_row_whose_extra_fields_cannot_be_rejoined_is_refused_with_file_and_line(small):
    data_dir, video_dir = small
    # A quoted sentence followed by more text: which part is the sentence is a guess, so the row is refused.
    write_test_csv(data_dir, ["ret0,msr9,video9,a cat", 'ret1,msr7,video7,"a dog, quoted" and then, more'])
    with pytest.raises(MalformedAnnotationError, match=r"MSRVTT_JSFUSION_test\.csv, line 3: expected 4 fields"):
        load_benchmark("msrvtt", data_dir=data_dir, video_dir=video_dir)

    # The train list has no free-text column: a second field is a damaged file, not part of an id.
    write_test_csv(data_dir, ["ret0,msr9,video9,a cat"])
    (data_dir / "MSRVTT_train.9k.csv").write_text("video_id\nvideo0\nvideo1,video2\n")
    with pytest.raises(MalformedAnnotationError, match=r"MSRVTT_train\.9k\.csv, line 3: expected 1 field"):
        load_benchmark("msrvtt", data_dir=data_dir, video_dir=video_dir)


def test_duplicate_test_rows_are_dropped_with_a_warning(small, caplog):
    data_dir, video_dir = small
    write_test_csv(
        data_dir,
        [
            "ret0,msr9,video9,a man sings",
            "ret1,msr7,video7,a dog runs",
            "ret2,msr9,video9,a man sings",  # line 4: same video and sentence as line 2
            "ret3,msr8,video8,someone cooks",
            "ret4,msr7,video7,a dog runs",  # line 6
            "ret5,msr7,video7,a dog sleeps",  # same video, another sentence: kept
        ],
    )
    with caplog.at_level(logging.WARNING, logger="dataset_builders"):
        test = load_benchmark("msrvtt", data_dir=data_dir, video_dir=video_dir, split="test")
    assert list(zip(test["video_id"], test["caption"], strict=True)) == [
        ("video9", "a man sings"),
        ("video7", "a dog runs"),
        ("video8", "someone cooks"),
        ("video7", "a dog sleeps"),
    ]
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any(
        "MSRVTT_JSFUSION_test.csv: dropped 2 duplicate row(s)" in text and "line 4 (video9), line 6 (video7)" in text
        for text in warnings
    ), warnings


def test_repeated_train_ids_are_dropped_with_a_warning(small, caplog):
    data_dir, video_dir = small
    (data_dir / "MSRVTT_train.9k.csv").write_text("video_id\nvideo0\nvideo1\nvideo0\n")
    with caplog.at_level(logging.WARNING, logger="dataset_builders"):
        train = load_benchmark("msrvtt", data_dir=data_dir, video_dir=video_dir, split="train")
    assert train.num_rows == len(CAPTIONS["video0"]) + len(CAPTIONS["video1"])
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any(
        "MSRVTT_train.9k.csv: dropped 1 repeated video id(s)" in text and "line 4 (video0)" in text for text in warnings
    ), warnings
