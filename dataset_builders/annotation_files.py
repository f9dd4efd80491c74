"""Readers of the annotation file formats that several benchmarks share (JSON, csv with a header, id lists).

Every reader turns a format problem into a `MalformedAnnotationError` naming the file, the line (or key) and what was
expected, so that a user with a damaged or mislabelled download knows which file to fix without reading tracebacks.

A row that repeats an earlier one (a video id listed twice, the same test pair twice) is dropped, the first kept, with
one warning per file naming how many and where the first few are (`first_of_each`): a repeated row would count twice
in training and, worse, inflate or skew the test metrics, while refusing the file would stop a build over a harmless
slip. Several captions of one video that happen to read alike are not repeated rows: they are the benchmark's data, as
the reference loaders read them, and are kept.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import os
from collections.abc import Hashable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "MalformedAnnotationError",
    "first_of_each",
    "load_json",
    "read_csv_columns",
    "read_csv_header",
    "read_id_list",
    "require_file",
]

logger = logging.getLogger(__name__)

# Repeated rows a warning names (by line or item) before it only counts the rest.
SHOWN_REPEATS = 5

T = TypeVar("T")


class MalformedAnnotationError(ValueError):
    """An annotation file does not have the expected format.

    Args:
        path (`str` or `os.PathLike`):
            The file.
        where (`str`):
            The line, item or key.
        expected (`str`):
            What was expected there.
    """

    def __init__(self, path: str | os.PathLike, where: str, expected: str):
        self.path, self.where, self.expected = os.fspath(path), where, expected
        super().__init__(f"{self.path}, {where}: expected {expected}")


def require_file(data_dir: Path, name: str, benchmark: str) -> Path:
    """Return `data_dir / name`, which must be a file.

    Args:
        data_dir (`Path`):
            The annotation folder.
        name (`str`):
            The file's name.
        benchmark (`str`):
            The benchmark, named in the error.

    Returns:
        `Path`: The file.

    Raises:
        FileNotFoundError: If the file is missing, saying which file of which benchmark it is.
    """
    path = data_dir / name
    if not path.is_file():
        raise FileNotFoundError(f"{benchmark}: {path} not found; it is one of the benchmark's annotation files.")
    return path


_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def read_text(path: Path) -> str:
    """Return the text of an annotation file, which must be UTF-8 (a UTF-8 byte-order mark is fine).

    Args:
        path (`Path`):
            The file.

    Returns:
        `str`: Its text.

    Raises:
        MalformedAnnotationError: If the file is not UTF-8, naming the file, where decoding failed and the encoding
            the bytes look like (UTF-16 / UTF-32 by their byte-order mark, else a single-byte Windows / Latin code
            page), with the command that converts it.
    """
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        found = next((name for mark, name in _BYTE_ORDER_MARKS if data.startswith(mark)), "cp1252 / Latin-1")
        line = data.count(b"\n", 0, error.start) + 1
        source = found.split(" ")[0]
        raise MalformedAnnotationError(
            path,
            f"line {line} (byte {error.start})",
            f"UTF-8 text; the file looks {found}-encoded: convert it with `iconv -f {source} -t UTF-8`",
        ) from None


def load_json(path: Path) -> Any:
    """Parse the JSON file `path`.

    Args:
        path (`Path`):
            The file.

    Returns:
        `Any`: The parsed JSON.

    Raises:
        MalformedAnnotationError: If the file is not UTF-8 or not valid JSON, naming the line and column.
    """
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise MalformedAnnotationError(path, where, f"valid JSON ({error.msg})") from None


class _RecordedLines(Iterator[str]):
    """The lines of a file, keeping those read since the last `take()`.

    These are the raw text of the csv record just parsed: the csv reader pulls exactly the lines of one record and
    never reads ahead.
    """

    def __init__(self, file: io.StringIO):
        self._file, self._read = file, []

    def __next__(self) -> str:
        line = next(self._file)
        self._read.append(line)
        return line

    def take(self) -> str:
        text, self._read = "".join(self._read), []
        return text


def _caption_taking_the_rest(
    path: Path, line: int, header: list[str], fields: list[str], record: str, caption_column: str | None
) -> list[str]:
    """Return the `fields` of a record with more fields than `header`, the extra ones given back to the caption.

    An unquoted caption holding commas is split at each of them, and when the caption is the last column, everything
    after the other columns' commas is the caption. It is taken from the record's raw text rather than re-joined from
    the fields, so that quotes inside it stay verbatim.

    That reading is unambiguous only when the caption is the last column, the record is one line, the leading fields
    are plain (they appear verbatim before it: no quotes, no commas) and the caption does not start with a quote (a
    quoted caption followed by more text leaves no telling what the caption is). Otherwise the row is refused.
    """
    text = record.rstrip("\r\n")
    prefix = "".join(f"{field}," for field in fields[: len(header) - 1])
    rest = text[len(prefix) :]
    if caption_column != header[-1] or "\n" in text or "\r" in text or not text.startswith(prefix) or rest[:1] == '"':
        fix = f"; quote the {caption_column} if it holds commas" if caption_column else ""
        raise MalformedAnnotationError(
            path, f"line {line}", f"{len(header)} fields ({', '.join(header)}), found {len(fields)}{fix}"
        )
    return [*fields[: len(header) - 1], rest]


def read_csv_header(path: Path) -> list[str]:
    """Return the column names of the csv `path` (its first record), `[]` for an empty file.

    Args:
        path (`Path`):
            The csv file.

    Returns:
        `list[str]`: The column names.
    """
    with io.StringIO(read_text(path), newline="") as file:
        return next(csv.reader(file), [])


def read_csv_columns(
    path: Path, columns: tuple[str, ...], caption_column: str | None = None, optional: tuple[str, ...] = ()
) -> list[tuple[int, dict[str, str]]]:
    """Read the rows of a csv with a header holding at least `columns`, each non-empty.

    The csv module (not a split on commas) because sentences may contain commas and quotes. A row with more fields than
    the header (a caption holding unquoted commas, as in the released MSR-VTT test csv) is read whole when
    `caption_column` is the header's last column and the line allows it unambiguously: the caption takes the rest of
    the line (see `_caption_taking_the_rest`). Any other row with extra fields is refused with its line number, never
    cut short.

    Args:
        path (`Path`):
            The csv file.
        columns (`tuple[str, ...]`):
            The columns every row must fill.
        caption_column (`str`, *optional*):
            The caption's column, which may take the rest of a line with extra fields.
        optional (`tuple[str, ...]`, *optional*, defaults to `()`):
            Columns read too when the header has them, and which may be empty (`""` in the row); those it lacks are
            left out.

    Returns:
        `list[tuple[int, dict[str, str]]]`: `(line number, row)` for each row.

    Raises:
        MalformedAnnotationError: If the header lacks a column, a row leaves one empty or has fields that cannot be
            told apart, naming the line.
    """
    with io.StringIO(read_text(path), newline="") as file:
        lines = _RecordedLines(file)
        reader = csv.reader(lines)
        header = next(reader, [])
        lines.take()
        if not set(columns) <= set(header):
            raise MalformedAnnotationError(path, f"line 1 (header {header})", f"a header with columns {list(columns)}")
        rows = []
        for fields in reader:
            record = lines.take()
            if not fields:
                continue  # a blank line
            if len(fields) > len(header):
                fields = _caption_taking_the_rest(path, reader.line_num, header, fields, record, caption_column)
            row = dict(zip(header, fields, strict=False))  # a short row lacks its last columns: refused just below
            values = {column: row.get(column, "") for column in columns}
            empty = [column for column, value in values.items() if not value]
            if empty:
                raise MalformedAnnotationError(path, f"line {reader.line_num}", f"a value in column {empty[0]!r}")
            values.update({column: row.get(column, "") for column in optional if column in header})
            rows.append((reader.line_num, values))
    return rows


def first_of_each(path: Path, rows: Iterable[tuple[str, Hashable, T]], repeats: str) -> list[T]:
    """Keep the rows whose key no earlier row had, in order.

    The others are dropped with one warning naming `path`, how many `repeats` there are and the places of the first
    few.

    Args:
        path (`Path`):
            The file, named in the warning.
        rows (`Iterable[tuple[str, Hashable, T]]`):
            `(place, key, row)` triples; `place` names the row in the warning (e.g. `"line 3 (video7)"`).
        repeats (`str`):
            What the dropped rows are, in the warning (e.g. `"repeated video id(s)"`).

    Returns:
        `list[T]`: The kept rows.
    """
    seen: set[Hashable] = set()
    kept: list[T] = []
    dropped: list[str] = []
    for place, key, row in rows:
        if key in seen:
            dropped.append(place)
        else:
            seen.add(key)
            kept.append(row)
    if dropped:
        shown = ", ".join(dropped[:SHOWN_REPEATS])
        more = f" and {len(dropped) - SHOWN_REPEATS} more" if len(dropped) > SHOWN_REPEATS else ""
        logger.warning("%s: dropped %d %s, keeping the first of each: %s%s", path, len(dropped), repeats, shown, more)
    return kept


def read_id_list(path: Path) -> list[tuple[int, str]]:
    """Read a split list: one video id per non-blank line.

    A repeated id is dropped with a warning (`first_of_each`), since it would repeat all the video's rows.

    Args:
        path (`Path`):
            The list file.

    Returns:
        `list[tuple[int, str]]`: `(line number, video id)` for each kept line, in order.

    Raises:
        MalformedAnnotationError: If a line holds more than one word.
    """
    entries = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        video_id = line.strip()
        if not video_id:
            continue
        if len(video_id.split()) != 1:
            raise MalformedAnnotationError(path, f"line {number}", f"one video id per line, got {line!r}")
        entries.append((f"line {number} ({video_id})", video_id, (number, video_id)))
    return first_of_each(path, entries, "repeated video id(s)")


def caption_rows_for_lists(
    list_paths: dict[str, Path], captions: dict[str, list[str]], captions_source: str
) -> dict[str, list[dict[str, Any]]]:
    """Make one whole-video row per caption of every id in each split's id list.

    This serves benchmarks whose splits are id lists beside a captions file.

    Args:
        list_paths (`dict[str, Path]`):
            `{split: id list file}`.
        captions (`dict[str, list[str]]`):
            `{video id: captions}`.
        captions_source (`str`):
            Names the captions file in errors.

    Returns:
        `dict[str, list[dict[str, Any]]]`: `{split: rows}`.

    Raises:
        MalformedAnnotationError: If an id has no captions, naming the list, the line and `captions_source`.
    """
    rows: dict[str, list[dict[str, Any]]] = {}
    for split, list_path in list_paths.items():
        rows[split] = []
        for line, video_id in read_id_list(list_path):
            if not captions.get(video_id):
                raise MalformedAnnotationError(
                    list_path, f"line {line} ({video_id!r})", f"a video with captions in {captions_source}"
                )
            rows[split] += [
                {"video_id": video_id, "caption": caption, "start": None, "end": None} for caption in captions[video_id]
            ]
    return rows
