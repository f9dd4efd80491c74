"""The synthetic toy benchmark (``dataset_builders.toy``) and ``load_benchmark``."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

# Before datasets is imported, which reads these once: the toy benchmark needs no network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import av  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dataset_builders import ToyBenchmark, benchmark_features, load_benchmark  # noqa: E402
from dataset_builders.toy import COLOURS, COMBINATIONS, MOTIONS, SHAPES  # noqa: E402

# Small enough to build in a couple of seconds: 72 test + 72 train videos, plus 72 validation videos.
OPTIONS = {"num_videos": 144, "num_validation_videos": 72}
SIZE, FRAMES = 64, 24  # defaults: 64x64 px, 3 s at 8 fps

_WORDS = {
    "colour": re.compile(r"\b(" + "|".join(COLOURS) + r")\b"),
    "shape": re.compile(r"\b(" + "|".join(SHAPES) + r")\b"),
    "motion": re.compile(r"\b(" + "|".join(MOTIONS) + r")\b"),
}


def parse_caption(caption: str) -> tuple[str, str, str]:
    """(colour, shape, motion) named by a caption; fails unless each is named exactly once."""
    found = []
    for kind, pattern in _WORDS.items():
        words = pattern.findall(caption)
        assert len(words) == 1, f"{caption!r} should name exactly one {kind}, found {words}"
        found.append(words[0])
    return found[0], found[1], found[2]


def decode(path: str) -> np.ndarray:
    """All frames of a video as ``(frames, height, width, 3)`` uint8 RGB."""
    with av.open(path) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def files_by_name(video_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(video_dir.glob("*.mp4"))}


def decoded_digests(video_dir: Path) -> dict[str, str]:
    """SHA-256 of every video's decoded yuv420p frames, by file name: what must be equal between builds."""
    digests = {}
    for path in sorted(video_dir.glob("*.mp4")):
        with av.open(str(path)) as container:
            planes = [frame.to_ndarray(format="yuv420p") for frame in container.decode(video=0)]
        digests[path.name] = hashlib.sha256(np.stack(planes).tobytes()).hexdigest()
    return digests


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory):
    """(data_dir, DatasetDict) of one build shared by the read-only tests."""
    data_dir = tmp_path_factory.mktemp("toy")
    return data_dir, load_benchmark("toy", data_dir=data_dir, **OPTIONS)


def test_schema_and_columns(toy):
    _, dataset = toy
    assert set(dataset) == {"train", "test", "validation"}
    for split in dataset.values():
        assert split.features == benchmark_features()
        assert split.column_names == ["video_id", "video", "caption", "start", "end"]
        assert set(split["start"]) == {None} and set(split["end"]) == {None}
        for path in set(split["video"]):
            assert os.path.isabs(path) and os.path.isfile(path) and path.endswith(".mp4")


def test_split_sizes(toy):
    _, dataset = toy
    # One caption per test/validation video, two per train video (one row per caption).
    assert dataset["test"].num_rows == len(set(dataset["test"]["video_id"])) == len(COMBINATIONS) == 72
    assert dataset["validation"].num_rows == len(set(dataset["validation"]["video_id"])) == 72
    assert len(set(dataset["train"]["video_id"])) == 72 and dataset["train"].num_rows == 144
    ids = [set(dataset[split]["video_id"]) for split in ("train", "test", "validation")]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2]), "splits must not share videos"


def test_captions_name_colour_shape_and_motion(toy):
    _, dataset = toy
    for split in dataset.values():
        by_video: dict[str, set[tuple[str, str, str]]] = {}
        for row in split:
            by_video.setdefault(row["video_id"], set()).add(parse_caption(row["caption"]))
        # All captions of one video describe the same combination.
        assert all(len(triples) == 1 for triples in by_video.values())


@pytest.mark.parametrize("split", ["test", "validation"])
def test_every_combination_once(toy, split):
    _, dataset = toy
    triples = [parse_caption(caption) for caption in dataset[split]["caption"]]
    assert sorted(triples) == sorted(COMBINATIONS)


def test_train_covers_combinations(toy):
    _, dataset = toy
    assert {parse_caption(caption) for caption in dataset["train"]["caption"]} == set(COMBINATIONS)


