"""The DiDeMo builder (``dataset_builders.didemo``), on small files in the real formats."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from dataset_builders import benchmark_features, load_benchmark
from dataset_builders.annotated import MalformedAnnotationError, MissingVideosError

# Arrow files of these throwaway builds stay out of the user's datasets cache.
pytestmark = pytest.mark.usefixtures("isolated_datasets_cache")

# Flickr names as in the release: '@' in the user id, the extension kept.
MOV = "12090392@N02_13482799053_87ef417396.mov"
AVI = "28394845@N00_2390839385_a9c3d21bc7.avi"
MP4 = "57345611@N00_4732851209_51f23e0b8f.mp4"
CONVERTED = "93838119@N00_7395819306_0b1e4a7c2d.mov"  # downloaded copy converted to <name>.mp4
RENAMED = "44455566@N07_8061942211_f0e1d2c3b4.MOV"  # converted to <name without extension>.mp4
UNLISTED = "11111111@N01_1111111111_aaaaaaaaaa.mp4"


def item(video: str, description: str, number: int) -> dict:
    return {"video": video, "description": description, "times": [[0, 1], [0, 0]], "annotation_id": number}


# Descriptions of one video are interleaved with others' and must be joined in file order.
DATA = {
    "train": [
        item(MOV, "a dog runs toward the camera ", 1),
        item(AVI, " the man waves, twice", 2),
        item(MOV, "the dog jumps over a log", 3),
        item(UNLISTED, "not in train_list.txt", 4),
        item(MOV, "camera pans to the left", 5),
        item(CONVERTED, "a bird lands", 6),
    ],
    "validation": [item(MP4, 'a sign says "stop"', 7)],
    "test": [item(RENAMED, "waves crash", 8), item(RENAMED, "a surfer falls", 9)],
}
LISTS = {"train": [MOV, AVI, CONVERTED], "validation": [MP4], "test": [RENAMED]}
PARAGRAPHS = {
    MOV: "a dog runs toward the camera the dog jumps over a log camera pans to the left",
    AVI: "the man waves, twice",
    CONVERTED: "a bird lands",
    MP4: 'a sign says "stop"',
    RENAMED: "waves crash a surfer falls",
}
VIDEOS = {
    MOV: f"flickr/a/{MOV}",
    AVI: f"flickr/b/deeper/{AVI}",
    CONVERTED: f"mp4/{CONVERTED}.mp4",
    MP4: MP4,
    RENAMED: "mp4/44455566@N07_8061942211_f0e1d2c3b4.mp4",
}
FILES = {"train": "train", "validation": "val", "test": "test"}


@pytest.fixture
def didemo(tmp_path: Path) -> tuple[Path, Path]:
    """(data_dir, video_dir) with every file in place; the videos are empty files (the builder does not decode)."""
    data_dir, video_dir = tmp_path / "annotations", tmp_path / "videos"
    data_dir.mkdir()
    for split, prefix in FILES.items():
        (data_dir / f"{prefix}_data.json").write_text(json.dumps(DATA[split]), encoding="utf-8")
        (data_dir / f"{prefix}_list.txt").write_text("\n".join(LISTS[split]) + "\n", encoding="utf-8")
    for name in VIDEOS.values():
        (video_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (video_dir / name).touch()
    return data_dir, video_dir


def test_paragraph_rows(didemo):
    data_dir, video_dir = didemo
    dataset = load_benchmark("didemo", data_dir=data_dir, video_dir=video_dir)
    assert list(dataset) == ["train", "validation", "test"]
    for split, videos in LISTS.items():
        rows = dataset[split]
        assert rows.features == benchmark_features()
        # One row per listed video (file name with extension as video_id), all descriptions joined in file order.
        assert rows["video_id"] == videos
        assert rows["caption"] == [PARAGRAPHS[video] for video in videos]
        assert rows["video"] == [str((video_dir / VIDEOS[video]).absolute()) for video in videos]
        # The reference loader's span: the first 31 s, all the annotators saw.
        assert rows["start"] == [0.0] * len(videos) and rows["end"] == [31.0] * len(videos)


def test_missing_videos_error_and_skip(didemo, caplog):
    data_dir, video_dir = didemo
    (video_dir / VIDEOS[MOV]).unlink()
    with pytest.raises(MissingVideosError, match=rf"1 video\(s\).*first: {MOV}"):
        load_benchmark("didemo", data_dir=data_dir, video_dir=video_dir)

    with caplog.at_level(logging.WARNING, logger="dataset_builders.annotated"):
        train = load_benchmark("didemo", data_dir=data_dir, video_dir=video_dir, split="train", missing_videos="skip")
    assert train["video_id"] == [AVI, CONVERTED]
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("1 video(s)" in text and "1 caption row(s)" in text for text in warnings)


def test_listed_video_without_description(didemo):
    data_dir, video_dir = didemo
    (data_dir / "val_list.txt").write_text(f"{MP4}\n\n{UNLISTED}\n", encoding="utf-8")
    with pytest.raises(MalformedAnnotationError, match=rf"val_list\.txt, line 3 \('{UNLISTED}'\): expected a video"):
        load_benchmark("didemo", data_dir=data_dir, video_dir=video_dir)


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ([*DATA["test"], {"video": RENAMED, "times": [[1, 1]]}], r"item 2, key 'description': expected a string"),
        ([{**DATA["test"][0], "video": 42}], r"item 0, key 'video': expected a string, found 42"),
        ({"video": RENAMED}, r"top level: expected a list"),
    ],
)
def test_malformed_data_names_file_and_item(didemo, content, where):
    data_dir, video_dir = didemo
    (data_dir / "test_data.json").write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(MalformedAnnotationError, match=rf"test_data\.json, {where}"):
        load_benchmark("didemo", data_dir=data_dir, video_dir=video_dir)
