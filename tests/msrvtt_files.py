"""MSR-VTT's annotation files, written small in the real formats (as msrvtt_data.zip lays them out), and a caption
set several benchmark and command-line tests share."""

from __future__ import annotations

import csv
import json
from pathlib import Path


def write_msrvtt(
    data_dir: Path,
    captions: dict[str, list[str]],
    train_9k: list[str],
    train_7k: list[str],
    test: list[tuple[str, str]],
) -> None:
    """MSRVTT_data.json, the two train csvs and the JSFusion test csv, laid out as in msrvtt_data.zip."""
    data_dir.mkdir(parents=True, exist_ok=True)
    sentences = [
        {"caption": caption, "video_id": video_id, "sen_id": 0}
        for video_id, texts in captions.items()
        for caption in texts
    ]
    videos = [{"video_id": video_id, "category": 0, "url": "", "split": "train"} for video_id in captions]
    (data_dir / "MSRVTT_data.json").write_text(json.dumps({"info": {}, "videos": videos, "sentences": sentences}))
    for name, ids in (("MSRVTT_train.9k.csv", train_9k), ("MSRVTT_train.7k.csv", train_7k)):
        (data_dir / name).write_text("video_id\n" + "".join(f"{video_id}\n" for video_id in ids))
    with open(data_dir / "MSRVTT_JSFUSION_test.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["key", "vid_key", "video_id", "sentence"])
        for i, (video_id, sentence) in enumerate(test):
            writer.writerow([f"ret{i}", f"msr{video_id[5:]}", video_id, sentence])


def touch_videos(video_dir: Path, ids: list[str], nested: bool = False) -> None:
    # The builder only locates files, so empty ones will do; nested folders like an unpacked archive's.
    for i, video_id in enumerate(ids):
        folder = video_dir / f"part{i % 3}" / "clips" if nested else video_dir
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{video_id}.mp4").touch()


CAPTIONS = {f"video{i}": [f"caption {j} of video {i}" for j in range(3 + i % 2)] for i in range(10)}
TRAIN_9K = [f"video{i}" for i in range(7)]
TRAIN_7K = [f"video{i}" for i in range(5)]
# Out of id order, with commas, quotes and a caption differing from the json's, as in the real file.
TEST = [("video9", 'a man says "hello, world"'), ("video7", "a dog, a cat"), ("video8", "someone cooks")]
