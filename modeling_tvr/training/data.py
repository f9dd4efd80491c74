"""The data of a `train.py` run: a benchmark, a folder of the user's own videos (`videofolder`) or any dataset that
`datasets` loads (`--dataset_name`), loaded into the shared schema; the name the outputs give it; and which split is
used for what (training, model selection, the reported metrics), with where each split came from.

Every way the data can be wrong (a missing column, an empty caption, missing videos, a video in two splits, an
unknown option) comes out of `load_splits` as a `DataError`: one line naming the file and the fix, in the command
line's spelling, so that train.py reports it before anything trains.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from datasets import DatasetDict

__all__ = [
    "OWN_VIDEOS",
    "DataError",
    "DataSource",
    "dataset_label",
    "format_split_uses",
    "load_splits",
    "split_uses",
]

OWN_VIDEOS = "videofolder"
"""The benchmark of a folder of one's own videos; its recipe is also the one of `--dataset_name` runs."""

DATASET_OPTIONS = ("test_fraction", "seed", "missing_videos")
"""The options of `load_video_dataset` that `--benchmark_options` may set for a `--dataset_name` run."""


class DataError(ValueError):
    """The data cannot be loaded as asked: one line saying what is wrong and how to fix it."""


@dataclasses.dataclass
class DataSource:
    """What a run's data is: `--benchmark` (with `--data_dir`) or `--dataset_name`, and the options of either."""

    benchmark: str | None = None
    data_dir: str | None = None
    video_dir: str | None = None
    dataset_name: str | None = None
    dataset_config: str | None = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


def dataset_label(source: DataSource) -> str:
    """The name the card, the metrics and the default output folder give the data: the benchmark's name, the video
    folder's name, or the dataset's Hub id (a local file or folder: its name)."""
    if source.dataset_name:
        path = Path(source.dataset_name).expanduser()
        name = path.absolute().name if path.exists() else source.dataset_name
        return f"{name} ({source.dataset_config})" if source.dataset_config else name
    if source.benchmark == OWN_VIDEOS and source.data_dir:
        return Path(source.data_dir).expanduser().absolute().name
    return source.benchmark or "unknown"


def label_slug(label: str) -> str:
    """`label` as one folder name: a Hub id's slash becomes `--` (as the Hub cache spells it), spaces `-`."""
    return re.sub(r"[\s()]+", "-", label.replace("/", "--")).strip("-")


def _load_benchmark(source: DataSource) -> DatasetDict:
    from dataset_builders import load_benchmark

    try:
        return load_benchmark(source.benchmark, data_dir=source.data_dir, video_dir=source.video_dir, **source.options)
    except TypeError as error:  # an option the benchmark does not have: the message names the valid ones
        raise DataError(str(error).replace("option(s)", "--benchmark_options key(s)")) from None


def _load_dataset(source: DataSource) -> DatasetDict:
    from dataset_builders import load_video_dataset

    unknown = sorted(set(source.options) - {*DATASET_OPTIONS, "video_column", "caption_column"})
    if unknown:
        raise DataError(
            f"Unknown --benchmark_options key(s) {unknown} for --dataset_name; valid: {list(DATASET_OPTIONS)}"
        )
    try:
        return load_video_dataset(
            source.dataset_name, source.dataset_config, video_dir=source.video_dir, **source.options
        )
    except ConnectionError as error:
        # Offline, or a Hub id that is not reachable: `datasets` says which in a message of several lines.
        raise DataError(f"--dataset_name {source.dataset_name}: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def load_splits(source: DataSource) -> DatasetDict:
    """The splits of `source` in the shared schema (`dataset_builders.schema`).

    Raises:
        DataError: the data's own errors (dataset_builders' `MissingVideosError`, `MissingColumnError`,
            `MalformedAnnotationError`, `VideoInTwoSplitsError`), unknown options, folders, files or datasets that
            are not there or not reachable, each as one line.
    """
    from dataset_builders.annotated import MissingVideosError

    try:
        return _load_dataset(source) if source.dataset_name else _load_benchmark(source)
    except MissingVideosError as error:  # the fix in the command line's spelling, which train.py accepts too
        raise DataError(error.command_line_message) from None
    except DataError:
        raise
    except (ValueError, FileNotFoundError) as error:  # the builders' refusals name the file and line; one line
        raise DataError(command_line_spelling(_first_line(error))) from None


def command_line_spelling(message: str) -> str:
    """`message` with the Python spelling of the fixes the builders suggest (`pass video_column=...`) in train.py's
    (`pass --video_column ...`)."""
    return re.sub(r"\b(video_column|caption_column|video_dir|data_dir)=\.\.\.", r"--\1 ...", message)


def _counts(rows) -> tuple[int, int]:
    """(captions, distinct videos) of a split: a video is a file, or a clip of one (start, end)."""
    return len(rows), len(set(zip(rows["video"], rows["start"], rows["end"], strict=True)))


def split_uses(data: DatasetDict, eval_split: str, *, train: bool, evaluate: bool) -> dict[str, dict[str, Any]]:
    """`{split: {"used_for", "source", "captions", "videos"}}` of every split of `data`: what the run does with it
    (training; model selection when training validates; the reported metrics) and where it came from (the
    `split_sources` note of a user-made dataset, else the benchmark's own split)."""
    from dataset_builders import split_sources

    sources = split_sources(data)
    uses = {}
    for split, rows in data.items():
        used = []
        if train and split == "train":
            used.append("training")
        if train and split == "validation":
            used.append("model selection (best epoch on t2v R@1)")
        if evaluate and split == eval_split:
            used.append("reported metrics")
        captions, videos = _counts(rows)
        uses[split] = {
            "used_for": ", ".join(used) or "not used",
            "source": sources.get(split, f"the {split} split"),
            "captions": captions,
            "videos": videos,
        }
    return uses


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def format_split_uses(label: str, uses: dict[str, dict[str, Any]], train: bool) -> str:
    """The lines train.py prints before it starts: each split, what it is used for, its size and where it came from,
    and how the final model is chosen."""
    lines = [f"Data: {label}"]
    for split, use in uses.items():
        size = f"{_count(use['captions'], 'caption')}, {_count(use['videos'], 'video')}"
        lines.append(f"  {split} ({size}): {use['used_for']}; source: {use['source']}")
    if train and "validation" not in uses:
        lines.append("  no validation split: the model of the last step is kept")
    return "\n".join(lines)
