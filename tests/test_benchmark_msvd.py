"""The MSVD builder (``dataset_builders.msvd``) on small files in the real formats."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import pytest

from dataset_builders import benchmark_features, load_benchmark
from dataset_builders.annotated import MalformedAnnotationError, MissingVideosError

# Arrow files of these throwaway builds stay out of the user's datasets cache.
pytestmark = pytest.mark.usefixtures("isolated_datasets_cache")


# MSVD-style ids (YouTube id, start, end); a few captions each, tokenised as in raw-captions.pkl.
IDS = [f"-{chr(97 + i)}Xw_{i}_{i + 10}" for i in range(9)]
TOKENS = {
    video_id: [["a", "man", "is", f"doing{j}", "thing", str(i)] for j in range(2 + i % 3)]
    for i, video_id in enumerate(IDS)
}
SPLITS = {"train": IDS[:5], "validation": IDS[5:6], "test": IDS[6:]}
LIST_FILES = {"train": "train_list.txt", "validation": "val_list.txt", "test": "test_list.txt"}


def write_msvd(data_dir: Path, tokens: dict, splits: dict[str, list[str]]) -> None:
    """raw-captions.pkl and the three split lists, laid out as in CLIP4Clip's msvd_data."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "raw-captions.pkl").write_bytes(pickle.dumps(tokens))
    for split, ids in splits.items():
        (data_dir / LIST_FILES[split]).write_text("".join(f"{video_id}\n" for video_id in ids))


@pytest.fixture
def msvd(tmp_path: Path) -> tuple[Path, Path]:
    data_dir, video_dir = tmp_path / "msvd_data", tmp_path / "YouTubeClips"
    write_msvd(data_dir, TOKENS, SPLITS)
    for i, video_id in enumerate(IDS):
        folder = video_dir / ("nested/deeper" if i % 2 else "")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{video_id}.avi").touch()
    return data_dir, video_dir


def test_splits_and_every_caption(msvd):
    data_dir, video_dir = msvd
    dataset = load_benchmark("msvd", data_dir=data_dir, video_dir=video_dir)
    assert list(dataset) == ["train", "validation", "test"]
    for split, ids in SPLITS.items():
        rows = dataset[split]
        assert rows.features == benchmark_features()
        assert set(rows["start"]) == {None} and set(rows["end"]) == {None}
        expected = [(video_id, " ".join(tokens)) for video_id in ids for tokens in TOKENS[video_id]]
        # Every caption of every video is a row, test included (several captions per video).
        assert sorted(zip(rows["video_id"], rows["caption"], strict=True)) == sorted(expected)
        for row in rows:
            assert Path(row["video"]).name == f"{row['video_id']}.avi" and Path(row["video"]).is_file()
    assert dataset["test"].num_rows > len(SPLITS["test"])


def test_missing_videos_error_or_skip(msvd, caplog):
    data_dir, video_dir = msvd
    for video_id in IDS[:2] + IDS[7:8]:
        next(video_dir.rglob(f"{video_id}.avi")).unlink()
    with pytest.raises(MissingVideosError, match=rf"3 video\(s\).*first: {IDS[0]}, {IDS[1]}, {IDS[7]}"):
        load_benchmark("msvd", data_dir=data_dir, video_dir=video_dir)
    with caplog.at_level(logging.WARNING, logger="dataset_builders"):
        dataset = load_benchmark("msvd", data_dir=data_dir, video_dir=video_dir, missing_videos="skip")
    assert "3 video(s)" in caplog.text
    assert set(dataset["train"]["video_id"]) == set(IDS[2:5])
    assert set(dataset["test"]["video_id"]) == {IDS[6], IDS[8]}


def test_malformed_files_name_file_and_place(msvd):
    data_dir, video_dir = msvd
    (data_dir / "val_list.txt").write_text(f"{IDS[5]}\nnot_a_video\n")
    with pytest.raises(MalformedAnnotationError, match=r"val_list\.txt, line 2 \('not_a_video'\).*raw-captions\.pkl"):
        load_benchmark("msvd", data_dir=data_dir, video_dir=video_dir)

    write_msvd(data_dir, {**TOKENS, IDS[3]: ["a caption as one string"]}, SPLITS)
    with pytest.raises(
        MalformedAnnotationError, match=rf"raw-captions\.pkl, key '{IDS[3]}': expected a list of captions"
    ):
        load_benchmark("msvd", data_dir=data_dir, video_dir=video_dir)

    (data_dir / "raw-captions.pkl").write_bytes(b"not a pickle")
    with pytest.raises(MalformedAnnotationError, match=r"raw-captions\.pkl"):
        load_benchmark("msvd", data_dir=data_dir, video_dir=video_dir)


class _Exploit:
    # Unpickling this calls os.system: the loader must refuse it rather than run the command.
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_pickle_cannot_run_code(msvd, tmp_path, monkeypatch):
    data_dir, video_dir = msvd
    monkeypatch.chdir(tmp_path)
    (data_dir / "raw-captions.pkl").write_bytes(pickle.dumps({IDS[0]: _Exploit()}))
    with pytest.raises(MalformedAnnotationError, match=r"raw-captions\.pkl.*not allowed"):
        load_benchmark("msvd", data_dir=data_dir, video_dir=video_dir)
    assert not (tmp_path / "pwned").exists()


def test_unknown_option(msvd):
    data_dir, video_dir = msvd
    with pytest.raises(TypeError, match=r"Unknown option\(s\) \['train_split'\] for benchmark 'msvd'"):
        load_benchmark("msvd", data_dir=data_dir, video_dir=video_dir, train_split="9k")


def test_repeated_test_list_ids_are_dropped_with_a_warning(msvd, caplog):
    data_dir, video_dir = msvd
    # Repeating an id would repeat all its captions, as queries and as targets.
    (data_dir / "test_list.txt").write_text(f"{IDS[6]}\n{IDS[7]}\n{IDS[6]}\n{IDS[8]}\n")
    with caplog.at_level(logging.WARNING, logger="dataset_builders"):
        test = load_benchmark("msvd", data_dir=data_dir, video_dir=video_dir, split="test")
    assert test.num_rows == sum(len(TOKENS[video_id]) for video_id in IDS[6:])
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any(
        "test_list.txt: dropped 1 repeated video id(s)" in text and f"line 3 ({IDS[6]})" in text for text in warnings
    ), warnings
