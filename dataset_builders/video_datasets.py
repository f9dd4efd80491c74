"""Any video/caption dataset that `datasets` loads, as rows of the shared schema (`dataset_builders.schema`).

The dataset may be a Hub repository, local parquet / csv / json files or a folder of them, or a video folder with a
metadata file. Rows published by `python -m dataset_builders NAME --push-to-hub REPO` load back with
`load_video_dataset(REPO, video_dir=...)`: their `video` column holds paths relative to the folder that held the
videos, which `video_dir` names on this machine.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath
from typing import Any

import datasets

from .columns import CAPTION_COLUMNS, VIDEO_COLUMNS, captions_of, pick_column, segment_of
from .folder_metadata import find_metadata_files
from .load import load_benchmark
from .schema import benchmark_features
from .splits import describe_splits, finish_splits, split_name

__all__ = ["load_video_dataset"]

# Extension of a local data file -> the `datasets` packaged builder that reads it.
FILE_BUILDERS = {".parquet": "parquet", ".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json"}


def _is_video_folder(path: Path) -> bool:
    try:
        find_metadata_files(path)
    except FileNotFoundError:
        return False
    except ValueError:  # a metadata file laid out wrongly: the videofolder builder says what is wrong
        return True
    return True


def _load_raw(name_or_path: str | os.PathLike, config: str | None) -> tuple[datasets.DatasetDict, Path | None, str]:
    """`(splits as datasets loads them, the folder relative paths start from, a label naming the data)`."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        builder = FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise ValueError(f"{path}: expected a {', '.join(FILE_BUILDERS)} file, a folder or a Hub dataset id")
        kwargs = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
        # One file is one split, train; a test split is held out of it.
        raw = datasets.load_dataset(builder, data_files={"train": str(path.absolute())}, **kwargs)
        return raw, path.absolute().parent, str(path.absolute())
    if path.is_dir():
        return datasets.load_dataset(str(path.absolute()), config), path.absolute(), str(path.absolute())
    label = f"{name_or_path} ({config})" if config else str(name_or_path)
    return datasets.load_dataset(str(name_or_path), config), None, label


def _video_path(value: Any, base: Path | None, label: str, where: str, column: str) -> str:
    # A datasets.Video column, read without decoding, holds {"path": ..., "bytes": ...}.
    path = value.get("path") if isinstance(value, dict) else value
    if not isinstance(path, str) or not path.strip():
        raise ValueError(f"{label}, {where}: expected a video path in column {column!r}, got {value!r}")
    if os.path.isabs(path):
        return os.path.normpath(path)
    if base is None:
        raise ValueError(
            f"{label}: column {column!r} holds paths relative to a folder ({path!r}); pass video_dir=... naming the "
            "folder of your copy of the videos"
        )
    return os.path.normpath(base / path)


def _split_rows(
    rows: datasets.Dataset, base: Path | None, label: str, split: str, video_column: str, caption_column: str
) -> list[dict[str, Any]]:
    if isinstance(rows.features[video_column], datasets.Video):
        rows = rows.cast_column(video_column, datasets.Video(decode=False))
    optional = [column for column in ("video_id", "start", "end") if column in rows.column_names]
    schema_rows = []
    for index, record in enumerate(rows.select_columns([video_column, caption_column, *optional])):
        where = f"{split} split, row {index}"
        video = _video_path(record[video_column], base, label, where, video_column)
        raw_path = record[video_column]["path"] if isinstance(record[video_column], dict) else record[video_column]
        video_id = record.get("video_id") or PurePath(raw_path).as_posix()
        start, end = segment_of(record.get("start"), record.get("end"), label, where)
        for caption in captions_of(record[caption_column], label, where, caption_column):
            schema_rows.append(
                {"video_id": str(video_id), "video": video, "caption": caption, "start": start, "end": end}
                | {"source": f"{label}, {where}"}
            )
    return schema_rows


