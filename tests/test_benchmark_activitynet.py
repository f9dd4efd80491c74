"""The ActivityNet Captions builder (``dataset_builders.activitynet``), on small files in the real formats."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from dataset_builders import benchmark_features, load_benchmark
from dataset_builders.annotated import MalformedAnnotationError, MissingVideosError

# Arrow files of these throwaway builds stay out of the user's datasets cache.
pytestmark = pytest.mark.usefixtures("isolated_datasets_cache")


def entry(duration: float, *sentences: str) -> dict:
    return {"duration": duration, "timestamps": [[0.0, duration / 2]] * len(sentences), "sentences": list(sentences)}


# As in the release: sentences often start with a space and end with one.
TRAIN = {
    "v_aaa": entry(12.3, "A man walks into a room.", " He sits down, then stands up. "),
    "v_bbb": entry(20.0, " Two dogs play."),
    "v_unlisted": entry(5.0, "Not in train_ids.json."),
}
VAL_1 = {
    "v_ccc": entry(63.01, "A woman paints.", " She smiles.", "She leaves."),
    "v_ddd": entry(7.5, "Rain falls."),
    "v_eee": entry(30.9, "A car drives by."),
}
TRAIN_IDS = ["v_aaa", "v_bbb", "v_aaa"]  # a repeated id stays one row
VAL_IDS = ["v_ccc", "v_ddd", "v_eee"]
PARAGRAPHS = {
    "v_aaa": "A man walks into a room. He sits down, then stands up.",
    "v_bbb": "Two dogs play.",
    "v_ccc": "A woman paints. She smiles. She leaves.",
    "v_ddd": "Rain falls.",
    "v_eee": "A car drives by.",
}
ENDS = {"v_aaa": 13.0, "v_bbb": 20.0, "v_ccc": 64.0, "v_ddd": 8.0, "v_eee": 31.0}  # durations rounded up
# Files are named without the v_ prefix, except v_ddd's (some copies keep it); v_eee has both, and the unprefixed
# one wins. Nested folders and several extensions.
VIDEOS = {
    "v_aaa": "train/part1/aaa.mp4",
    "v_bbb": "train/bbb.webm",
    "v_ccc": "val/ccc.mp4",
    "v_ddd": "val/v_ddd.mkv",
    "v_eee": "val/eee.mp4",
}
DECOY = "val/v_eee.mp4"


def write_json(path: Path, content: object) -> None:
    path.write_text(json.dumps(content, indent=1), encoding="utf-8")


@pytest.fixture
def activitynet(tmp_path: Path) -> tuple[Path, Path]:
    """(data_dir, video_dir) with every file in place; the videos are empty files (the builder does not decode)."""
    data_dir, video_dir = tmp_path / "captions", tmp_path / "videos"
    data_dir.mkdir()
    write_json(data_dir / "train.json", TRAIN)
    write_json(data_dir / "val_1.json", VAL_1)
    write_json(data_dir / "val_2.json", {})  # released too, but the field does not use it
    write_json(data_dir / "train_ids.json", TRAIN_IDS)
    write_json(data_dir / "val_ids.json", VAL_IDS)
    for name in [*VIDEOS.values(), DECOY]:
        (video_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (video_dir / name).touch()
    return data_dir, video_dir


def test_paragraph_rows(activitynet):
    data_dir, video_dir = activitynet
    dataset = load_benchmark("activitynet", data_dir=data_dir, video_dir=video_dir)
    assert list(dataset) == ["train", "test"]
    for split, ids in {"train": ["v_aaa", "v_bbb"], "test": VAL_IDS}.items():
        rows = dataset[split]
        assert rows.features == benchmark_features()
        # One row per listed video, keeping the annotation id, with all its sentences joined by single spaces.
        assert rows["video_id"] == ids
        assert rows["caption"] == [PARAGRAPHS[video_id] for video_id in ids]
        assert rows["video"] == [str((video_dir / VIDEOS[video_id]).absolute()) for video_id in ids]
        # The whole video, its end rounded up to whole seconds (20.0 stays 20).
        assert rows["start"] == [0.0] * len(ids)
        assert rows["end"] == [ENDS[video_id] for video_id in ids]


def test_missing_videos_error_and_skip(activitynet, caplog):
    data_dir, video_dir = activitynet
    (video_dir / VIDEOS["v_ccc"]).unlink()
    (video_dir / VIDEOS["v_ddd"]).unlink()
    with pytest.raises(MissingVideosError, match=r"2 video\(s\).*first: v_ccc, v_ddd"):
        load_benchmark("activitynet", data_dir=data_dir, video_dir=video_dir)

    with caplog.at_level(logging.WARNING, logger="dataset_builders.annotated"):
        test = load_benchmark(
            "activitynet", data_dir=data_dir, video_dir=video_dir, split="test", missing_videos="skip"
        )
    assert test["video_id"] == ["v_eee"]
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("2 video(s)" in text and "2 caption row(s)" in text for text in warnings)


@pytest.mark.parametrize(
    ("file_name", "content", "where"),
    [
        ("val_1.json", {**VAL_1, "v_ddd": {"duration": 7.5}}, r"key 'v_ddd', 'sentences': expected a list of strings"),
        ("val_1.json", {**VAL_1, "v_ccc": {**VAL_1["v_ccc"], "duration": "63"}}, r"key 'v_ccc', 'duration'"),
        ("train.json", [TRAIN], r"top level: expected an object"),
        ("val_ids.json", [*VAL_IDS, "v_zzz"], r"item 3 \('v_zzz'\): expected the id of a video described in val_1"),
    ],
)
def test_malformed_files_name_file_and_key(activitynet, file_name, content, where):
    data_dir, video_dir = activitynet
    write_json(data_dir / file_name, content)
    with pytest.raises(MalformedAnnotationError, match=rf"{file_name}, {where}"):
        load_benchmark("activitynet", data_dir=data_dir, video_dir=video_dir)


def test_invalid_json_names_file_and_line(activitynet):
    data_dir, video_dir = activitynet
    (data_dir / "train_ids.json").write_text('[\n"v_aaa",\n"v_bbb"\n', encoding="utf-8")
    with pytest.raises(MalformedAnnotationError, match=r"train_ids\.json, line 4, column 1: expected valid JSON"):
        load_benchmark("activitynet", data_dir=data_dir, video_dir=video_dir)


def test_repeated_ids_are_dropped_with_a_warning(activitynet, caplog):
    data_dir, video_dir = activitynet
    with caplog.at_level(logging.WARNING, logger="dataset_builders"):
        train = load_benchmark("activitynet", data_dir=data_dir, video_dir=video_dir, split="train")
    assert train["video_id"] == ["v_aaa", "v_bbb"]
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any(
        "train_ids.json: dropped 1 repeated video id(s)" in text and "item 2 (v_aaa)" in text for text in warnings
    ), warnings
