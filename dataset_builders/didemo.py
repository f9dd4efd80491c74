"""DiDeMo (Distinct Describable Moments) for paragraph-to-video retrieval, read as CLIP4Clip and DRL read it.

Where the field gets the files: the annotations `train_data.json`, `val_data.json` and `test_data.json` come from the
LocalizingMoments repository of the DiDeMo authors (Hendricks et al., 2017), which also gives the list of the Flickr
(YFCC100M) videos and a script to download them; the videos keep their Flickr file names, extension included
(`12090392@N02_13482799053_87ef417396.mov`). The split lists `train_list.txt`, `val_list.txt` and `test_list.txt` (one
video file name per line) come with the reference code's data preparation and name the videos each split uses.

Each annotation file is a list of `{"video": file name, "description": sentence, "times": [[start, end], ...],
"annotation_id": ..., ...}`, several per video. `times` holds 5-second segment indices of the described moment;
paragraph-to-video retrieval ignores them and matches a video with the paragraph of all its descriptions, so each
listed video gives one row: its descriptions (stripped, in file order) joined by single spaces.

The row's span follows the reference loader: start 0 and end 31 seconds rather than None. The DiDeMo annotators saw
at most the first 30 seconds of each video (six 5-second segments; longer videos were truncated for annotation), so
frames past them are never described. For videos of up to 31 s, the frame sampler clamps the end to the last
frame, so the span is the whole video.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .annotated import AnnotatedBenchmark, VideoFileLookup
from .annotation_files import MalformedAnnotationError, load_json, read_id_list, require_file

__all__ = ["ANNOTATED_SECONDS", "SPLIT_FILES", "DiDeMoBenchmark", "read_didemo_paragraphs"]

# Split -> (annotation file, video list file) in `data_dir`.
SPLIT_FILES: dict[str, tuple[str, str]] = {
    "train": ("train_data.json", "train_list.txt"),
    "validation": ("val_data.json", "val_list.txt"),
    "test": ("test_data.json", "test_list.txt"),
}

# End of every row's span: the reference loader's 31 s, just past the 30 s the annotators saw.
ANNOTATED_SECONDS = 31.0


def _descriptions_by_video(path: Path) -> dict[str, list[str]]:
    items = load_json(path)
    if not isinstance(items, list):
        raise MalformedAnnotationError(path, "top level", "a list of {'video', 'description', ...} objects")
    by_video: dict[str, list[str]] = {}
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise MalformedAnnotationError(path, f"item {position}", f"an object, found {item!r}")
        for key in ("video", "description"):
            if not isinstance(item.get(key), str):
                found = f"found {item[key]!r}" if key in item else "the key is missing"
                raise MalformedAnnotationError(path, f"item {position}, key {key!r}", f"a string, {found}")
        description = item["description"].strip()
        if description:  # a blank one would leave a double space in the paragraph
            by_video.setdefault(item["video"].strip(), []).append(description)
    return by_video


def read_didemo_paragraphs(annotation_path: Path, list_path: Path) -> list[dict[str, Any]]:
    """Read one paragraph row per video of `list_path` (in its order), from the descriptions in `annotation_path`.

    Args:
        annotation_path (`Path`):
            The annotation file (`train_data.json`, ...).
        list_path (`Path`):
            The video list file (`train_list.txt`, ...).

    Returns:
        `list[dict[str, Any]]`: Rows with `video_id`, `caption` (the paragraph), `start` 0 and `end`
        `ANNOTATED_SECONDS`.

    Raises:
        MalformedAnnotationError: If a file is not laid out as expected, or a listed video has no description.
    """
    descriptions = _descriptions_by_video(annotation_path)
    rows = []
    for line_number, video in read_id_list(list_path):  # blank lines skipped; a repeated video stays one row
        if not descriptions.get(video):
            raise MalformedAnnotationError(
                list_path, f"line {line_number} ({video!r})", f"a video described in {annotation_path.name}"
            )
        caption = " ".join(descriptions[video])
        rows.append({"video_id": video, "caption": caption, "start": 0.0, "end": ANNOTATED_SECONDS})
    return rows


class DiDeMoBenchmark(AnnotatedBenchmark):
    """DiDeMo, paragraph-to-video: one row per listed video (all its descriptions joined).

    Each row spans start 0 to end 31 seconds (see the module docstring); the splits are train, validation and test.

    `data_dir` holds `train_data.json`, `val_data.json`, `test_data.json` and `train_list.txt`, `val_list.txt`,
    `test_list.txt`. `video_dir` (default `data_dir`) holds the videos at any depth, under their Flickr names with
    extension (`video_id`), or converted to another format as `<video_id>.mp4` or `<name without extension>.mp4`.
    """

    DESCRIPTION = "DiDeMo Flickr videos, each with the paragraph of all its moment descriptions (paragraph-to-video)."
    # Camera formats that Flickr accepts, in case a downloaded video kept one, on top of the usual extensions.
    VIDEO_EXTENSIONS = AnnotatedBenchmark.VIDEO_EXTENSIONS + (".mts", ".m2ts", ".3g2", ".dv")

    def read_annotations(self, data_dir: Path) -> dict[str, list[dict[str, Any]]]:
        return {
            split: read_didemo_paragraphs(
                require_file(data_dir, annotation_file, self.name), require_file(data_dir, list_file, self.name)
            )
            for split, (annotation_file, list_file) in SPLIT_FILES.items()
        }

    def find_video(self, index: VideoFileLookup, video_id: str) -> Path | None:
        """Find `name.mov` as downloaded, or converted to another format.

        The match is the exact name, then the name kept with an extension added (`name.mov.mp4`, the default stem
        match), then the extension replaced (`name.mp4`).
        """
        return index.find(video_id) or index.by_stem.get(os.path.splitext(video_id)[0])
