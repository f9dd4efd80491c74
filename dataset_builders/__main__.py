"""Command line: build a benchmark, print its split sizes, and optionally publish it on the Hub.

```bash
python -m dataset_builders msrvtt --data-dir data/msrvtt --video-dir data/msrvtt/videos
python -m dataset_builders msrvtt --data-dir data/msrvtt --push-to-hub me/msrvtt --private
python -m dataset_builders toy --option seed=1 --option num_videos=144
python -m dataset_builders videofolder --data-dir my_videos --option test_fraction=0.2
python -m dataset_builders msrvtt --data-dir data/msrvtt --cache-frames frames --processor my_model --num-workers 8
```
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .annotated import MissingVideosError
from .load import BENCHMARKS, available_benchmarks, load_benchmark
from .publish import push_benchmark, split_sizes
from .splits import split_sources
from .toy import ToyBenchmarkConfig

NEEDS_NO_DATA_DIR = {"toy"}  # generated on first use under a cache folder


def _coerce(name: str, key: str, value: str) -> Any:
    # Values arrive as text; the type of the option's default says what the config expects (seed=1 is an int,
    # train_split=9k a string), so no quoting rules are needed on the command line.
    fields = {field.name: field for field in dataclasses.fields(BENCHMARKS[name].BUILDER_CONFIG_CLASS)}
    default = fields[key].default if key in fields else None
    if isinstance(default, bool):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"option {key} expects true or false, got {value!r}")
        return value.lower() in ("true", "1", "yes")
    for kind in (int, float):
        if isinstance(default, kind):
            try:
                return kind(value)
            except ValueError:
                raise ValueError(f"option {key} expects {kind.__name__}, got {value!r}") from None
    return value


def parse_options(name: str, pairs: Sequence[str]) -> dict[str, Any]:
    """Parse `--option` pairs into builder options, each value converted to the type of the option's default.

    Args:
        name (`str`):
            The benchmark, whose config's defaults give the types.
        pairs (`Sequence[str]`):
            `["key=value", ...]`.

    Returns:
        `dict[str, Any]`: The options.

    Raises:
        ValueError: If a pair is not `key=value`, or a value does not convert to its option's type.
    """
    options = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key.strip():
            raise ValueError(f"--option expects key=value, got {pair!r}")
        options[key.strip()] = _coerce(name, key.strip(), value)
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dataset_builders",
        description="Build a text-video retrieval benchmark from its annotation files and videos, print its split "
        "sizes, and optionally publish the rows (not the videos) on the Hugging Face Hub.",
    )
    parser.add_argument("name", choices=available_benchmarks(), help="benchmark to build")
    parser.add_argument("--data-dir", help="folder of the annotation files (toy: where to generate it)")
    parser.add_argument("--video-dir", help="folder of the videos, at any depth (default: --data-dir)")
    parser.add_argument(
        "--missing-videos",
        choices=("error", "skip"),
        help="annotated videos absent from the video folder: fail (default) or drop their rows with a warning",
    )
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="builder option, e.g. train_split=7k"
    )
    cache = parser.add_argument_group("frame cache (decode every clip once, ahead of training)")
    cache.add_argument(
        "--cache-frames",
        metavar="DIR",
        help="store the sampled, resized and cropped uint8 frames of every row's clip in DIR (train.py "
        "--frame_cache DIR reads them); clips already there for their file as it is now are kept. Undecodable clips "
        "follow --missing-videos: listed and exit status 1 (default), or skipped with a warning",
    )
    cache.add_argument(
        "--processor",
        metavar="MODEL_DIR",
        help="with --cache-frames: the saved model or processor folder (or Hub id) whose video processor settings "
        "make the frames; default: the paper's settings (12 frames at 1 fps, 224 px bicubic resize and centre crop)",
    )
    cache.add_argument(
        "--max-frames", type=int, metavar="N", help="with --cache-frames: frames per clip, overriding the processor's"
    )
    cache.add_argument(
        "--num-workers", type=int, default=2, metavar="N", help="with --cache-frames: decoding processes (default 2)"
    )
    hub = parser.add_argument_group("publishing")
    hub.add_argument("--push-to-hub", metavar="REPO", help="upload the rows as parquet with a dataset card")
    hub.add_argument("--private", action="store_true", help="create the repository private")
    hub.add_argument("--revision", metavar="BRANCH", help="branch to push to (created if needed)")
    return parser


def format_split_sizes(name: str, sizes: dict[str, tuple[int, int]]) -> str:
    """Format the split sizes, one line per split: rows (captions) and distinct videos.

    Args:
        name (`str`):
            The benchmark, named on the first line.
        sizes (`dict[str, tuple[int, int]]`):
            `{split: (rows, distinct videos)}`, as `publish.split_sizes` gives it.

    Returns:
        `str`: The lines.
    """
    width = max(len(split) for split in sizes) if sizes else 0
    lines = [f"{name}: {len(sizes)} split(s)"]
    lines += [f"  {split:<{width}}  {rows:>8} rows  {videos:>7} videos" for split, (rows, videos) in sizes.items()]
    return "\n".join(lines)


def toy_video_dir(data_dir: str | None, video_dir: str | None, options: dict[str, Any]) -> Path:
    """Return where the toy benchmark of these options keeps its videos.

    That is `--video-dir` if given, else `<--data-dir or $XDG_CACHE_HOME/modeling_tvr/toy>/<options key>/videos`
    (`~/.cache` without XDG_CACHE_HOME), by the same config method the builder writes them with.

    Args:
        data_dir (`str`, *optional*):
            `--data-dir`.
        video_dir (`str`, *optional*):
            `--video-dir`.
        options (`dict[str, Any]`):
            The builder options.

    Returns:
        `Path`: The video folder.
    """
    return ToyBenchmarkConfig(data_dir=data_dir, video_dir=video_dir, **options).resolved_video_dir()


def frame_video_processor(processor: str | None, max_frames: int | None):
    """Return the video processor whose settings make the cached frames.

    Args:
        processor (`str`, *optional*):
            A saved model or processor folder, or a Hub id, whose video processor to use; the defaults when `None`.
        max_frames (`int`, *optional*):
            Overrides the video processor's frame count.

    Returns:
        `DRLVideoProcessor`: The video processor.
    """
    from modeling_tvr import DRLVideoProcessor

    video_processor = DRLVideoProcessor.from_pretrained(processor) if processor else DRLVideoProcessor()
    if max_frames is not None:
        video_processor = DRLVideoProcessor(**{**video_processor.to_dict(), "max_frames": max_frames})
    return video_processor


def benchmark_clips(dataset) -> list[tuple[str, float | None, float | None]]:
    """Return each distinct clip of every split's rows, in row order.

    Args:
        dataset (`datasets.DatasetDict` or `datasets.Dataset`):
            The benchmark's rows.

    Returns:
        `list[tuple[str, float | None, float | None]]`: The clips, as `(video path, start, end)`.
    """
    splits = dataset.values() if hasattr(dataset, "values") else [dataset]
    clips = {}
    for split in splits:
        for path, start, end in zip(split["video"], split["start"], split["end"], strict=True):
            clips[(path, start, end)] = None
    return list(clips)


def cache_frames(dataset, args: argparse.Namespace) -> int:
    """Fill the frame cache `args.cache_frames` with the rows' clips.

    Args:
        dataset (`datasets.DatasetDict` or `datasets.Dataset`):
            The benchmark's rows.
        args (`argparse.Namespace`):
            The command line.

    Returns:
        `int`: The exit status: 1 when some clips failed and failures are errors (`--missing-videos error`), else 0.
    """
    from modeling_tvr.frame_cache import FrameCache

    cache = FrameCache(args.cache_frames, frame_video_processor(args.processor, args.max_frames))
    report = cache.fill(benchmark_clips(dataset), num_workers=args.num_workers)
    print(f"Frame cache {cache.path}: {report}")
    if report.failed:
        listing = "\n".join(
            f"  {path} [{start}, {end}]: {reason}" for (path, start, end), reason in report.failed.items()
        )
        if args.missing_videos != "skip":
            print(f"error: {len(report.failed)} clip(s) could not be decoded:\n{listing}", file=sys.stderr)
            return 1
        print(f"warning: skipped {len(report.failed)} clip(s) that could not be decoded:\n{listing}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv (`Sequence[str]`, *optional*):
            The arguments; `sys.argv[1:]` when `None`.

    Returns:
        `int`: The exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data_dir is None and args.name not in NEEDS_NO_DATA_DIR:
        parser.error(f"--data-dir is required for {args.name} (the folder with its annotation files)")
    if (args.private or args.revision) and not args.push_to_hub:
        parser.error("--private and --revision only apply with --push-to-hub")
    if (args.processor or args.max_frames is not None) and not args.cache_frames:
        parser.error("--processor and --max-frames only apply with --cache-frames")

    try:
        options = parse_options(args.name, args.option)
        if args.missing_videos is not None:
            options["missing_videos"] = args.missing_videos
        dataset = load_benchmark(args.name, args.data_dir, args.video_dir, **options)
    except MissingVideosError as error:
        print(f"error: {error.command_line_message}", file=sys.stderr)
        return 1
    except (OSError, ValueError, TypeError) as error:  # missing folders or files, malformed files, bad options
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(format_split_sizes(args.name, split_sizes(dataset)))
    for split, note in split_sources(dataset).items():  # where user-made splits came from (videofolder)
        print(f"{split}: {note}")
    if args.name == "toy":  # generated under a cache folder the user did not name: say where, to watch or delete them
        print(f"Toy videos: {toy_video_dir(args.data_dir, args.video_dir, options)}")

    if args.cache_frames:
        status = cache_frames(dataset, args)
        if status:
            return status

    if args.push_to_hub:
        # Without --private the Hub's default visibility applies (an organisation may make new repositories private).
        private = True if args.private else None
        push_benchmark(args.name, dataset, args.push_to_hub, private=private, revision=args.revision)
        print(f"pushed {args.name} to dataset repository {args.push_to_hub} (rows and card; videos are not uploaded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
