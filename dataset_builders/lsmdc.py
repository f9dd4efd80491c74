"""LSMDC (Large Scale Movie Description Challenge) for text-to-video retrieval, read as CLIP4Clip and DRL read it.

Where the field gets the files: LSMDC is distributed by MPII (Max Planck Institute for Informatics) only to those who
request access and accept its data agreement (the reference code's instructions send users there too). The LSMDC 2016
release holds the annotation files and the movie clips:

- `LSMDC16_annos_training.csv` -> `train` (about 101k sentences),
- `LSMDC16_annos_val.csv` -> `validation` (about 7.4k sentences),
- `LSMDC16_challenge_1000_publictect.csv` -> `test` (1,000 clips with one sentence each, the retrieval test set; the
  `publictect` typo is the file's real name),
- the clips as `<movie name>/<clip id>.avi`, where the movie folder is the clip id without its trailing
  `_NN.NN.NN.NNN-NN.NN.NN.NNN` time range, e.g.
  `0001_American_Beauty/0001_American_Beauty_00.00.51.926-00.00.54.129.avi`.

Each annotation file is tab-separated without a header, one sentence per line, in 6 columns: clip id, start (aligned),
end (aligned), start (extracted), end (extracted), sentence. A clip id may have several lines. The timestamps locate
the clip inside its movie; the clip files are already cut, so every row covers its whole clip (start/end None). A line
repeating the clip id and sentence of an earlier line of its file is dropped with a warning naming the lines.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from .annotated import AnnotatedBenchmark
from .annotation_files import MalformedAnnotationError, first_of_each, read_text, require_file

__all__ = ["ANNOTATION_FILES", "LSMDCBenchmark", "read_lsmdc_annotations"]

# Split -> annotation file in `data_dir`.
ANNOTATION_FILES: dict[str, str] = {
    "train": "LSMDC16_annos_training.csv",
    "validation": "LSMDC16_annos_val.csv",
    "test": "LSMDC16_challenge_1000_publictect.csv",
}

_COLUMNS = ("clip id", "start aligned", "end aligned", "start extracted", "end extracted", "sentence")


def read_lsmdc_annotations(path: Path) -> list[dict[str, Any]]:
    """Read one row per line of an LSMDC annotation file: the clip id and its sentence, over the whole clip.

    A line with the clip id and sentence of an earlier one gives the same row again and is dropped with a warning.

    Args:
        path (`Path`):
            The annotation file.

    Returns:
        `list[dict[str, Any]]`: Rows with `video_id` (the clip id), `caption`, and `start` / `end` `None`.

    Raises:
        MalformedAnnotationError: For a line without 6 tab-separated columns (refused as the reference loader refuses
            it: a tab inside a sentence is not told apart from an extra column) or without a clip id.
    """
    entries: list[tuple[str, tuple[str, str], dict[str, Any]]] = []  # (place, key, row) for first_of_each
    with io.StringIO(read_text(path), newline="") as file:
        for line_number, line in enumerate(file, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue  # e.g. a blank last line
            # Plain tab splitting (as the reference loader does), not the csv module's default dialect: sentences
            # hold commas and literal double quotes that must stay as they are.
            columns = line.split("\t")
            if len(columns) != len(_COLUMNS):
                raise MalformedAnnotationError(
                    path,
                    f"line {line_number}",
                    f"{len(_COLUMNS)} tab-separated columns ({', '.join(_COLUMNS)}), found {len(columns)}",
                )
            clip_id = columns[0].strip()
            if not clip_id:
                raise MalformedAnnotationError(path, f"line {line_number}", "a clip id in the first column")
            row = {"video_id": clip_id, "caption": columns[-1].strip(), "start": None, "end": None}
            entries.append((f"line {line_number} ({clip_id})", (clip_id, row["caption"]), row))
    return first_of_each(path, entries, "duplicate line(s) (same clip id and sentence as an earlier line)")


class LSMDCBenchmark(AnnotatedBenchmark):
    """LSMDC: one row per sentence, each over its whole clip (start/end None); splits train, validation and test.

    `data_dir` holds `LSMDC16_annos_training.csv`, `LSMDC16_annos_val.csv` and `LSMDC16_challenge_1000_publictect.csv`
    (see the module docstring for their format). `video_dir` (default `data_dir`) holds the clips, each named
    `<clip id>.<any video extension>` at any depth, e.g. the release's `<movie name>/<clip id>.avi`.
    """

    DESCRIPTION = "LSMDC 2016 movie clips with their audio-description sentences, one row per sentence."

    def read_annotations(self, data_dir: Path) -> dict[str, list[dict[str, Any]]]:
        return {
            split: read_lsmdc_annotations(require_file(data_dir, file_name, self.name))
            for split, file_name in ANNOTATION_FILES.items()
        }
