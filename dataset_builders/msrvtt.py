"""MSR-VTT (Xu et al., CVPR 2016) as used for text-video retrieval: the 9k (or 7k) train split and the 1k-A test split.

Files (as the field distributes them):

- `MSRVTT_data.json`, `MSRVTT_train.9k.csv`, `MSRVTT_train.7k.csv` and `MSRVTT_JSFUSION_test.csv` come from the
  `msrvtt_data.zip` archive linked in the CLIP4Clip and DRL READMEs (the split files go back to JSFusion, Yu et al.
  2018, and the 7k split to Miech et al.'s HowTo100M/MMT releases).
- The videos (`video0.mp4` ... `video9999.mp4`) come from the original MSR-VTT release or the `MSRVTT.zip` linked in
  the same READMEs.

Splits: `train` is every caption in `MSRVTT_data.json` of the 9,000 (or 7,010) videos listed in the train csv (180,000
rows for 9k); `test` is the 1,000 (video, sentence) pairs of `MSRVTT_JSFUSION_test.csv` in file order, one caption per
video, as in CLIP4Clip's and DRL's loaders. There is no validation split.

The test csv leaves its sentences unquoted; the sentence is its last column, so a sentence holding commas is read
whole (the rest of its line) rather than cut at its first comma. A row of a train or test csv that repeats an earlier
one (same video id; for test, same video id and sentence) is dropped with a warning naming the file and lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .annotated import AnnotatedBenchmark, AnnotatedBenchmarkConfig
from .annotation_files import MalformedAnnotationError, first_of_each, load_json, read_csv_columns, require_file

__all__ = ["MSRVTTBenchmark", "MSRVTTBenchmarkConfig"]

TRAIN_SPLITS = {"9k": "MSRVTT_train.9k.csv", "7k": "MSRVTT_train.7k.csv"}


def _captions_by_video(path: Path) -> dict[str, list[str]]:
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("sentences"), list):
        raise MalformedAnnotationError(path, "top level", "an object with a 'sentences' list")
    captions: dict[str, list[str]] = {}
    for i, sentence in enumerate(data["sentences"]):
        for key in ("video_id", "caption"):
            if not isinstance(sentence, dict) or not isinstance(sentence.get(key), str):
                raise MalformedAnnotationError(path, f"sentences[{i}][{key!r}]", "a string")
        captions.setdefault(sentence["video_id"], []).append(sentence["caption"])
    return captions


@dataclass
class MSRVTTBenchmarkConfig(AnnotatedBenchmarkConfig):
    """Options of MSR-VTT.

    Args:
        train_split (`str`, *optional*, defaults to `"9k"`):
            `"9k"` (`MSRVTT_train.9k.csv`, as DRL and CLIP4Clip train) or `"7k"` (`MSRVTT_train.7k.csv`).
    """

    train_split: str = "9k"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.train_split not in TRAIN_SPLITS:
            raise ValueError(f"train_split must be one of {list(TRAIN_SPLITS)}, got {self.train_split!r}")


class MSRVTTBenchmark(AnnotatedBenchmark):
    """MSR-VTT retrieval benchmark: 9k/7k train split, 1k-A (JSFusion) test split.

    `data_dir` holds `MSRVTT_data.json`, `MSRVTT_train.9k.csv` (or `MSRVTT_train.7k.csv` with `train_split="7k"`) and
    `MSRVTT_JSFUSION_test.csv`. `video_dir` (default `data_dir`) holds the videos, `<video_id>.<any video extension>`,
    in any nested folders.
    """

    BUILDER_CONFIG_CLASS = MSRVTTBenchmarkConfig
    config: MSRVTTBenchmarkConfig
    DESCRIPTION = "MSR-VTT text-video retrieval: 9k/7k train captions and the 1k-A (JSFusion) test pairs."

    def read_annotations(self, data_dir: Path) -> dict[str, list[dict[str, Any]]]:
        json_path = require_file(data_dir, "MSRVTT_data.json", self.name)
        train_path = require_file(data_dir, TRAIN_SPLITS[self.config.train_split], self.name)
        test_path = require_file(data_dir, "MSRVTT_JSFUSION_test.csv", self.name)
        captions = _captions_by_video(json_path)

        train: list[dict[str, Any]] = []
        for line, video_id in _train_ids(train_path):
            if video_id not in captions:
                raise MalformedAnnotationError(
                    train_path, f"line {line} (video_id {video_id!r})", f"a video with captions in {json_path.name}"
                )
            train += [_row(video_id, caption) for caption in captions[video_id]]
        return {"train": train, "test": _test_pairs(test_path)}


def _train_ids(path: Path) -> list[tuple[int, str]]:
    """Read `(line, video id)` of the train csv.

    A repeated id is dropped with a warning, as it would repeat its 20 captions.
    """
    ids = [
        (f"line {line} ({row['video_id']})", row["video_id"], (line, row["video_id"]))
        for line, row in read_csv_columns(path, ("video_id",))
    ]
    return first_of_each(path, ids, "repeated video id(s)")


def _test_pairs(path: Path) -> list[dict[str, Any]]:
    """Read the rows of the JSFusion test csv in file order.

    Its sentences are the last column and are not quoted, so one holding commas takes the rest of its line
    (`read_csv_columns`' `caption_column`). A row repeating the video and sentence of an earlier one is dropped with a
    warning: it would be a query and a target twice, inflating or skewing the metrics.
    """
    rows = read_csv_columns(path, ("video_id", "sentence"), caption_column="sentence")
    pairs = [
        (f"line {line} ({row['video_id']})", (row["video_id"], row["sentence"]), _row(row["video_id"], row["sentence"]))
        for line, row in rows
    ]
    return first_of_each(path, pairs, "duplicate row(s) (same video_id and sentence as an earlier row)")


def _row(video_id: str, caption: str) -> dict[str, Any]:
    return {"video_id": video_id, "caption": caption, "start": None, "end": None}
