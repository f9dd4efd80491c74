"""Readers of the annotation file formats that several benchmarks share (JSON, csv with a header, id lists).

Every reader turns a format problem into a `MalformedAnnotationError` naming the file, the line (or key) and what was
expected, so that a user with a damaged or mislabelled download knows which file to fix without reading tracebacks.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["MalformedAnnotationError", "load_json", "read_csv_columns", "read_id_list", "require_file"]


class MalformedAnnotationError(ValueError):
    """An annotation file does not have the expected format: names the file, the line or key, and what was expected."""

    def __init__(self, path: str | os.PathLike, where: str, expected: str):
        self.path, self.where, self.expected = os.fspath(path), where, expected
        super().__init__(f"{self.path}, {where}: expected {expected}")


def require_file(data_dir: Path, name: str, benchmark: str) -> Path:
    """`data_dir / name`, or a FileNotFoundError saying which file of which benchmark is missing."""
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
    """The text of an annotation file, which must be UTF-8 (a UTF-8 byte-order mark is fine).

    Anything else raises a `MalformedAnnotationError` naming the file, where decoding failed and the encoding the
    bytes look like (UTF-16 / UTF-32 by their byte-order mark, else a single-byte Windows / Latin code page), with
    the command that converts it.
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
    """The parsed JSON of `path`; a syntax error becomes a `MalformedAnnotationError` naming the line and column."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise MalformedAnnotationError(path, where, f"valid JSON ({error.msg})") from None


def read_csv_columns(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """`(line number, row)` for each row of a csv with a header holding at least `columns`, each non-empty.

    The csv module (not a split on commas) because sentences may contain commas and quotes.
    """
    with io.StringIO(read_text(path), newline="") as file:
        reader = csv.DictReader(file)
        header = reader.fieldnames or []
        if not set(columns) <= set(header):
            raise MalformedAnnotationError(path, f"line 1 (header {header})", f"a header with columns {list(columns)}")
        rows = []
        for row in reader:
            values = {column: row[column] for column in columns}
            empty = [column for column, value in values.items() if not value]
            if empty:
                raise MalformedAnnotationError(path, f"line {reader.line_num}", f"a value in column {empty[0]!r}")
            rows.append((reader.line_num, values))
    return rows


def read_id_list(path: Path) -> list[tuple[int, str]]:
    """`(line number, video id)` for each non-blank line of a split list, in order, repeated ids dropped."""
    ids: dict[str, int] = {}
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        video_id = line.strip()
        if not video_id:
            continue
        if len(video_id.split()) != 1:
            raise MalformedAnnotationError(path, f"line {number}", f"one video id per line, got {line!r}")
        ids.setdefault(video_id, number)
    return [(number, video_id) for video_id, number in ids.items()]


def caption_rows_for_lists(
    list_paths: dict[str, Path], captions: dict[str, list[str]], captions_source: str
) -> dict[str, list[dict[str, Any]]]:
    """
    `{split: rows}` with one whole-video row per caption of every id in each split's id list (benchmarks whose
    splits are id lists beside a captions file). An id without captions is a `MalformedAnnotationError` naming the
    list, the line and `captions_source`.
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
