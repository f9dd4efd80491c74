"""Search a folder of videos by text from the command line.

    python -m modeling_tvr.search --model outputs/drl-toy --videos ~/clips "a red circle moves to the left"

The folder is indexed on first use (cached in `<videos>/.drl-index/<model digest>/`, or `--index DIR`); later runs
only encode files that are new or changed and drop deleted ones, so a query over an indexed folder takes the time of
loading the model and the index. Runs under `accelerate launch` too: each process encodes its share of the videos.
"""

import argparse
import os
import sys
from pathlib import Path

from .index import DEFAULT_CANDIDATES, VideoIndex, model_signature

INDEX_FOLDER = ".drl-index"
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".3gp", ".ogv", ".wmv")


def find_videos(folder: str | os.PathLike, extensions: tuple[str, ...] = VIDEO_EXTENSIONS) -> list[str]:
    """Every video file under `folder` (nested folders included, hidden folders skipped), sorted."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"Video folder {folder} does not exist.")
    found = []
    for root, subfolders, files in os.walk(folder):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        found.extend(os.path.join(root, f) for f in sorted(files) if os.path.splitext(f)[1].lower() in extensions)
    return sorted(os.path.abspath(path) for path in found)


def load_model_and_processor(name_or_path: str, device: str | None = None):
    """A DRL model (eval mode) and its processor from a saved folder or a Hub repository."""
    from transformers import AutoModel, AutoProcessor

    model = AutoModel.from_pretrained(name_or_path, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(name_or_path, trust_remote_code=True)
    if device:
        model.to(device)
    return model, processor


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m modeling_tvr.search", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("queries", nargs="+", help="one or more text queries")
    parser.add_argument("--model", required=True, help="a saved DRL folder or Hub repository")
    parser.add_argument("--videos", required=True, help="folder of videos (searched recursively)")
    parser.add_argument("--index", help="where to keep the index (default: <videos>/.drl-index/<model digest>)")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--candidates", type=int, default=DEFAULT_CANDIDATES, help="coarse-stage candidates")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers decoding videos")
    parser.add_argument("--device", help="e.g. cuda; default: CPU, or this process's device under accelerate")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status (1 with a one-line `error: ...` for a user error)."""
    args = parse_args(argv)
    try:
        return run(args)
    except (OSError, ValueError) as error:  # missing folder or model, undecodable query, mismatched index, ...
        print(f"error: {error}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    """Indexes (or refreshes) the folder and prints the ranked videos of each query."""
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.accelerator.is_available())
    model, processor = load_model_and_processor(
        args.model, args.device or (str(state.device) if state.num_processes > 1 else None)
    )
    videos = find_videos(args.videos)
    if not videos:
        print(f"No video files under {args.videos}.", file=sys.stderr)
        return 1
    index_dir = (
        Path(args.index) if args.index else Path(args.videos) / INDEX_FOLDER / model_signature(model)["weights_digest"]
    )
    index = VideoIndex.sync(
        index_dir, model, processor, videos, batch_size=args.batch_size, num_workers=args.num_workers
    )
    if not state.is_main_process:
        return 0
    print(f"{len(index)} video(s) indexed in {index_dir}", file=sys.stderr)
    for path, reason in index.failed.items():
        print(f"not indexed: {path}: {reason}", file=sys.stderr)
    results = index.search(args.queries, top_k=args.top_k, candidates=args.candidates)
    for query, hits in zip(args.queries, results, strict=True):
        print(f"\n{query}")
        for rank, hit in enumerate(hits, start=1):
            print(f"{rank:>4}. {hit.score:+.4f}  {os.path.relpath(hit.video, args.videos)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
