"""The metadata files of a video folder, laid out as `datasets`' folder builders (ImageFolder, VideoFolder, ...) expect.

A `metadata.csv` (with a header) or `metadata.jsonl` lies beside the videos, or one in each of the `train/`,
`validation/` and `test/` subfolders. Each row names a video file relative to its metadata file and gives its
caption(s).

Read with the csv and json modules rather than `datasets`' loaders, so that every refusal names the file and line.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .annotation_files import MalformedAnnotationError, read_csv_columns, read_csv_header, read_text
from .columns import CAPTION_COLUMNS, VIDEO_COLUMNS, captions_of, pick_column, segment_of
from .splits import SPLIT_ALIASES, split_name

__all__ = ["METADATA_NAMES", "MetadataRow", "find_metadata_files", "metadata_digest", "read_metadata"]

METADATA_NAMES = ("metadata.csv", "metadata.jsonl")
OPTIONAL_COLUMNS = ("split", "start", "end")


@dataclass(frozen=True)
class MetadataRow:
    """One caption of one video (or clip) as a metadata file gives it.

    Args:
        path (`Path`):
            The metadata file.
        line (`int`):
            The row's line in it.
        file_name (`str`):
            The video file, relative to the metadata file.
        caption (`str`):
            The caption.
        split (`str`, *optional*):
            The split column's split; `None` without the column.
        start (`float`, *optional*):
            Start of the clip in seconds; `None` for the whole video.
        end (`float`, *optional*):
            End of the clip in seconds; `None` for the whole video.
    """

    path: Path
    line: int
    file_name: str
    caption: str
    split: str | None
    start: float | None
    end: float | None

    @property
    def source(self) -> str:
        return f"{self.path}, line {self.line}"


def _metadata_in(folder: Path) -> Path | None:
    found = [folder / name for name in METADATA_NAMES if (folder / name).is_file()]
    if len(found) > 1:
        raise MalformedAnnotationError(folder, "metadata files", f"one of {' or '.join(METADATA_NAMES)}, found both")
    return found[0] if found else None


def find_metadata_files(data_dir: Path) -> dict[str | None, Path]:
    """Find the metadata files of a video folder.

    Args:
        data_dir (`Path`):
            The video folder.

    Returns:
        `dict[str | None, Path]`: `{None: DIR/metadata.csv}` for one metadata file (splits, if any, from its `split`
        column), or `{split: DIR/<split>/metadata.csv, ...}` for split subfolders (`train/`, `validation/` or `val/`,
        `test/`, ...: `SPLIT_ALIASES`). Either may be `.jsonl`.

    Raises:
        FileNotFoundError: If there is no metadata file.
        MalformedAnnotationError: For both layouts at once, two files in one folder, or two subfolders of one split.
    """
    top = _metadata_in(data_dir)
    by_split: dict[str | None, Path] = {}
    for folder in sorted(path for path in data_dir.iterdir() if path.is_dir()):
        split = split_name(folder.name)
        path = _metadata_in(folder) if split else None
        if path is None:
            continue
        if split in by_split:
            raise MalformedAnnotationError(
                data_dir, f"{by_split[split].parent.name}/ and {folder.name}/", "one folder per split"
            )
        by_split[split] = path
    if top is not None and by_split:
        subfolders = ", ".join(str(path) for path in by_split.values())
        raise MalformedAnnotationError(
            top, "whole file", f"either this file or metadata files in split folders, not both (found {subfolders})"
        )
    if top is not None:
        return {None: top}
    if not by_split:
        raise FileNotFoundError(
            f"videofolder: no {' or '.join(METADATA_NAMES)} in {data_dir} nor in its train/, validation/ or test/ "
            "folders; write one with a file_name and a caption column (file names relative to the metadata file)."
        )
    return by_split


def metadata_digest(data_dir: Path) -> str:
    """Return the SHA-256 of the names and contents of the folder's metadata files (`""` when it has none).

    It keys the folder's Arrow cache, so that a changed metadata file is never served from a cache of the old one.

    Args:
        data_dir (`Path`):
            The video folder.

    Returns:
        `str`: The hex digest.
    """
    digest = hashlib.sha256()
    try:
        files = find_metadata_files(data_dir)
    except (OSError, ValueError):  # reported with its reason when the rows are read
        return ""
    for path in files.values():
        digest.update(str(path.relative_to(data_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _row_split(value: Any, path: Path, line: int) -> str:
    split = split_name(value) if isinstance(value, str) else None
    if split is None:
        names = ", ".join(sorted(set(SPLIT_ALIASES)))
        raise MalformedAnnotationError(
            path, f"line {line}", f"a split in column 'split' (one of {names}), got {value!r}"
        )
    return split


def _rows(path: Path, line: int, record: dict[str, Any], video_column: str, caption_column: str) -> list[MetadataRow]:
    where = f"line {line}"
    file_name = record.get(video_column)
    if not isinstance(file_name, str) or not file_name.strip():
        raise MalformedAnnotationError(path, where, f"a video file name in column {video_column!r}, got {file_name!r}")
    captions = captions_of(record.get(caption_column), path, where, caption_column)
    start, end = segment_of(record.get("start"), record.get("end"), path, where)
    split = _row_split(record["split"], path, line) if "split" in record else None
    return [MetadataRow(path, line, file_name.strip(), caption, split, start, end) for caption in captions]


def _read_csv(path: Path, video_column: str | None, caption_column: str | None) -> list[MetadataRow]:
    header = read_csv_header(path)
    video_column = pick_column(path, header, video_column, VIDEO_COLUMNS, "video")
    caption_column = pick_column(path, header, caption_column, CAPTION_COLUMNS, "caption")
    table = read_csv_columns(path, (video_column, caption_column), caption_column, optional=OPTIONAL_COLUMNS)
    return [row for line, record in table for row in _rows(path, line, record, video_column, caption_column)]


def _read_jsonl(path: Path, video_column: str | None, caption_column: str | None) -> list[MetadataRow]:
    records = []
    for line, text in enumerate(read_text(path).splitlines(), start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            raise MalformedAnnotationError(
                path, f"line {line}, column {error.colno}", f"a JSON object ({error.msg})"
            ) from None
        if not isinstance(record, dict):
            raise MalformedAnnotationError(path, f"line {line}", f"a JSON object, got {type(record).__name__}")
        records.append((line, record))
    # Objects may differ in their keys: a column is there when any row has it, and each row must fill it.
    found = list(dict.fromkeys(key for _, record in records for key in record))
    video_column = pick_column(path, found, video_column, VIDEO_COLUMNS, "video")
    caption_column = pick_column(path, found, caption_column, CAPTION_COLUMNS, "caption")
    return [row for line, record in records for row in _rows(path, line, record, video_column, caption_column)]


def read_metadata(path: Path, video_column: str | None = None, caption_column: str | None = None) -> list[MetadataRow]:
    """Read the rows of a metadata file (`metadata.csv` or `metadata.jsonl`), one per caption.

    In a jsonl file a caption may be a list of captions: the row becomes one row per caption. Optional columns: `split`
    and `start` / `end` (seconds of a clip; empty for the whole video).

    Args:
        path (`Path`):
            The metadata file.
        video_column (`str`, *optional*):
            The column of video files; the first of `VIDEO_COLUMNS` present (`file_name` as in `datasets`) when
            `None`.
        caption_column (`str`, *optional*):
            The column of captions; the first of `CAPTION_COLUMNS` present (`caption`, `text`, ...) when `None`.

    Returns:
        `list[MetadataRow]`: The rows.

    Raises:
        MissingColumnError: Naming the columns found and wanted.
        MalformedAnnotationError: Naming the file and line of a row without a file name, without a caption (or with
            an empty list), or with a bad split or segment.
    """
    if path.suffix == ".jsonl":
        return _read_jsonl(path, video_column, caption_column)
    return _read_csv(path, video_column, caption_column)
