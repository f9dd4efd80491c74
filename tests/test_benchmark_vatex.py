"""The VATEX builder (``dataset_builders.vatex``) on small files in both layouts (prepared and official)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import datasets
import pytest

from dataset_builders import benchmark_features, load_benchmark
from dataset_builders.annotated import MalformedAnnotationError, MissingVideosError

# Arrow files of these throwaway builds stay out of the user's datasets cache.
pytestmark = pytest.mark.usefixtures("isolated_datasets_cache")

# VATEX ids: YouTube id, start and end second. Official training videos first, then official validation ones.
TRAIN_IDS = [f"Ptf_2VRj-V{i}_{i:06d}_{i + 10:06d}" for i in range(6)]
VALIDATION_IDS = [f"-Ab{i}cdEfgh_{i:06d}_{i + 10:06d}" for i in range(5)]
CAPTIONS = {
    video_id: [f"person {i} does thing {j}, then stops." for j in range(10)]
    for i, video_id in enumerate(TRAIN_IDS + VALIDATION_IDS)
}
# The usual retrieval split: train from the official training set, test (and here validation) from validation.
SPLITS = {"train": TRAIN_IDS, "validation": VALIDATION_IDS[:2], "test": VALIDATION_IDS[2:]}
LIST_FILES = {"train": "train_list.txt", "validation": "val_list.txt", "test": "test_list.txt"}


def write_lists(data_dir: Path, splits: dict[str, list[str]]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    for split, ids in splits.items():
        (data_dir / LIST_FILES[split]).write_text("".join(f"{video_id}\n" for video_id in ids))


def write_prepared(data_dir: Path, captions: dict[str, list[str]]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "ref_captions.json").write_text(json.dumps(captions))


def write_official(data_dir: Path, captions: dict[str, list[str]]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, ids in (("vatex_training_v1.0.json", TRAIN_IDS), ("vatex_validation_v1.0.json", VALIDATION_IDS)):
        items = [{"videoID": video_id, "enCap": captions[video_id], "chCap": ["一个人"] * 10} for video_id in ids]
        (data_dir / name).write_text(json.dumps(items, ensure_ascii=False))


def touch_videos(video_dir: Path, ids: list[str]) -> None:
    # The builder only locates files, so empty ones will do; some in nested folders.
    for i, video_id in enumerate(ids):
        folder = video_dir / ("val/clips" if i % 2 else "train")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{video_id}.mp4").touch()


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    touch_videos(tmp_path / "videos", TRAIN_IDS + VALIDATION_IDS)
    return tmp_path / "videos"


def check_rows(dataset: datasets.DatasetDict, splits: dict[str, list[str]]) -> None:
    assert list(dataset) == list(splits)
    for split, ids in splits.items():
        rows = dataset[split]
        assert rows.features == benchmark_features()
        assert set(rows["start"]) == {None} and set(rows["end"]) == {None}
        expected = [(video_id, caption) for video_id in ids for caption in CAPTIONS[video_id]]
        assert sorted(zip(rows["video_id"], rows["caption"], strict=True)) == sorted(expected)
        assert all(Path(row["video"]).name == f"{row['video_id']}.mp4" for row in rows)


@pytest.mark.parametrize("layout", ["prepared", "official"])
def test_layouts_give_the_same_rows(tmp_path, videos, layout):
    write = write_prepared if layout == "prepared" else write_official
    write(tmp_path / "data", CAPTIONS)
    write_lists(tmp_path / "data", SPLITS)
    check_rows(load_benchmark("vatex", data_dir=tmp_path / "data", video_dir=videos), SPLITS)

    # Without val_list.txt there is no validation split.
    splits = {"train": SPLITS["train"], "test": SPLITS["test"]}
    write(tmp_path / "no_val", CAPTIONS)
    write_lists(tmp_path / "no_val", splits)
    dataset = load_benchmark("vatex", data_dir=tmp_path / "no_val", video_dir=videos)
    check_rows(dataset, splits)
    assert dataset["test"].num_rows == 10 * len(SPLITS["test"])


def test_rebuild_after_a_split_list_is_removed(tmp_path, videos):
    write_prepared(tmp_path / "data", CAPTIONS)
    write_lists(tmp_path / "data", SPLITS)
    load_benchmark("vatex", data_dir=tmp_path / "data", video_dir=videos)
    (tmp_path / "data" / "val_list.txt").unlink()
    assert list(load_benchmark("vatex", data_dir=tmp_path / "data", video_dir=videos)) == ["train", "test"]


def test_layout_choice(tmp_path, videos):
    data_dir = tmp_path / "data"
    write_lists(data_dir, SPLITS)
    with pytest.raises(FileNotFoundError, match=r"ref_captions\.json.*vatex_training_v1\.0\.json"):
        load_benchmark("vatex", data_dir=data_dir, video_dir=videos)

    # Both present: "auto" reads ref_captions.json; layout="official" forces the official files.
    write_official(data_dir, CAPTIONS)
    write_prepared(data_dir, {video_id: ["from ref_captions"] for video_id in CAPTIONS})
    assert set(load_benchmark("vatex", data_dir=data_dir, video_dir=videos, split="test")["caption"]) == {
        "from ref_captions"
    }
    check_rows(load_benchmark("vatex", data_dir=data_dir, video_dir=videos, layout="official"), SPLITS)

    (data_dir / "vatex_validation_v1.0.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"vatex_validation_v1\.0\.json not found"):
        load_benchmark("vatex", data_dir=data_dir, video_dir=videos, layout="official")
    with pytest.raises(ValueError, match="layout must be one of"):
        load_benchmark("vatex", data_dir=data_dir, layout="json")
    with pytest.raises(TypeError, match=r"Unknown option\(s\) \['layouts'\].*'layout'"):
        load_benchmark("vatex", data_dir=data_dir, layouts="official")


def test_missing_videos_error_or_skip(tmp_path, videos, caplog):
    data_dir = tmp_path / "data"
    write_prepared(data_dir, CAPTIONS)
    write_lists(data_dir, SPLITS)
    gone = [TRAIN_IDS[1], TRAIN_IDS[4], VALIDATION_IDS[3]]
    for video_id in gone:
        next(videos.rglob(f"{video_id}.mp4")).unlink()
    with pytest.raises(MissingVideosError, match=rf"3 video\(s\).*first: {', '.join(gone)}"):
        load_benchmark("vatex", data_dir=data_dir, video_dir=videos)
    with caplog.at_level(logging.WARNING, logger="dataset_builders"):
        dataset = load_benchmark("vatex", data_dir=data_dir, video_dir=videos, missing_videos="skip")
    assert "3 video(s)" in caplog.text
    check_rows(dataset, {split: [i for i in ids if i not in gone] for split, ids in SPLITS.items()})


def test_malformed_files_name_file_and_place(tmp_path, videos):
    data_dir = tmp_path / "data"
    write_official(data_dir, CAPTIONS)
    write_lists(data_dir, {**SPLITS, "test": [*SPLITS["test"], "zzz_000001_000011"]})
    with pytest.raises(MalformedAnnotationError, match=r"test_list\.txt, line 4 \('zzz_000001_000011'\)") as error:
        load_benchmark("vatex", data_dir=data_dir, video_dir=videos)
    assert "vatex_training_v1.0.json / vatex_validation_v1.0.json" in str(error.value)

    write_lists(data_dir, SPLITS)
    items = json.loads((data_dir / "vatex_validation_v1.0.json").read_text())
    items[2]["enCap"] = "one caption, not a list"
    (data_dir / "vatex_validation_v1.0.json").write_text(json.dumps(items))
    with pytest.raises(MalformedAnnotationError, match=r"vatex_validation_v1\.0\.json, item 2 .*'enCap'"):
        load_benchmark("vatex", data_dir=data_dir, video_dir=videos)

    write_prepared(data_dir, {**CAPTIONS, TRAIN_IDS[2]: {"en": "not a list"}})
    with pytest.raises(MalformedAnnotationError, match=rf"ref_captions\.json, key '{TRAIN_IDS[2]}': expected a list"):
        load_benchmark("vatex", data_dir=data_dir, video_dir=videos)
