"""Shared machinery of the real benchmarks: the video lookup, missing-video policy, malformed-file errors, and a
builder base class that turns `{split: [rows]}` from a benchmark's annotation parser into `datasets` splits."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from .schema import benchmark_features

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".3gp", ".ogv", ".wmv")
MISSING_VIDEO_POLICIES = ("error", "skip")


class MalformedAnnotationError(ValueError):
    """An annotation file does not have the expected format: names the file, the line or key, and what was expected."""

    def __init__(self, path: str | os.PathLike, where: str, expected: str):
        self.path, self.where, self.expected = os.fspath(path), where, expected
        super().__init__(f"{self.path}, {where}: expected {expected}")


class MissingVideosError(FileNotFoundError):
    """Videos named by the annotations are not under the video folder."""


class VideoIndex:
    """
    Every video file under a folder (nested folders included), found by one walk of the tree.

    `find(video_id)` matches the file name exactly first (ids that keep their extension, such as DiDeMo's), then
    the name without extension (the usual case), so each lookup is a dictionary access.
    """

    def __init__(self, root: str | os.PathLike, extensions: tuple[str, ...] = VIDEO_EXTENSIONS):
        self.root = Path(root).expanduser().absolute()
        if not self.root.is_dir():
            raise FileNotFoundError(f"Video folder {self.root} does not exist; pass video_dir=... (or data_dir).")
        self.by_name: dict[str, Path] = {}
        self.by_stem: dict[str, Path] = {}
        for folder, subfolders, files in os.walk(self.root):
            subfolders.sort()  # deterministic choice when two folders hold the same name
            for file_name in sorted(files):
                stem, extension = os.path.splitext(file_name)
                if extension.lower() not in extensions:
                    continue
                path = Path(folder) / file_name
                self.by_name.setdefault(file_name, path)
                self.by_stem.setdefault(stem, path)

    def __len__(self) -> int:
        return len(self.by_name)

    def find(self, video_id: str) -> Path | None:
        """The file of `video_id` (with or without extension), or None."""
        return self.by_name.get(video_id) or self.by_stem.get(video_id)


def attach_videos(
    rows: dict[str, list[dict[str, Any]]], index: VideoIndex, missing_videos: str, benchmark: str
) -> dict[str, list[dict[str, Any]]]:
    """
    Fills each row's `video` with the absolute path of its `video_id`. Missing videos raise `MissingVideosError`
    (how many, the first few) or, with `missing_videos="skip"`, drop their rows with a warning stating the count.
    """
    if missing_videos not in MISSING_VIDEO_POLICIES:
        raise ValueError(f"missing_videos must be one of {MISSING_VIDEO_POLICIES}, got {missing_videos!r}")
    missing: list[str] = []
    resolved: dict[str, list[dict[str, Any]]] = {}
    for split, split_rows in rows.items():
        kept = []
        for row in split_rows:
            path = index.find(row["video_id"])
            if path is None:
                missing.append(row["video_id"])
                continue
            kept.append({**row, "video": str(path)})
        resolved[split] = kept
    unique_missing = list(dict.fromkeys(missing))
    if unique_missing:
        message = (
            f"{benchmark}: {len(unique_missing)} video(s) named by the annotations are not under {index.root} "
            f"(first: {', '.join(unique_missing[:5])})"
        )
        if missing_videos == "error":
            raise MissingVideosError(message + "; download them, fix video_dir, or pass missing_videos='skip'.")
        logger.warning("%s; skipping their %d caption row(s).", message, len(missing))
    return {split: split_rows for split, split_rows in resolved.items() if split_rows}


@dataclass
class AnnotatedBenchmarkConfig(datasets.BuilderConfig):
    """
    Options shared by the real benchmarks.

    Args:
        video_dir: folder holding the videos (nested folders allowed); default `data_dir`.
        missing_videos: "error" (default) or "skip".
    """

    video_dir: str | None = None
    missing_videos: str = "error"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.missing_videos not in MISSING_VIDEO_POLICIES:
            raise ValueError(f"missing_videos must be one of {MISSING_VIDEO_POLICIES}, got {self.missing_videos!r}")


class AnnotatedBenchmark(datasets.GeneratorBasedBuilder):
    """
    Base of the real benchmarks. A subclass implements `read_annotations(data_dir) -> {split: [rows]}` with rows
    holding `video_id`, `caption`, `start`, `end`; this class looks the videos up and writes the splits.
    """

    BUILDER_CONFIG_CLASS = AnnotatedBenchmarkConfig
    BUILDER_CONFIGS: list[AnnotatedBenchmarkConfig] = []
    config: AnnotatedBenchmarkConfig
    DESCRIPTION = ""

    def read_annotations(self, data_dir: Path) -> dict[str, list[dict[str, Any]]]:
        """`{split: [{"video_id", "caption", "start", "end"}, ...]}` parsed from the benchmark's files."""
        raise NotImplementedError(f"{type(self).__name__} must implement read_annotations")

    def download_and_prepare(self, *args: Any, **kwargs: Any) -> None:
        """Always re-reads the annotations and looks the videos up again (seconds even for MSR-VTT's 200k
        captions), so the rows never go stale when files or videos change under the same folders."""
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
        index = VideoIndex(self.config.video_dir or data_dir)
        rows = attach_videos(rows, index, self.config.missing_videos, self.name)
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"rows": split_rows}) for split, split_rows in rows.items()
        ]

    def _generate_examples(self, rows: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
        for i, row in enumerate(rows):
            yield i, {key: row.get(key) for key in ("video_id", "video", "caption", "start", "end")}


def require_file(data_dir: Path, name: str, benchmark: str) -> Path:
    """`data_dir / name`, or a FileNotFoundError saying which file of which benchmark is missing."""
    path = data_dir / name
    if not path.is_file():
        raise FileNotFoundError(f"{benchmark}: {path} not found; it is one of the benchmark's annotation files.")
    return path
