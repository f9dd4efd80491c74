"""Command line: build a benchmark, print its split sizes, and optionally publish it on the Hub.

python -m dataset_builders msrvtt --data-dir data/msrvtt --video-dir data/msrvtt/videos
python -m dataset_builders msrvtt --data-dir data/msrvtt --push-to-hub me/msrvtt --private
python -m dataset_builders toy --option seed=1 --option num_videos=144
python -m dataset_builders videofolder --data-dir my_videos --option test_fraction=0.2
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
    """`["key=value", ...]` -> builder options, each value converted to the type of the option's default."""
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
    hub = parser.add_argument_group("publishing")
    hub.add_argument("--push-to-hub", metavar="REPO", help="upload the rows as parquet with a dataset card")
    hub.add_argument("--private", action="store_true", help="create the repository private")
    hub.add_argument("--revision", metavar="BRANCH", help="branch to push to (created if needed)")
    return parser


def format_split_sizes(name: str, sizes: dict[str, tuple[int, int]]) -> str:
    """One line per split: rows (captions) and distinct videos."""
    width = max(len(split) for split in sizes) if sizes else 0
    lines = [f"{name}: {len(sizes)} split(s)"]
    lines += [f"  {split:<{width}}  {rows:>8} rows  {videos:>7} videos" for split, (rows, videos) in sizes.items()]
    return "\n".join(lines)


def toy_video_dir(data_dir: str | None, video_dir: str | None, options: dict[str, Any]) -> Path:
    """Where the toy benchmark of these options keeps its videos: ``--video-dir`` if given, else
    ``<--data-dir or $XDG_CACHE_HOME/modeling_tvr/toy>/<options key>/videos`` (``~/.cache`` without XDG_CACHE_HOME),
    by the same config method the builder writes them with."""
    return ToyBenchmarkConfig(data_dir=data_dir, video_dir=video_dir, **options).resolved_video_dir()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with `argv` (default `sys.argv[1:]`); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data_dir is None and args.name not in NEEDS_NO_DATA_DIR:
        parser.error(f"--data-dir is required for {args.name} (the folder with its annotation files)")
    if (args.private or args.revision) and not args.push_to_hub:
        parser.error("--private and --revision only apply with --push-to-hub")

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

    if args.push_to_hub:
        # Without --private the Hub's default visibility applies (an organisation may make new repositories private).
        private = True if args.private else None
        push_benchmark(args.name, dataset, args.push_to_hub, private=private, revision=args.revision)
        print(f"pushed {args.name} to dataset repository {args.push_to_hub} (rows and card; videos are not uploaded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
