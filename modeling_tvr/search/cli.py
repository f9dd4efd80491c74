"""Search a folder of videos by text from the command line.

    python -m modeling_tvr.search --model outputs/drl-toy --videos ~/clips "a red circle moves to the left"

The folder is indexed on first use (cached in `<videos>/.drl-index/<model digest>/`, or `--index DIR`); later runs
only encode files that are new or changed and drop deleted ones, so a query over an indexed folder takes the time of
loading the model and the index. Runs under `accelerate launch` too: each process encodes its share of the videos.
The arguments (video folder, model folder or Hub id) are checked before torch or the model are loaded, so a mistyped
path is reported at once.
"""

import argparse
import os
import sys
from pathlib import Path

from .video_files import VIDEO_EXTENSIONS, find_videos

# Hidden, so the walk over the video folder never enters it (`video_files`).
INDEX_FOLDER = ".drl-index"


def model_location_error(name: str) -> str | None:
    """Why `name` cannot be a saved DRL model folder or Hub repository, or None if it may be one.

    A local folder must hold `config.json`. Anything else must be a valid Hub id; offline (`HF_HUB_OFFLINE=1`), it must
    also be in the Hub cache, since nothing else could provide it.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            return None
        return f"--model {name}: the folder holds no config.json, so it is not a saved DRL model."
    if path.exists():
        return f"--model {name}: a file, not a model folder or Hub id."
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return f"--model {name}: no such folder or Hub id."
    if constants.HF_HUB_OFFLINE and not isinstance(try_to_load_from_cache(name, "config.json"), str):
        return f"--model {name}: no such folder or Hub id (offline, and not in the local Hub cache)."
    return None


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
    parser.add_argument(
        "--videos", required=True, help="folder of videos (searched recursively; hidden files and folders skipped)"
    )
    parser.add_argument("--index", help="where to keep the index (default: <videos>/.drl-index/<model digest>)")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument(
        "--recall-target",
        type=float,
        default=0.999,
        help="recall of the exact top-k the search aims at, in [0.5, 1); higher re-ranks more videos",
    )
    parser.add_argument(
        "--candidates",
        type=int,
        help="instead: a fixed number of videos (best by summary vector) re-ranked exactly; >= the index size is "
        "exhaustive search",
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers decoding videos")
    parser.add_argument("--device", help="e.g. cuda; default: CPU, or this process's device under accelerate")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status (1 with a one-line `error: ...` for a user error)."""
    args = parse_args(argv)
    problem = model_location_error(args.model)
    if problem is None and not Path(args.videos).expanduser().is_dir():
        problem = f"--videos {args.videos}: no such folder."
    if problem is None and not 0.5 <= args.recall_target < 1:
        problem = f"--recall-target {args.recall_target}: must be in [0.5, 1) (--candidates N for a fixed count)."
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    try:
        return run(args)
    except (OSError, ValueError) as error:  # missing folder or model, undecodable query, mismatched index, ...
        print(f"error: {error}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    """Indexes (or refreshes) the folder and prints the ranked videos of each query."""
    videos = find_videos(args.videos)
    if not videos:
        print(f"error: no video files under {args.videos} ({', '.join(VIDEO_EXTENSIONS)}).", file=sys.stderr)
        return 1
    import torch
    from accelerate import PartialState

    from .index import VideoIndex, model_signature

    state = PartialState(cpu=not torch.accelerator.is_available())
    model, processor = load_model_and_processor(
        args.model, args.device or (str(state.device) if state.num_processes > 1 else None)
    )
    index_dir = (
        Path(args.index) if args.index else Path(args.videos) / INDEX_FOLDER / model_signature(model)["weights_digest"]
    )
    index = VideoIndex.sync(
        index_dir, model, processor, videos, root=args.videos, batch_size=args.batch_size, num_workers=args.num_workers
    )
    if not state.is_main_process:
        return 0
    print(f"{len(index)} video(s) indexed in {index_dir}", file=sys.stderr)
    for path, reason in index.failed.items():
        print(f"not indexed: {path}: {reason}", file=sys.stderr)
    results = index.search(args.queries, top_k=args.top_k, candidates=args.candidates, recall_target=args.recall_target)
    for query, hits in zip(args.queries, results, strict=True):
        print(f"\n{query}")
        for rank, hit in enumerate(hits, start=1):
            print(f"{rank:>4}. {hit.score:+.4f}  {os.path.relpath(hit.video, args.videos)}")
    return 0
