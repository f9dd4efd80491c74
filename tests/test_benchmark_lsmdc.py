"""The LSMDC builder (``dataset_builders.lsmdc``), on small files in the real formats."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from dataset_builders import benchmark_features, load_benchmark
from dataset_builders.annotated import MalformedAnnotationError, MissingVideosError

# Arrow files of these throwaway builds stay out of the user's datasets cache.
pytestmark = pytest.mark.usefixtures("isolated_datasets_cache")

AMERICAN_BEAUTY = "0001_American_Beauty"
FARGO = "1004_Fargo"


def clip(movie: str, start: str, end: str) -> str:
    return f"{movie}_{start}-{end}"


# (clip id, sentence) per split, in file order. Sentences with commas and double quotes (even a leading one, which
# the csv module's default dialect would take for a quoted field) must come through verbatim.
LINES = {
    "train": [
        (clip(AMERICAN_BEAUTY, "00.00.51.926", "00.00.54.129"), 'SOMEONE, holding a "gun", walks in.'),
        (clip(AMERICAN_BEAUTY, "00.00.51.926", "00.00.54.129"), '"Hello," she says, smiling.'),
        (clip(AMERICAN_BEAUTY, "00.01.02.000", "00.01.05.500"), "He looks up."),
        (clip(FARGO, "00.10.00.000", "00.10.03.250"), 'The car stops; snow, "everywhere".'),
        (clip(FARGO, "00.12.00.000", "00.12.02.000"), "She waits."),
    ],
    "validation": [
        (clip(FARGO, "00.20.00.000", "00.20.01.000"), "SOMEONE nods."),
        (clip(FARGO, "00.21.00.000", "00.21.04.000"), 'A sign reads "Welcome".'),
    ],
    "test": [
        (clip(AMERICAN_BEAUTY, "01.00.00.000", "01.00.02.000"), "Roses fall, slowly."),
        (clip(AMERICAN_BEAUTY, "01.10.00.000", "01.10.02.000"), "They dance."),
        (clip(FARGO, "01.20.00.000", "01.20.03.000"), 'He shouts, "Stop!" and runs.'),
    ],
}
FILES = {
    "train": "LSMDC16_annos_training.csv",
    "validation": "LSMDC16_annos_val.csv",
    "test": "LSMDC16_challenge_1000_publictect.csv",
}
ALL_CLIPS = list(dict.fromkeys(clip_id for lines in LINES.values() for clip_id, _ in lines))


def write_annotations(data_dir: Path, lines: dict[str, list[tuple[str, str]]] = LINES) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    for split, split_lines in lines.items():
        text = "".join(
            f"{clip_id}\t00.00.01.000\t00.00.02.000\t00.00.01.000\t00.00.02.000\t{sentence}\n"
            for clip_id, sentence in split_lines
        )
        (data_dir / FILES[split]).write_text(text, encoding="utf-8")


def video_path(video_dir: Path, clip_id: str) -> Path:
    # As released: <movie>/<clip id>.avi, the movie folder being the clip id without its time range. One clip is an
    # .mp4 one folder deeper, since any extension and depth must do.
    movie = clip_id.rsplit("_", 1)[0]
    if clip_id == ALL_CLIPS[2]:
        return video_dir / "extra" / movie / f"{clip_id}.mp4"
    return video_dir / movie / f"{clip_id}.avi"


@pytest.fixture
def lsmdc(tmp_path: Path) -> tuple[Path, Path]:
    """(data_dir, video_dir) with every file in place; the videos are empty files (the builder does not decode)."""
    data_dir, video_dir = tmp_path / "annotations", tmp_path / "videos"
    write_annotations(data_dir)
    for clip_id in ALL_CLIPS:
        path = video_path(video_dir, clip_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    return data_dir, video_dir


def test_rows_captions_and_videos(lsmdc):
    data_dir, video_dir = lsmdc
    dataset = load_benchmark("lsmdc", data_dir=data_dir, video_dir=video_dir)
    assert list(dataset) == ["train", "validation", "test"]
    for split, lines in LINES.items():
        rows = dataset[split]
        assert rows.features == benchmark_features()
        # One row per line, in file order, every sentence verbatim (commas and quotes included).
        assert rows.num_rows == len(lines)
        assert list(zip(rows["video_id"], rows["caption"], strict=True)) == lines
        assert rows["video"] == [str(video_path(video_dir, clip_id).absolute()) for clip_id, _ in lines]
        assert set(rows["start"]) == {None} and set(rows["end"]) == {None}  # whole clips


def test_split_selection(lsmdc):
    data_dir, video_dir = lsmdc
    test = load_benchmark("lsmdc", data_dir=data_dir, video_dir=video_dir, split="test")
    assert test["caption"] == [sentence for _, sentence in LINES["test"]]


def test_missing_videos_error_counts_and_names_the_first_few(lsmdc):
    data_dir, video_dir = lsmdc
    missing = ALL_CLIPS[:7]
    for clip_id in missing:
        video_path(video_dir, clip_id).unlink()
    with pytest.raises(MissingVideosError) as error:
        load_benchmark("lsmdc", data_dir=data_dir, video_dir=video_dir)
    message = str(error.value)
    assert "7 video(s)" in message and "missing_videos='skip'" in message
    assert all(clip_id in message for clip_id in missing[:5]) and missing[6] not in message


def test_missing_videos_skip_drops_rows_with_a_warning(lsmdc, caplog):
    data_dir, video_dir = lsmdc
    dropped = LINES["train"][0][0]  # the clip with two sentences
    video_path(video_dir, dropped).unlink()
    with caplog.at_level(logging.WARNING, logger="dataset_builders.annotated"):
        dataset = load_benchmark("lsmdc", data_dir=data_dir, video_dir=video_dir, missing_videos="skip")
    assert dataset["train"].num_rows == len(LINES["train"]) - 2 and dropped not in dataset["train"]["video_id"]
    assert dataset["test"].num_rows == len(LINES["test"])
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("1 video(s)" in text and "2 caption row(s)" in text and dropped in text for text in warnings)


def test_wrong_column_count_names_file_and_line(lsmdc):
    data_dir, video_dir = lsmdc
    path = data_dir / FILES["validation"]
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace("\t", " ", 1)  # 5 columns
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(MalformedAnnotationError, match=r"LSMDC16_annos_val\.csv, line 2: expected 6 tab-separated"):
        load_benchmark("lsmdc", data_dir=data_dir, video_dir=video_dir)


def test_missing_annotation_file(lsmdc):
    data_dir, video_dir = lsmdc
    (data_dir / FILES["test"]).unlink()
    with pytest.raises(FileNotFoundError, match="LSMDC16_challenge_1000_publictect.csv"):
        load_benchmark("lsmdc", data_dir=data_dir, video_dir=video_dir)


def test_duplicate_lines_are_dropped_with_a_warning(lsmdc, caplog):
    data_dir, video_dir = lsmdc
    repeated = LINES["test"][0]
    write_annotations(data_dir, {**LINES, "test": [*LINES["test"], repeated]})
    with caplog.at_level(logging.WARNING, logger="dataset_builders"):
        test = load_benchmark("lsmdc", data_dir=data_dir, video_dir=video_dir, split="test")
    assert list(zip(test["video_id"], test["caption"], strict=True)) == LINES["test"]
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any(
        f"{FILES['test']}: dropped 1 duplicate line(s)" in text and f"line 4 ({repeated[0]})" in text
        for text in warnings
    ), warnings
