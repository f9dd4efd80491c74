"""ActivityNet Captions for paragraph-to-video retrieval, read as CLIP4Clip and DRL read it.

Where the field gets the files: the annotations come from the ActivityNet Captions release (Krishna et al., 2017,
distributed from its Stanford project page): `train.json`, `val_1.json` and `val_2.json` (two independent annotations
of the validation videos), with `train_ids.json` and `val_ids.json` listing each split's videos. The videos are the
YouTube videos of ActivityNet v1.3, downloaded with ActivityNet's own tools or obtained from its maintainers on
request; their files are named by the YouTube id (`abc.mp4`), while the annotation ids carry a `v_` prefix (`v_abc`).

- `train`: the videos of `train_ids.json`, described by `train.json` (about 10k videos).
- `test`: the videos of `val_ids.json`, described by `val_1.json` (about 4.9k videos): the field evaluates on `val_1`,
  and there is no separate test annotation.

The annotation files map ids to `{"duration": seconds, "timestamps": [[start, end], ...], "sentences": [...]}`.
Paragraph-to-video retrieval matches a video with the paragraph of all its sentences, so each video gives one row:
its sentences (stripped) joined by single spaces, over the whole video. Following the reference loader, "the whole
video" is written as start 0 and end `ceil(duration)`: the rounded-up end never cuts the last frames off, and the
frame sampler clamps it to the video's length.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .annotated import AnnotatedBenchmark, VideoFileLookup
from .annotation_files import MalformedAnnotationError, first_of_each, load_json, require_file

__all__ = ["ID_PREFIX", "SPLIT_FILES", "ActivityNetBenchmark", "read_activitynet_paragraphs"]

# Split -> (annotation file, id list file) in `data_dir`.
SPLIT_FILES: dict[str, tuple[str, str]] = {
    "train": ("train.json", "train_ids.json"),
    "test": ("val_1.json", "val_ids.json"),
}

# Prefix of the annotation ids that the video file names usually lack.
ID_PREFIX = "v_"


def _found(entry: dict[str, Any], key: str) -> str:
    return f"found {entry[key]!r}" if key in entry else "the key is missing"


def _paragraph_row(path: Path, video_id: str, entry: Any) -> dict[str, Any]:
    where = f"key {video_id!r}"
    if not isinstance(entry, dict):
        raise MalformedAnnotationError(path, where, f"an object with 'duration' and 'sentences', found {entry!r}")
    duration = entry.get("duration")
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 0 < duration < math.inf:
        raise MalformedAnnotationError(
            path, f"{where}, 'duration'", f"a positive number of seconds, {_found(entry, 'duration')}"
        )
    sentences = entry.get("sentences")
    if not isinstance(sentences, list) or not all(isinstance(sentence, str) for sentence in sentences):
        raise MalformedAnnotationError(
            path, f"{where}, 'sentences'", f"a list of strings, {_found(entry, 'sentences')}"
        )
    paragraph = " ".join(stripped for stripped in (sentence.strip() for sentence in sentences) if stripped)
    if not paragraph:
        raise MalformedAnnotationError(path, f"{where}, 'sentences'", "at least one non-blank sentence")
    return {"video_id": video_id, "caption": paragraph, "start": 0.0, "end": float(math.ceil(duration))}


def read_activitynet_paragraphs(annotation_path: Path, ids_path: Path) -> list[dict[str, Any]]:
    """Read one paragraph row per id of `ids_path` (in its order), described by `annotation_path`.

    Args:
        annotation_path (`Path`):
            The annotation file (`train.json`, `val_1.json`).
        ids_path (`Path`):
            The id list file (`train_ids.json`, `val_ids.json`); a repeated id is dropped with a warning.

    Returns:
        `list[dict[str, Any]]`: Rows with `video_id`, `caption` (the paragraph), `start` 0 and `end`
        `ceil(duration)`.

    Raises:
        MalformedAnnotationError: If a file is not laid out as expected, naming the file and the item.
    """
    annotations = load_json(annotation_path)
    if not isinstance(annotations, dict):
        raise MalformedAnnotationError(annotation_path, "top level", "an object mapping video ids to annotations")
    ids = load_json(ids_path)
    if not isinstance(ids, list):
        raise MalformedAnnotationError(ids_path, "top level", "a list of video ids")
    for position, video_id in enumerate(ids):
        if not isinstance(video_id, str) or video_id not in annotations:
            raise MalformedAnnotationError(
                ids_path, f"item {position} ({video_id!r})", f"the id of a video described in {annotation_path.name}"
            )
    # A repeated id is dropped (as the reference loader skips it too), with a warning naming its items.
    listed = [(f"item {position} ({video_id})", video_id, video_id) for position, video_id in enumerate(ids)]
    unique_ids = first_of_each(ids_path, listed, "repeated video id(s)")
    return [_paragraph_row(annotation_path, video_id, annotations[video_id]) for video_id in unique_ids]


class ActivityNetBenchmark(AnnotatedBenchmark):
    """ActivityNet Captions, paragraph-to-video: one row per video (all its sentences joined).

    Each row spans start 0 to end `ceil(duration)` seconds; the splits are train and test (the field's `val_1`).

    `data_dir` holds `train.json`, `train_ids.json`, `val_1.json` and `val_ids.json`. `video_dir` (default `data_dir`)
    holds the videos at any depth, named by YouTube id without the annotations' `v_` prefix (`abc.mp4` for `v_abc`)
    or, failing that, with it. Rows keep the annotation id (`v_abc`) as `video_id`.
    """

    DESCRIPTION = "ActivityNet Captions videos, each with the paragraph of all its sentences (paragraph-to-video)."

    def read_annotations(self, data_dir: Path) -> dict[str, list[dict[str, Any]]]:
        return {
            split: read_activitynet_paragraphs(
                require_file(data_dir, annotation_file, self.name), require_file(data_dir, ids_file, self.name)
            )
            for split, (annotation_file, ids_file) in SPLIT_FILES.items()
        }

    def find_video(self, index: VideoFileLookup, video_id: str) -> Path | None:
        """The file of `v_abc` as `abc.*` (how the videos are usually named), then as `v_abc.*` (some copies)."""
        return index.find(video_id.removeprefix(ID_PREFIX)) or index.find(video_id)
