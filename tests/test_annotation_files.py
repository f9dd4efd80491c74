"""The shared annotation readers (``dataset_builders.annotation_files``): captions holding unquoted commas and
repeated rows, on files written the way the benchmarks ship them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from dataset_builders.annotation_files import MalformedAnnotationError, read_csv_columns, read_id_list

HEADER = "key,vid_key,video_id,sentence\n"


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]


def test_last_column_caption_takes_the_rest_of_an_unquoted_line(tmp_path: Path):
    table = tmp_path / "test.csv"
    # As released (unquoted), as a csv writer would write it (quoted), and CRLF line ends.
    table.write_text(
        HEADER + 'ret0,msr1,video1,a man, a "hat", a dog\r\nret1,msr2,video2,"a cat, quoted"\r\n', newline=""
    )
    rows = read_csv_columns(table, ("video_id", "sentence"), caption_column="sentence")
    assert rows == [
        (2, {"video_id": "video1", "sentence": 'a man, a "hat", a dog'}),
        (3, {"video_id": "video2", "sentence": "a cat, quoted"}),
    ]


@pytest.mark.parametrize(
    "row",
    [
        'ret0,"msr,1",video1,a man, a dog',  # a quoted leading field: the commas before the caption are unclear
        'ret0,msr1,video1,"a man, quoted", and more',  # a quoted caption with text after it
        'ret0,msr1,video1,a man,"a\ndog"',  # the record runs over two lines
    ],
)
def test_extra_fields_that_cannot_be_rejoined_are_refused_with_the_line(tmp_path: Path, row: str):
    table = tmp_path / "test.csv"
    table.write_text(HEADER + "ret9,msr9,video9,a cat\n" + row + "\n")
    with pytest.raises(MalformedAnnotationError, match=r"test\.csv, line [34]: expected 4 fields \(key, vid_key"):
        read_csv_columns(table, ("video_id", "sentence"), caption_column="sentence")


def test_extra_fields_without_a_caption_column_are_refused(tmp_path: Path):
    table = tmp_path / "test.csv"
    table.write_text(HEADER + "ret0,msr1,video1,a man, a dog\n")
    # Without a caption column named, nothing says which field the extra commas belong to.
    with pytest.raises(MalformedAnnotationError, match=r"test\.csv, line 2: expected 4 fields.*found 5"):
        read_csv_columns(table, ("video_id", "sentence"))
    # A caption column that is not the last one cannot take the rest of the line either.
    with pytest.raises(MalformedAnnotationError, match=r"test\.csv, line 2: expected 4 fields.*found 5"):
        read_csv_columns(table, ("video_id", "sentence"), caption_column="vid_key")


def test_many_repeated_ids_give_one_warning_with_the_count_and_the_first_five(tmp_path: Path, caplog):
    ids = tmp_path / "test_list.txt"
    ids.write_text("".join(f"v{i % 2}\n" for i in range(9)))  # v0, v1, then 7 repeats on lines 3..9
    with caplog.at_level(logging.WARNING, logger="dataset_builders"):
        assert read_id_list(ids) == [(1, "v0"), (2, "v1")]
    [warning] = warnings_of(caplog)
    assert warning == (
        f"{ids}: dropped 7 repeated video id(s), keeping the first of each: "
        "line 3 (v0), line 4 (v1), line 5 (v0), line 6 (v1), line 7 (v0) and 2 more"
    )


def test_an_id_list_without_repeats_gives_no_warning(tmp_path: Path, caplog):
    ids = tmp_path / "train_list.txt"
    ids.write_text("v0\n\nv1\n")
    with caplog.at_level(logging.WARNING, logger="dataset_builders"):
        assert read_id_list(ids) == [(1, "v0"), (3, "v1")]
    assert warnings_of(caplog) == []