def load_video_dataset(
    name_or_path: str | os.PathLike,
    config: str | None = None,
    video_dir: str | os.PathLike | None = None,
    video_column: str | None = None,
    caption_column: str | None = None,
    split: str | None = None,
    missing_videos: str = "error",
    test_fraction: float = 0.1,
    seed: int = 0,
) -> datasets.DatasetDict | datasets.Dataset:
    """Load videos and captions from anything `datasets` reads, as rows of the shared schema.

    Optional columns `video_id` (default the video path as written), `start` and `end` (seconds of a clip) are kept.
    Where each split came from is in `info.description`: `splits.split_sources(dataset)` reads it.

    Args:
        name_or_path (`str` or `os.PathLike`):
            A Hub dataset id; a local parquet / csv / tsv / json / jsonl file (one split, train); a local folder of
            such files (`datasets`' own layout, e.g. `data/train-*.parquet` as `push_to_hub` writes); or a video
            folder with `metadata.csv` / `metadata.jsonl`, which goes to the `videofolder` builder.
        config (`str`, *optional*):
            The Hub dataset's configuration name, if it has several.
        video_dir (`str` or `os.PathLike`, *optional*):
            The folder relative video paths start from; the local file's or folder's own folder when `None`. Needed
            for a Hub dataset whose paths are relative, as `python -m dataset_builders --push-to-hub` writes.
        video_column (`str`, *optional*):
            The column of video paths; the first of `VIDEO_COLUMNS` present (`video`, `video_path`, `file_name`,
            `path`, `filename`, `clip`) when `None`. A `datasets.Video` column gives its file path.
        caption_column (`str`, *optional*):
            The column of captions; the first of `CAPTION_COLUMNS` present (`caption`, `text`, `sentence`,
            `description`, `captions`) when `None`. A column of lists of captions is expanded to one row per caption.
        split (`str`, *optional*):
            Return only this split (train, validation or test).
        missing_videos (`str`, *optional*, defaults to `"error"`):
            `"error"` (`MissingVideosError` with the count and first names) or `"skip"`.
        test_fraction (`float`, *optional*, defaults to `0.1`):
            Without a test split, the share of the train videos held out as test (at least one video; 0 holds out
            none), chosen by a seeded hash of each video's id, the same on every run.
        seed (`int`, *optional*, defaults to `0`):
            Seed of the held-out choice.

    Returns:
        `datasets.DatasetDict` or `datasets.Dataset`: A `DatasetDict` of all splits, or a `Dataset` when `split` is
        given.

    Raises:
        MissingColumnError: If there is no video or caption column, naming the columns found and the names looked
            for.
        MalformedAnnotationError: For an empty caption or list of captions, or a bad segment, naming split and row.
        VideoInTwoSplitsError: For a video in two splits, naming it and both splits.
        MissingVideosError: If video files are not found (unless `missing_videos="skip"`).
        ValueError: For a `test_fraction` outside [0, 1), an unknown split, or a file `datasets` does not read.
    """
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be at least 0 and below 1, got {test_fraction!r}")
    local = Path(name_or_path).expanduser()
    if local.is_dir() and _is_video_folder(local):
        options = {"video_column": video_column, "caption_column": caption_column, "seed": seed}
        return load_benchmark(
            "videofolder",
            local,
            video_dir,
            split,
            missing_videos=missing_videos,
            test_fraction=test_fraction,
            **options,
        )

    raw, base, label = _load_raw(name_or_path, config)
    base = Path(video_dir).expanduser().absolute() if video_dir else base
    rows, notes = {}, {}
    for raw_split, split_rows in raw.items():
        name = split_name(raw_split) or raw_split
        chosen_video = pick_column(label, split_rows.column_names, video_column, VIDEO_COLUMNS, "video")
        chosen_caption = pick_column(label, split_rows.column_names, caption_column, CAPTION_COLUMNS, "caption")
        rows[name] = _split_rows(split_rows, base, label, raw_split, chosen_video, chosen_caption)
        notes[name] = f"split {raw_split} of {label}"
    rows, notes = finish_splits(rows, notes, missing_videos, label, test_fraction, seed)

    features = benchmark_features()
    info = datasets.DatasetInfo(
        description=describe_splits(f"Videos and captions of {label}.", notes), features=features
    )
    built = datasets.DatasetDict(
        {
            name: datasets.Dataset.from_dict(
                {column: [row[column] for row in split_rows] for column in features},
                features=features,
                info=info.copy(),
                split=datasets.NamedSplit(name),
            )
            for name, split_rows in rows.items()
        }
    )
    if split is None:
        return built
    if split not in built:
        raise ValueError(f"Unknown split {split!r} of {label}. Available splits: {', '.join(built)}")
    return built[split]
