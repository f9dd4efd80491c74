"""The columns of user-made video/caption tables (a video folder's metadata file, a Hub or local dataset).

Which column names the video and which the caption, and the checks of each value, every refusal naming where the value
came from.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

from modeling_tvr.caption_checks import caption_problem

from .annotation_files import MalformedAnnotationError

__all__ = [
    "CAPTION_COLUMNS",
    "VIDEO_COLUMNS",
    "MissingColumnError",
    "captions_of",
    "pick_column",
    "segment_of",
]

# Names a column of video files goes by, in the order they are tried when a table has several.
VIDEO_COLUMNS = ("video", "video_path", "file_name", "path", "filename", "clip")

# Names a column of captions goes by, in the order they are tried when a table has several.
CAPTION_COLUMNS = ("caption", "text", "sentence", "description", "captions")


class MissingColumnError(MalformedAnnotationError):
    """A table lacks a column it needs.

    Args:
        source (`str` or `os.PathLike`):
            Names the table.
        found (`Iterable[str]`):
            The columns it has.
        wanted (`Iterable[str]`):
            The names that were looked for.
        role (`str`):
            What the column holds (`"video"`, `"caption"`).
        option (`str`):
            The option that names the column (`"video_column"`, ...).
    """

    def __init__(self, source: str | os.PathLike, found: Iterable[str], wanted: Iterable[str], role: str, option: str):
        self.found, self.wanted = list(found), list(wanted)
        names = " or ".join(repr(name) for name in self.wanted)
        super().__init__(
            source,
            f"columns {self.found}",
            f"a {role} column named {names}; rename it, or pass {option}=... naming the column that holds it",
        )


def pick_column(
    source: str | os.PathLike, found: Iterable[str], given: str | None, candidates: tuple[str, ...], role: str
) -> str:
    """Pick the column of a table that holds the videos or the captions.

    Args:
        source (`str` or `os.PathLike`):
            Names the table in the error.
        found (`Iterable[str]`):
            The table's columns.
        given (`str`, *optional*):
            The column the caller named; the first of `candidates` the table has when `None`.
        candidates (`tuple[str, ...]`):
            The usual names, in order.
        role (`str`):
            `"video"` or `"caption"`: it names the column in the error and the option that picks it.

    Returns:
        `str`: The column.

    Raises:
        MissingColumnError: If the table has no such column.
    """
    found = list(found)
    wanted = (given,) if given else candidates
    column = next((name for name in wanted if name in found), None)
    if column is None:
        raise MissingColumnError(source, found, wanted, role, f"{role}_column")
    return column


def captions_of(value: Any, source: str | os.PathLike, where: str, column: str) -> list[str]:
    """Return the captions of one row: a string is one caption, a list of strings one caption each.

    Args:
        value (`Any`):
            The row's value in the caption column.
        source (`str` or `os.PathLike`):
            Names the table in the error.
        where (`str`):
            The line or row, in the error.
        column (`str`):
            The caption column, in the error.

    Returns:
        `list[str]`: The captions.

    Raises:
        MalformedAnnotationError: For an empty list, a caption that is not a string, or one without a word (empty,
            whitespace, control characters): a row is never dropped in silence.
    """
    if isinstance(value, (list, tuple)):
        if not value:
            raise MalformedAnnotationError(source, where, f"at least one caption in the list of column {column!r}")
        captions = list(value)
    else:
        captions = [value]
    for caption in captions:
        problem = caption_problem(caption)
        if problem is not None:
            raise MalformedAnnotationError(
                source, where, f"a caption with at least one word in column {column!r}; its caption {problem}"
            )
    return captions


def _seconds(value: Any, name: str, source: str | os.PathLike, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise MalformedAnnotationError(source, where, f"{name} in seconds (a number >= 0), got {value!r}")
    return seconds


def segment_of(start: Any, end: Any, source: str | os.PathLike, where: str) -> tuple[float | None, float | None]:
    """Return the segment of a row: `(start, end)` in seconds of a clip cut from a longer video.

    Args:
        start (`Any`):
            The row's start; empty or absent (`None`) with `end` for the whole video.
        end (`Any`):
            The row's end.
        source (`str` or `os.PathLike`):
            Names the table in the error.
        where (`str`):
            The line or row, in the error.

    Returns:
        `tuple[float | None, float | None]`: `(start, end)`, or `(None, None)` for the whole video.

    Raises:
        MalformedAnnotationError: For one without the other, a value that is not a number of seconds, or an end not
            after the start.
    """
    start, end = _seconds(start, "start", source, where), _seconds(end, "end", source, where)
    if (start is None) != (end is None):
        raise MalformedAnnotationError(source, where, "both start and end, or neither (the whole video)")
    if start is not None and end <= start:
        raise MalformedAnnotationError(source, where, f"an end after the start, got start {start} and end {end}")
    return start, end
