"""`videofolder`: your own videos and captions, laid out as `datasets`' folder builders expect.

A folder (`data_dir`) holds the videos and a `metadata.csv` (with a header) or `metadata.jsonl` whose `file_name`
column names each video relative to the metadata file, and whose `caption` (or `text`) column gives a caption:

```text
my_videos/
  metadata.csv        file_name,caption
  cat.mp4             cat.mp4,a cat jumps on a table
  clips/dog.mp4       clips/dog.mp4,a dog runs on the beach
                      clips/dog.mp4,a brown dog plays in the waves
```

Several rows of one video are several captions of it (one `video_id`). Optional columns: `split` (train, validation,
test), and `start` / `end` in seconds for a clip cut from a longer video. Instead of a `split` column, `train/`,
`validation/` and `test/` subfolders may each hold their own metadata file and videos.

Without a test split, a test split is held out of train by video (`splits.hold_out_test`: `test_fraction` of the
videos, at least one, chosen by a seeded hash of each video's path, the same on every run). Where each split came from
is recorded in the dataset's `info.description`; `splits.split_sources` reads it back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import datasets

from .annotated import AnnotatedBenchmark, AnnotatedBenchmarkConfig
from .annotation_files import MalformedAnnotationError, first_of_each
from .folder_metadata import MetadataRow, find_metadata_files, metadata_digest, read_metadata
from .splits import describe_splits, finish_splits

__all__ = ["VideoFolderBenchmark", "VideoFolderConfig", "read_video_folder"]


def _video_id(video: Path, root: Path) -> str:
    # The path relative to the folder, as the metadata names it: stable across machines, so the held-out split is
    # too. A video outside the folder keeps its absolute path.
    try:
        return PurePath(video.relative_to(root)).as_posix()
    except ValueError:
        return video.as_posix()


def _schema_row(row: MetadataRow, split: str, base: Path, root: Path) -> dict[str, Any]:
    video = Path(os.path.normpath(base / row.file_name))
    return {
        "video_id": _video_id(video, root),
        "video": str(video),
        "caption": row.caption,
        "start": row.start,
        "end": row.end,
        "source": row.source,  # for error messages; not a column of the built dataset
    }


def read_video_folder(
    data_dir: str | os.PathLike,
    video_dir: str | os.PathLike | None = None,
    video_column: str | None = None,
    caption_column: str | None = None,
    missing_videos: str = "error",
    test_fraction: float = 0.1,
    seed: int = 0,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """Read the rows of a video folder (see the module docstring), split by split.

    Rows are in the shared schema (`video` an absolute path, `video_id` the path relative to `video_dir` or
    `data_dir`), plus `source` (metadata file and line). Repeated rows (same video, caption, segment and split) are
    dropped with a warning.

    Args:
        data_dir (`str` or `os.PathLike`):
            The folder of the metadata file(s).
        video_dir (`str` or `os.PathLike`, *optional*):
            The folder the file names are relative to; each metadata file's own folder when `None`.
        video_column (`str`, *optional*):
            The column of video file names; the first of `columns.VIDEO_COLUMNS` present when `None`.
        caption_column (`str`, *optional*):
            The column of captions; the first of `columns.CAPTION_COLUMNS` present when `None`.
        missing_videos (`str`, *optional*, defaults to `"error"`):
            `"error"` or `"skip"`.
        test_fraction (`float`, *optional*, defaults to `0.1`):
            Share of the videos held out as the test split when the folder gives none.
        seed (`int`, *optional*, defaults to `0`):
            Seed of the held-out choice.

    Returns:
        `tuple[dict[str, list[dict[str, Any]]], dict[str, str]]`: `({split: rows}, {split: where it came from})`.

    Raises:
        MissingColumnError: If a metadata file lacks the video or caption column.
        MalformedAnnotationError: Naming the file and line of a malformed row.
        VideoInTwoSplitsError: If a video is in two splits.
        MissingVideosError: If video files are missing (unless `missing_videos="skip"`).
    """
    data_dir = Path(data_dir).expanduser().absolute()
    root = Path(video_dir).expanduser().absolute() if video_dir else data_dir
    rows: dict[str, list[dict[str, Any]]] = {}
    notes: dict[str, str] = {}
    for folder_split, path in find_metadata_files(data_dir).items():
        base = root if video_dir else path.parent
        read = read_metadata(path, video_column, caption_column)
        keyed = ((f"line {row.line}", (row.file_name, row.caption, row.start, row.end, row.split), row) for row in read)
        for row in first_of_each(path, keyed, "repeated row(s)"):
            if folder_split is not None and row.split not in (None, folder_split):
                where = f"line {row.line}"
                raise MalformedAnnotationError(path, where, f"split {folder_split} (its folder's), got {row.split}")
            split = folder_split or row.split or "train"
            rows.setdefault(split, []).append(_schema_row(row, split, base, root))
            if split not in notes:
                notes[split] = str(path) if folder_split or row.split is None else f"rows with split {split} in {path}"
    return finish_splits(rows, notes, missing_videos, f"videofolder {data_dir}", test_fraction, seed)


@dataclass
class VideoFolderConfig(AnnotatedBenchmarkConfig):
    """Options of a video folder.

    Args:
        video_dir (`str`, *optional*):
            Folder the file names are relative to; each metadata file's own folder when `None`.
        missing_videos (`str`, *optional*, defaults to `"error"`):
            `"error"` or `"skip"`.
        test_fraction (`float`, *optional*, defaults to `0.1`):
            Share of the videos held out as the test split when the folder gives none (at least one video; 0 holds
            out nothing).
        seed (`int`, *optional*, defaults to `0`):
            Seed of the held-out choice.
        video_column (`str`, *optional*):
            Column of the video file names; the first of `columns.VIDEO_COLUMNS` present when `None`.
        caption_column (`str`, *optional*):
            Column of the captions; the first of `columns.CAPTION_COLUMNS` present when `None`.
    """

    test_fraction: float = 0.1
    seed: int = 0
    video_column: str | None = None
    caption_column: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.test_fraction < 1:
            raise ValueError(f"test_fraction must be at least 0 and below 1, got {self.test_fraction!r}")

    def create_config_id(self, config_kwargs: dict, custom_features: datasets.Features | None = None) -> str:
        """Return the cache key of `datasets`, with the digest of the folder's metadata files added.

        A folder whose metadata changed gets a cache of its own rather than the rows of the old file.
        """
        data_dir = config_kwargs.get("data_dir")
        digest = metadata_digest(Path(data_dir).expanduser().absolute()) if data_dir else ""
        return super().create_config_id({**config_kwargs, "metadata_sha256": digest}, custom_features)


class VideoFolderBenchmark(AnnotatedBenchmark):
    """Your own videos and captions: a folder with a `metadata.csv` / `metadata.jsonl` (see the module docstring).

    Built again on every load, as the other benchmarks are, so rows never go stale when videos come or go.
    """

    BUILDER_CONFIG_CLASS = VideoFolderConfig
    config: VideoFolderConfig
    DESCRIPTION = "Videos and captions of a folder with a metadata.csv or metadata.jsonl."

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        if not self.config.data_dir:
            raise ValueError(f"{self.name}: pass data_dir=... (the folder with metadata.csv or metadata.jsonl).")
        data_dir = Path(self.config.data_dir).expanduser().absolute()
        if not data_dir.is_dir():
            raise FileNotFoundError(f"{self.name}: folder {data_dir} does not exist.")
        rows, notes = read_video_folder(
            data_dir,
            self.config.video_dir,
            self.config.video_column,
            self.config.caption_column,
            self.config.missing_videos,
            self.config.test_fraction,
            self.config.seed,
        )
        # Written into the cache's dataset_info.json with the rows, and carried by every split's Dataset.info.
        self.info.description = describe_splits(f"Videos and captions of {data_dir} (videofolder).", notes)
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"rows": split_rows}) for split, split_rows in rows.items()
        ]
