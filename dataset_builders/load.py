"""`load_benchmark`: one entry point for every text-video retrieval benchmark of this package."""

from __future__ import annotations

import dataclasses
import os
import re

import datasets

from .activitynet import ActivityNetBenchmark
from .didemo import DiDeMoBenchmark
from .lsmdc import LSMDCBenchmark
from .msrvtt import MSRVTTBenchmark
from .msvd import MSVDBenchmark
from .toy import ToyBenchmark
from .vatex import VATEXBenchmark
from .videofolder import VideoFolderBenchmark

__all__ = ["BENCHMARKS", "available_benchmarks", "load_benchmark"]

# Benchmark name -> builder class.
#
# A builder registered here is constructed with `data_dir`, `video_dir` and the caller's options as config keyword
# arguments. It may define a classmethod `default_cache_dir(config) -> str` choosing where its Arrow cache goes;
# otherwise the `datasets` default cache is used.
BENCHMARKS: dict[str, type[datasets.DatasetBuilder]] = {
    "msrvtt": MSRVTTBenchmark,
    "msvd": MSVDBenchmark,
    "vatex": VATEXBenchmark,
    "lsmdc": LSMDCBenchmark,
    "activitynet": ActivityNetBenchmark,
    "didemo": DiDeMoBenchmark,
    "toy": ToyBenchmark,
    "videofolder": VideoFolderBenchmark,
}


def available_benchmarks() -> list[str]:
    """Return the names `load_benchmark` accepts, sorted."""
    return sorted(BENCHMARKS)


def _split_names(split: str) -> list[str]:
    # datasets accepts split expressions such as "train[:10%]+test"; check only the names inside them.
    return [re.sub(r"\[.*\]$", "", part.strip()) for part in split.split("+")]


def load_benchmark(
    name: str,
    data_dir: str | os.PathLike | None = None,
    video_dir: str | os.PathLike | None = None,
    split: str | None = None,
    **options,
) -> datasets.DatasetDict | datasets.Dataset:
    """Build (or reuse) a benchmark and return its rows in the shared schema (see `dataset_builders.schema`).

    Args:
        name (`str`):
            Benchmark name, one of `available_benchmarks` (`msrvtt`, `msvd`, `vatex`, `lsmdc`, `activitynet`,
            `didemo`, `toy`, and `videofolder` for your own videos: see `dataset_builders.videofolder`).
        data_dir (`str` or `os.PathLike`, *optional*):
            Folder of the benchmark's data (`"videofolder"`: the folder of `metadata.csv`). For `"toy"`: the root under
            which it is generated (`<data_dir>/<options key>/`), default `$XDG_CACHE_HOME/modeling_tvr/toy`.
        video_dir (`str` or `os.PathLike`, *optional*):
            Folder of the video files, when they are kept apart from `data_dir`.
        split (`str`, *optional*):
            Return only this split (a `datasets` split expression such as `"test"` or `"train[:10]"`).
        **options:
            Builder config options, e.g. `seed=1, num_videos=144` for `"toy"`, `test_fraction=0.2` for
            `"videofolder"`.

    Returns:
        `datasets.DatasetDict` or `datasets.Dataset`: A `DatasetDict` of all splits, or a `Dataset` when `split` is
        given.

    Raises:
        ValueError: For an unknown benchmark name, an unknown split, or invalid option values.
        TypeError: For an option the benchmark's config does not have.
    """
    key = str(name).strip().lower()
    if key not in BENCHMARKS:
        raise ValueError(f"Unknown benchmark {name!r}. Available benchmarks: {', '.join(available_benchmarks())}")
    builder_cls = BENCHMARKS[key]

    config_cls = builder_cls.BUILDER_CONFIG_CLASS
    valid = {field.name for field in dataclasses.fields(config_cls)}
    unknown = sorted(set(options) - valid)
    if unknown:
        choices = sorted(valid - {"name", "version", "data_dir", "data_files", "description", "video_dir"})
        raise TypeError(f"Unknown option(s) {unknown} for benchmark {key!r}; valid options: {choices}")

    config_kwargs = dict(options)
    if data_dir is not None:
        config_kwargs["data_dir"] = os.fspath(data_dir)
    if video_dir is not None:
        config_kwargs["video_dir"] = os.fspath(video_dir)
    # Building the config up front validates the options and tells where this option set's Arrow cache belongs,
    # so that two option sets never share (and overwrite) one cache.
    config = config_cls(**config_kwargs)
    cache_dir = builder_cls.default_cache_dir(config) if hasattr(builder_cls, "default_cache_dir") else None

    builder = builder_cls(cache_dir=cache_dir, **config_kwargs)
    builder.download_and_prepare()
    if split is None:
        return builder.as_dataset()

    available = list(builder.info.splits or {})
    missing = [part for part in _split_names(split) if part not in available]
    if missing:
        raise ValueError(f"Unknown split {split!r} for benchmark {key!r}. Available splits: {', '.join(available)}")
    return builder.as_dataset(split=split)
