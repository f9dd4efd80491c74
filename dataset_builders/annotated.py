"""Shared machinery of the real benchmarks: the video lookup, the missing-video policy, and a builder base class.

The base class turns `{split: [rows]}` from a benchmark's annotation parser into `datasets` splits.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa

from modeling_tvr.caption_checks import caption_problem
from modeling_tvr.search.video_files import VIDEO_EXTENSIONS, iter_video_files

from .annotation_files import MalformedAnnotationError
from .schema import benchmark_features

# Re-exported: VIDEO_EXTENSIONS (the builders' default, which a benchmark may extend) and MalformedAnnotationError, so
# that callers catch the error of a malformed annotation file from the module of the builder base class.
__all__ = [
    "MISSING_VIDEO_POLICIES",
    "VIDEO_EXTENSIONS",
    "AnnotatedBenchmark",
    "AnnotatedBenchmarkConfig",
    "MalformedAnnotationError",
    "MissingVideosError",
    "VideoFileLookup",
    "attach_videos",
    "drop_missing_videos",
]

logger = logging.getLogger(__name__)

MISSING_VIDEO_POLICIES = ("error", "skip")
# Rows handed to `datasets` per Arrow table: large enough that writing costs little per row, small enough that the
# table built for each batch stays a few MB.
ROWS_PER_TABLE = 10_000


def check_captions(rows: dict[str, list[dict[str, Any]]], data_dir: Path, benchmark: str) -> None:
    """Refuse a caption nothing can be encoded from (empty, whitespace or control characters only) where it enters.

    The error names the split and video, rather than let training fail on the caption later.

    Args:
        rows (`dict[str, list[dict[str, Any]]]`):
            `{split: rows}` as the annotation parser gives them.
        data_dir (`Path`):
            The annotation folder, named in the error.
        benchmark (`str`):
            The benchmark, named in the error.

    Raises:
        MalformedAnnotationError: If a caption holds no visible character.
    """
    for split, split_rows in rows.items():
        for row in split_rows:
            problem = caption_problem(row["caption"])
            if problem is not None:
                raise MalformedAnnotationError(
                    data_dir,
                    f"{benchmark} {split} split, video {row['video_id']}",
                    f"a caption with at least one word; its caption {problem} ({row['caption']!r})",
                )


class MissingVideosError(FileNotFoundError):
    """Videos named by the annotations are not under the video folder.

    The message adds the fix in Python's spelling, `command_line_message` in the command line's.

    Args:
        summary (`str`):
            Says which videos are missing.
    """

    def __init__(self, summary: str):
        self.summary = summary
        super().__init__(f"{summary}; download them, fix video_dir, or pass missing_videos='skip' to drop their rows.")

    @property
    def command_line_message(self) -> str:
        return f"{self.summary}; download them, fix --video-dir, or pass --missing-videos skip to drop their rows."


class VideoFileLookup:
    """The video files under a folder by name, found by one walk of the tree.

    The walk and its rule are the search command's (`modeling_tvr.search.video_files`: nested folders included, hidden
    files and folders skipped). `find(video_id)` matches the file name exactly first (ids that keep their extension,
    such as DiDeMo's), then the name without extension (the usual case), so each lookup is a dictionary access. When
    two folders hold the same name, the first in the walk's fixed order wins.

    Args:
        root (`str` or `os.PathLike`):
            The video folder.
        extensions (`tuple[str, ...]`, *optional*, defaults to `VIDEO_EXTENSIONS`):
            The file extensions that count as videos.

    Raises:
        FileNotFoundError: If `root` is not a folder.
    """

    def __init__(self, root: str | os.PathLike, extensions: tuple[str, ...] = VIDEO_EXTENSIONS):
        self.root = Path(root).expanduser().absolute()
        if not self.root.is_dir():
            raise FileNotFoundError(f"Video folder {self.root} does not exist; pass video_dir=... (or data_dir).")
        self.by_name: dict[str, Path] = {}
        self.by_stem: dict[str, Path] = {}
        for path in iter_video_files(self.root, extensions):
            self.by_name.setdefault(path.name, path)
            self.by_stem.setdefault(path.stem, path)

    def __len__(self) -> int:
        return len(self.by_name)

    def find(self, video_id: str) -> Path | None:
        """Return the file of `video_id` (with or without extension), or `None`."""
        return self.by_name.get(video_id) or self.by_stem.get(video_id)


def attach_videos(
    rows: dict[str, list[dict[str, Any]]],
    index: VideoFileLookup,
    missing_videos: str,
    benchmark: str,
    find: Callable[[str], Path | None] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Fill each row's `video` with the absolute path of its video file.

    Args:
        rows (`dict[str, list[dict[str, Any]]]`):
            `{split: rows}`, each row with a `video_id`.
        index (`VideoFileLookup`):
            The video files.
        missing_videos (`str`):
            `"error"` or `"skip"`: with `"skip"`, rows of missing videos are dropped with a warning stating the count.
        benchmark (`str`):
            The benchmark, named in messages.
        find (`Callable[[str], Path | None]`, *optional*):
            Finds the file of a video id; `index.find` when `None`.

    Returns:
        `dict[str, list[dict[str, Any]]]`: The rows with `video` filled; splits left without rows are dropped.

    Raises:
        MissingVideosError: If videos are missing and `missing_videos` is `"error"` (how many, the first few).
        ValueError: If `missing_videos` is not a policy of `MISSING_VIDEO_POLICIES`.
    """
    if missing_videos not in MISSING_VIDEO_POLICIES:
        raise ValueError(f"missing_videos must be one of {MISSING_VIDEO_POLICIES}, got {missing_videos!r}")
    find = find or index.find
    # One lookup per distinct video: MSR-VTT has 20 caption rows per video, and a custom `find` may be slower than
    # a dictionary access.
    paths: dict[str, str | None] = {}
    for split_rows in rows.values():
        for row in split_rows:
            video_id = row["video_id"]
            if video_id not in paths:
                path = find(video_id)
                paths[video_id] = None if path is None else str(path)

    unique_missing = [video_id for video_id, path in paths.items() if path is None]
    if unique_missing:
        message = (
            f"{benchmark}: {len(unique_missing)} video(s) named by the annotations are not under {index.root} "
            f"(first: {', '.join(unique_missing[:5])})"
        )
        if missing_videos == "error":
            raise MissingVideosError(message)
        skipped = sum(paths[row["video_id"]] is None for split_rows in rows.values() for row in split_rows)
        logger.warning("%s; skipping their %d caption row(s).", message, skipped)

    resolved = {
        split: [{**row, "video": paths[row["video_id"]]} for row in split_rows if paths[row["video_id"]] is not None]
        for split, split_rows in rows.items()
    }
    return {split: split_rows for split, split_rows in resolved.items() if split_rows}


def drop_missing_videos(
    rows: dict[str, list[dict[str, Any]]], missing_videos: str, label: str
) -> dict[str, list[dict[str, Any]]]:
    """Keep the rows whose `video` (an absolute path) is a file.

    Args:
        rows (`dict[str, list[dict[str, Any]]]`):
            `{split: rows}`, each row with a `video`.
        missing_videos (`str`):
            `"error"` or `"skip"`: with `"skip"`, rows of missing files are dropped with a warning stating the counts.
        label (`str`):
            Names the data in the messages.

    Returns:
        `dict[str, list[dict[str, Any]]]`: The kept rows; splits left without rows are dropped.

    Raises:
        MissingVideosError: If files are missing and `missing_videos` is `"error"` (how many, the first few with the
            `source` of a row naming each).
        ValueError: If `missing_videos` is not a policy of `MISSING_VIDEO_POLICIES`.
    """
    if missing_videos not in MISSING_VIDEO_POLICIES:
        raise ValueError(f"missing_videos must be one of {MISSING_VIDEO_POLICIES}, got {missing_videos!r}")
    exists: dict[str, bool] = {}
    missing: dict[str, dict[str, Any]] = {}  # video -> its first row, in order
    for split_rows in rows.values():
        for row in split_rows:
            if row["video"] not in exists:
                exists[row["video"]] = os.path.isfile(row["video"])
                if not exists[row["video"]]:
                    missing[row["video"]] = row
    if missing:
        first = ", ".join(f"{video} ({row.get('source', row['video_id'])})" for video, row in list(missing.items())[:5])
        message = f"{label}: {len(missing)} video file(s) not found (first: {first})"
        if missing_videos == "error":
            raise MissingVideosError(message)
        skipped = sum(not exists[row["video"]] for split_rows in rows.values() for row in split_rows)
        logger.warning("%s; skipping their %d caption row(s).", message, skipped)
    kept = {split: [row for row in split_rows if exists[row["video"]]] for split, split_rows in rows.items()}
    return {split: split_rows for split, split_rows in kept.items() if split_rows}


@dataclass
class AnnotatedBenchmarkConfig(datasets.BuilderConfig):
    """Options shared by the real benchmarks.

    Args:
        video_dir (`str`, *optional*):
            Folder holding the videos (nested folders allowed); `data_dir` when `None`.
        missing_videos (`str`, *optional*, defaults to `"error"`):
            `"error"` or `"skip"`: what to do with rows whose video is not found.
    """

    video_dir: str | None = None
    missing_videos: str = "error"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.missing_videos not in MISSING_VIDEO_POLICIES:
            raise ValueError(f"missing_videos must be one of {MISSING_VIDEO_POLICIES}, got {self.missing_videos!r}")


class AnnotatedBenchmark(datasets.ArrowBasedBuilder):
    """Base of the real benchmarks: looks the videos of parsed annotations up and writes the splits.

    A subclass implements `read_annotations(data_dir) -> {split: [rows]}` with rows holding `video_id`, `caption`,
    `start`, `end`.

    A benchmark whose video files are not named `<video_id>.<extension>` overrides `find_video`, and one whose videos
    come in unusual formats extends `VIDEO_EXTENSIONS`. Videos are found at any depth under `video_dir`, except in
    hidden files and folders (names starting with "."), as the search command finds them.
    """

    BUILDER_CONFIG_CLASS = AnnotatedBenchmarkConfig
    BUILDER_CONFIGS: list[AnnotatedBenchmarkConfig] = []
    config: AnnotatedBenchmarkConfig
    DESCRIPTION = ""
    VIDEO_EXTENSIONS: tuple[str, ...] = VIDEO_EXTENSIONS

    def read_annotations(self, data_dir: Path) -> dict[str, list[dict[str, Any]]]:
        """Parse the benchmark's files into `{split: [{"video_id", "caption", "start", "end"}, ...]}`."""
        raise NotImplementedError(f"{type(self).__name__} must implement read_annotations")

    def find_video(self, index: VideoFileLookup, video_id: str) -> Path | None:
        """Return the video file of `video_id` in `index`, or `None`.

        By default this is the file named `video_id` (with or without extension).
        """
        return index.find(video_id)

    def download_and_prepare(self, *args: Any, **kwargs: Any) -> None:
        """Build the splits, always reading the annotations and looking the videos up again.

        This takes seconds even for MSR-VTT's 200k captions, and the rows never go stale when files or videos change
        under the same folders.
        """
        kwargs.setdefault("download_mode", datasets.DownloadMode.FORCE_REDOWNLOAD)
        # The split sizes recorded by the previous build are not expectations: the files may have changed since.
        kwargs.setdefault("verification_mode", datasets.VerificationMode.NO_CHECKS)
        super().download_and_prepare(*args, **kwargs)

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(description=self.DESCRIPTION, features=benchmark_features())

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        if not self.config.data_dir:
            raise ValueError(f"{self.name}: pass data_dir=... (the folder with the annotation files).")
        data_dir = Path(self.config.data_dir).expanduser().absolute()
        if not data_dir.is_dir():
            raise FileNotFoundError(f"{self.name}: annotation folder {data_dir} does not exist.")
        rows = self.read_annotations(data_dir)
        check_captions(rows, data_dir, self.name)
        index = VideoFileLookup(self.config.video_dir or data_dir, self.VIDEO_EXTENSIONS)
        find = functools.partial(self.find_video, index)
        rows = attach_videos(rows, index, self.config.missing_videos, self.name, find=find)
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"rows": split_rows}) for split, split_rows in rows.items()
        ]

    def _generate_tables(self, rows: list[dict[str, Any]]) -> Iterator[tuple[int, pa.Table]]:
        # Whole tables rather than one example at a time: datasets' per-example encoding would dominate the build
        # time, while a table of plain strings and floats needs no encoding (bench/dataset_build.py times the build).
        schema = self.info.features.arrow_schema
        for batch, start in enumerate(range(0, len(rows), ROWS_PER_TABLE)):
            chunk = rows[start : start + ROWS_PER_TABLE]
            columns = {column: [row.get(column) for row in chunk] for column in schema.names}
            yield batch, pa.Table.from_pydict(columns, schema=schema)