def test_videos_decode_with_expected_frames_and_size(toy):
    _, dataset = toy
    for path in sorted(set(dataset["test"]["video"]))[:12] + sorted(set(dataset["train"]["video"]))[:6]:
        with av.open(path) as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.name, stream.width, stream.height) == ("h264", SIZE, SIZE)
        frames = decode(path)
        assert frames.shape == (FRAMES, SIZE, SIZE, 3)


def _shape_pixels(frame: np.ndarray) -> np.ndarray:
    # The background is dark (every channel below ~60) and every shape colour has a channel above ~190.
    return frame.max(axis=-1) > 100


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    assert len(xs) > 20, "the shape should be visible"
    return np.array([xs.mean(), ys.mean()])


def test_pixels_show_colour_shape_and_motion(toy):
    """Decode every test video and check that what the caption says is really in the pixels."""
    _, dataset = toy
    unit = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
    for row in dataset["test"]:
        colour, shape, motion = parse_caption(row["caption"])
        frames = decode(row["video"])

        # Motion: the bright blob's centroid travels at least a quarter of the frame in the stated direction and
        # stays put across it.
        moved = _centroid(_shape_pixels(frames[-1])) - _centroid(_shape_pixels(frames[0]))
        direction = np.array(unit[motion])
        along, across = moved @ direction, moved @ direction[::-1]
        assert along > SIZE / 4, f"{row['caption']!r}: moved {moved}"
        assert abs(across) < 2, f"{row['caption']!r}: moved {moved}"

        middle = frames[FRAMES // 2]
        mask = _shape_pixels(middle)
        # Colour: the shape's mean colour is nearest to the named one.
        mean = middle[mask].mean(axis=0)
        nearest = min(COLOURS, key=lambda name: np.sum((np.array(COLOURS[name]) - mean) ** 2))
        assert nearest == colour, f"{row['caption']!r}: mean colour {mean}"
        # Shape: how much of its bounding box it fills (square ~1, circle ~pi/4, triangle ~1/2).
        ys, xs = np.nonzero(mask)
        fill = mask.sum() / ((np.ptp(xs) + 1) * (np.ptp(ys) + 1))
        expected = {"triangle": (0.4, 0.68), "circle": (0.68, 0.9), "square": (0.9, 1.01)}[shape]
        assert expected[0] < fill < expected[1], f"{row['caption']!r}: fill {fill:.2f}"


@pytest.mark.slow
def test_same_seed_gives_identical_frames_other_seed_differs(toy, tmp_path):
    data_dir, dataset = toy
    again = load_benchmark("toy", data_dir=tmp_path / "again", **OPTIONS)
    for split in dataset:
        # Same rows apart from where the files live.
        assert again[split]["video_id"] == dataset[split]["video_id"]
        assert again[split]["caption"] == dataset[split]["caption"]
    first_dir = Path(dataset["test"]["video"][0]).parent
    second_dir = Path(again["test"]["video"][0]).parent
    assert first_dir != second_dir
    first = decoded_digests(first_dir)
    assert len(first) == 216 and first == decoded_digests(second_dir)
    # The manifest records the same frame digests, computed from the rendered frames.
    manifest = json.loads((first_dir / "manifest.json").read_text())["files"]
    assert {name: entry["frames"] for name, entry in manifest.items()} == first

    other = load_benchmark("toy", data_dir=tmp_path / "other", seed=1, num_videos=72, num_validation_videos=0)
    assert list(other) == ["test"]  # 72 videos: all in test, no train, no validation split
    other_frames = decoded_digests(Path(other["test"]["video"][0]).parent)
    assert set(other_frames) <= set(first)
    assert all(other_frames[name] != first[name] for name in other_frames)


_BUILD_IN_CHILD = """
import sys
from dataset_builders import load_benchmark
load_benchmark("toy", data_dir=sys.argv[1], num_videos=72, num_validation_videos=0, split="test")
"""


@pytest.mark.slow
def test_builds_in_two_processes_decode_to_identical_frames(tmp_path):
    # Lossy x264 gave other frames in another process; the toy data must be the same on every machine and run.
    folders = []
    for name in ("first", "second"):
        subprocess.run(
            [sys.executable, "-c", _BUILD_IN_CHILD, str(tmp_path / name)],
            check=True,
            cwd=Path(__file__).resolve().parents[1],
            env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
            capture_output=True,
        )
        (video_dir,) = {path.parent for path in (tmp_path / name).rglob("toy_*.mp4")}
        folders.append(decoded_digests(video_dir))
    assert len(folders[0]) == 72 and folders[0] == folders[1]


def test_rebuild_reuses_intact_files(toy):
    data_dir, dataset = toy
    paths = sorted(Path(path) for path in set(dataset["test"]["video"]))
    stamps = [path.stat().st_mtime_ns for path in paths]
    again = load_benchmark("toy", data_dir=data_dir, split="test", **OPTIONS)
    assert again["video"] == dataset["test"]["video"]
    assert [path.stat().st_mtime_ns for path in paths] == stamps


def test_damaged_or_missing_videos_are_regenerated(tmp_path):
    options = {"data_dir": tmp_path, "num_videos": 72, "num_validation_videos": 0, "split": "test"}
    test = load_benchmark("toy", **options)
    video_dir = Path(test["video"][0]).parent
    original = files_by_name(video_dir)
    original_frames = decoded_digests(video_dir)
    truncated, garbled, deleted = (Path(path) for path in test["video"][:3])
    truncated.write_bytes(original[truncated.name][: len(original[truncated.name]) // 2])
    garbled.write_bytes(b"\0" * len(original[garbled.name]))
    deleted.unlink()
    # A leftover temporary file from a killed build must not be picked up either.
    (video_dir / f".{truncated.stem}.abc.tmp").write_bytes(b"partial")

    # The Arrow cache of the rows is reused here; the videos must be checked anyway.
    again = load_benchmark("toy", **options)
    assert again["video"] == test["video"]
    assert decoded_digests(video_dir) == original_frames


def test_builder_can_be_used_directly(toy, tmp_path):
    data_dir, dataset = toy
    builder = ToyBenchmark(cache_dir=str(tmp_path / "arrow"), data_dir=str(data_dir), **OPTIONS)
    builder.download_and_prepare()
    test = builder.as_dataset(split="test")
    assert test["video"] == dataset["test"]["video"] and test["caption"] == dataset["test"]["caption"]


def test_load_benchmark_split_selection_and_errors(toy):
    data_dir, dataset = toy
    test = load_benchmark("toy", data_dir=data_dir, split="test", **OPTIONS)
    assert test.num_rows == 72 and test["caption"] == dataset["test"]["caption"]
    assert load_benchmark("toy", data_dir=data_dir, split="train[:10]", **OPTIONS).num_rows == 10

    with pytest.raises(ValueError, match=r"Unknown split 'dev'.*train.*test.*validation"):
        load_benchmark("toy", data_dir=data_dir, split="dev", **OPTIONS)
    with pytest.raises(ValueError, match=r"Unknown benchmark 'howto100m'.*msrvtt.*toy"):
        load_benchmark("howto100m")
    with pytest.raises(TypeError, match="colour_count"):
        load_benchmark("toy", data_dir=data_dir, colour_count=3)
    with pytest.raises(ValueError, match="num_videos"):
        load_benchmark("toy", data_dir=data_dir, num_videos=10)


def test_options_do_not_share_caches(toy):
    data_dir, dataset = toy
    other = load_benchmark("toy", data_dir=data_dir, seed=3, num_videos=72, num_validation_videos=0, split="test")
    assert Path(other["video"][0]).parent != Path(dataset["test"]["video"][0]).parent
    # The first option set's cached rows are untouched by the second one.
    assert load_benchmark("toy", data_dir=data_dir, split="test", **OPTIONS)["video"] == dataset["test"]["video"]


def test_a_failed_manifest_write_leaves_no_temporary_file(tmp_path):
    from dataset_builders.toy import _write_json_atomic

    with pytest.raises(TypeError):
        _write_json_atomic(tmp_path / "manifest.json", {"unserialisable": object()})
    assert list(tmp_path.iterdir()) == []
