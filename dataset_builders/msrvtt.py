"""MSR-VTT (Xu et al., CVPR 2016) as used for text-video retrieval: the 9k (or 7k) train split and the 1k-A test split.

Files (as the field distributes them):

- ``MSRVTT_data.json``, ``MSRVTT_train.9k.csv``, ``MSRVTT_train.7k.csv`` and ``MSRVTT_JSFUSION_test.csv`` come from
  the ``msrvtt_data.zip`` archive linked in the CLIP4Clip and DRL READMEs (the split files go back to JSFusion, Yu et
  al. 2018, and the 7k split to Miech et al.'s HowTo100M/MMT releases).
- The videos (``video0.mp4`` ... ``video9999.mp4``) come from the original MSR-VTT release or the
  ``MSRVTT.zip`` linked in the same READMEs.

Splits: ``train`` is every caption in ``MSRVTT_data.json`` of the 9,000 (or 7,010) videos listed in the train csv
(180,000 rows for 9k); ``test`` is the 1,000 (video, sentence) pairs of ``MSRVTT_JSFUSION_test.csv`` in file order,
one caption per video, as in CLIP4Clip's and DRL's loaders. There is no validation split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .annotated import AnnotatedBenchmark, AnnotatedBenchmarkConfig
from .annotation_files import MalformedAnnotationError, load_json, read_csv_columns, require_file

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
    """
    Options of MSR-VTT.

    Args:
        train_split: "9k" (default: ``MSRVTT_train.9k.csv``, as DRL and CLIP4Clip train) or "7k"
            (``MSRVTT_train.7k.csv``).
    """

    train_split: str = "9k"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.train_split not in TRAIN_SPLITS:
            raise ValueError(f"train_split must be one of {list(TRAIN_SPLITS)}, got {self.train_split!r}")


class MSRVTTBenchmark(AnnotatedBenchmark):
    """
    MSR-VTT retrieval benchmark: 9k/7k train split, 1k-A (JSFusion) test split.

    ``data_dir`` holds ``MSRVTT_data.json``, ``MSRVTT_train.9k.csv`` (or ``MSRVTT_train.7k.csv`` with
    ``train_split="7k"``) and ``MSRVTT_JSFUSION_test.csv``. ``video_dir`` (default ``data_dir``) holds the videos,
    ``<video_id>.<any video extension>``, in any nested folders.
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
        seen: set[str] = set()
        for line, row in read_csv_columns(train_path, ("video_id",)):
            video_id = row["video_id"]
            if video_id in seen:  # a repeated id would repeat its 20 captions
                continue
            if video_id not in captions:
                raise MalformedAnnotationError(
                    train_path, f"line {line} (video_id {video_id!r})", f"a video with captions in {json_path.name}"
                )
            seen.add(video_id)
            train += [_row(video_id, caption) for caption in captions[video_id]]

        test_rows = read_csv_columns(test_path, ("video_id", "sentence"))
        test = [_row(row["video_id"], row["sentence"]) for _, row in test_rows]
        return {"train": train, "test": test}


def _row(video_id: str, caption: str) -> dict[str, Any]:
    return {"video_id": video_id, "caption": caption, "start": None, "end": None}
