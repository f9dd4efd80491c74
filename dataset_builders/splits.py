"""Splits of user-made datasets: their names, checks, held-out test split and the note of where each came from.

No video may be in two splits, and a test split is held out when none is given.

The note travels in the dataset's `info.description`, one line per split (`describe_splits`), and `split_sources`
reads it back, so that a training script can say "test: held out 10% of videos (3 videos) from DIR/metadata.csv".
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import datasets

from .annotated import drop_missing_videos

__all__ = [
    "SPLIT_ALIASES",
    "VideoInTwoSplitsError",
    "check_disjoint_splits",
    "describe_splits",
    "finish_splits",
    "hold_out_test",
    "split_name",
    "split_sources",
]

# Split names (any case) -> the split; the keywords of `datasets`' folder conventions.
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
    "testing": "test",
    "eval": "test",
    "evaluation": "test",
}

SPLITS_HEADING = "Splits:"


class VideoInTwoSplitsError(ValueError):
    """A video has rows in two splits: testing on a video trained on would inflate the metrics."""


def split_name(value: str) -> str | None:
    """Return the split that `value` names (`SPLIT_ALIASES`, any case), or `None`.

    Args:
        value (`str`):
            A split name as a user wrote it.

    Returns:
        `str` or `None`: `"train"`, `"validation"`, `"test"` or `None`.
    """
    return SPLIT_ALIASES.get(value.strip().lower())


def check_disjoint_splits(rows: dict[str, list[dict[str, Any]]]) -> None:
    """Refuse a video file with rows in two splits.

    Args:
        rows (`dict[str, list[dict[str, Any]]]`):
            `{split: rows}`, each row with a `video` and a `video_id` (and optionally a `source`).

    Raises:
        VideoInTwoSplitsError: Naming the video, both splits and where each row came from (its `source`), and how
            many videos are shared.
    """
    first: dict[str, tuple[str, dict[str, Any]]] = {}
    shared: dict[str, tuple[str, dict[str, Any], str, dict[str, Any]]] = {}
    for split, split_rows in rows.items():
        for row in split_rows:
            seen = first.setdefault(row["video"], (split, row))
            if seen[0] != split and row["video"] not in shared:
                shared[row["video"]] = (*seen, split, row)
    if shared:
        split_a, row_a, split_b, row_b = next(iter(shared.values()))
        raise VideoInTwoSplitsError(
            f"{len(shared)} video(s) are in two splits, first {row_a['video_id']}: in {split_a} "
            f"({row_a.get('source', '?')}) and in {split_b} ({row_b.get('source', '?')}); a video belongs to one "
            "split only, or its test results would be inflated"
        )


def video_rank(video_id: str, seed: int) -> str:
    """Return the held-out order of a video: a seeded SHA-256 of its id.

    The rank is the same on every machine and run (unlike Python's `hash`, which is salted per process).

    Args:
        video_id (`str`):
            The video's id (a path relative to the data folder).
        seed (`int`):
            The seed of the held-out choice.

    Returns:
        `str`: The hex digest; videos are held out in increasing order of it.
    """
    return hashlib.sha256(f"{seed}\0{video_id}".encode()).hexdigest()


def hold_out_test(
    rows: list[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Hold a test split out of `rows`: the `fraction` of the distinct videos (at least one) that rank first.

    Test videos are those first by `video_rank`, with all their rows, clips and captions, so no video is in both
    splits. The same videos and seed always give the same test videos.

    Args:
        rows (`list[dict[str, Any]]`):
            The rows, each with a `video_id`.
        fraction (`float`):
            The share of the videos held out.
        seed (`int`):
            The seed of `video_rank`.

    Returns:
        `tuple[list[dict[str, Any]], list[dict[str, Any]], int]`: `(kept rows, test rows, test videos)`.

    Raises:
        ValueError: If holding out leaves no video to train on.
    """
    videos = sorted({row["video_id"] for row in rows}, key=lambda video_id: video_rank(video_id, seed))
    count = max(1, round(fraction * len(videos)))
    if count >= len(videos):
        raise ValueError(
            f"holding out a test split of {fraction * 100:g}% of {len(videos)} video(s) leaves no video to train on; "
            "add videos or give a test split"
        )
    test = set(videos[:count])
    return [row for row in rows if row["video_id"] not in test], [row for row in rows if row["video_id"] in test], count


def describe_splits(title: str, notes: dict[str, str]) -> str:
    """Write the `info.description` of a dataset: `title`, then one `split: where it came from` line per split.

    Args:
        title (`str`):
            The first line.
        notes (`dict[str, str]`):
            `{split: where it came from}`.

    Returns:
        `str`: The description, which `split_sources` reads back.
    """
    return "\n".join([title, SPLITS_HEADING, *(f"{split}: {note}" for split, note in notes.items())])


def split_sources(dataset: datasets.Dataset | datasets.DatasetDict) -> dict[str, str]:
    """Read where each split came from, as `describe_splits` recorded it in the dataset's `info.description`.

    Args:
        dataset (`datasets.Dataset` or `datasets.DatasetDict`):
            The dataset.

    Returns:
        `dict[str, str]`: `{split: where it came from}`, e.g. `{"train": "/data/mine/metadata.csv, less the held-out
        test videos", "test": "held out 10% of videos (3 of 30 videos) from /data/mine/metadata.csv"}`; `{}` for a
        dataset that recorded none (the benchmarks' fixed splits).
    """
    if isinstance(dataset, datasets.DatasetDict):
        if not dataset:
            return {}
        dataset = next(iter(dataset.values()))
    info = dataset.info
    lines = (info.description or "").splitlines()
    if SPLITS_HEADING not in lines:
        return {}
    notes = (re.fullmatch(r"(\w+): (.*)", line) for line in lines[lines.index(SPLITS_HEADING) + 1 :])
    return {match[1]: match[2] for match in notes if match}


def finish_splits(
    rows: dict[str, list[dict[str, Any]]],
    notes: dict[str, str],
    missing_videos: str,
    label: str,
    test_fraction: float,
    seed: int,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """Check and complete user-made splits, and put them in train / validation / test order.

    This refuses a video in two splits (`check_disjoint_splits`), applies the `missing_videos` policy
    (`drop_missing_videos`), then, when there is no test split and `test_fraction` > 0, holds a test split out of train
    (`hold_out_test`).

    Args:
        rows (`dict[str, list[dict[str, Any]]]`):
            `{split: rows}`.
        notes (`dict[str, str]`):
            `{split: where it came from}`.
        missing_videos (`str`):
            `"error"` or `"skip"`.
        label (`str`):
            Names the data in messages.
        test_fraction (`float`):
            The share of the train videos held out as test when there is no test split.
        seed (`int`):
            The seed of the held-out choice.

    Returns:
        `tuple[dict[str, list[dict[str, Any]]], dict[str, str]]`: `(rows, notes)`, the notes with the held-out split's
        note added.

    Raises:
        VideoInTwoSplitsError: If a video is in two splits.
        MissingVideosError: If video files are missing and `missing_videos` is `"error"`.
        ValueError: If holding out leaves no video to train on.
    """
    check_disjoint_splits(rows)
    # Missing videos go before holding out, so that the held-out videos are ones that exist.
    rows = drop_missing_videos(rows, missing_videos, label)
    notes = {split: note for split, note in notes.items() if split in rows}
    if "test" not in rows and "train" in rows and test_fraction > 0:
        source = notes["train"]
        rows["train"], rows["test"], count = hold_out_test(rows["train"], test_fraction, seed)
        notes["train"] = f"{source}, less the held-out test videos"
        total = len({row["video_id"] for split_rows in (rows["train"], rows["test"]) for row in split_rows})
        notes["test"] = f"held out {test_fraction * 100:g}% of videos ({count} of {total} videos) from {source}"
    order = [split for split in ("train", "validation", "test") if split in rows]
    order += [split for split in rows if split not in order]
    return {split: rows[split] for split in order}, {split: notes[split] for split in order}
