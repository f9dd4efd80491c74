"""Benchmark: index build throughput (videos per second), against decoding + preprocessing alone in the same run.

Indexes the toy benchmark's videos (generated on first use; 3 s clips, 64 px) with a trained DRL folder (default: the
toy model of `python train.py`), with 0 and 2 DataLoader workers, into a fresh folder each time. The baseline is the
processor alone over the same files, i.e. the part of building that no model speed-up removes.

    python -m bench.index_build --write
"""

import argparse
import functools
import platform
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path

import torch

from bench.report import write_section
from bench.timing import timed
from modeling_tvr.search.cli import load_model_and_processor
from modeling_tvr.search.index import VideoIndex


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="outputs/drl-toy", help="a trained DRL folder (run `python train.py`)")
    parser.add_argument("--videos", type=int, default=432, help="how many toy videos to index")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="record the figures in BENCHMARKS.md")
    args = parser.parse_args()
    if not Path(args.model).is_dir():
        sys.exit(f"{args.model} not found: train the toy model first with `python train.py`.")
    torch.set_num_threads(args.threads)
    from dataset_builders import load_benchmark

    model, processor = load_model_and_processor(args.model)
    data = load_benchmark("toy")
    videos = sorted({row["video"] for split in data.values() for row in split})[: args.videos]

    def preprocess_all() -> None:
        for video in videos:
            processor.video_processor(video)

    seconds, _ = timed(preprocess_all)
    rows = [f"| decode + preprocess only (baseline) | 0 | {len(videos) / seconds:.1f} |"]
    print(rows[-1], flush=True)
    for workers in (0, 2):
        folder = Path(tempfile.mkdtemp())
        build = functools.partial(
            VideoIndex.build,
            model,
            processor,
            videos,
            batch_size=args.batch_size,
            path=folder,
            num_workers=workers,
            show_progress=False,
        )
        seconds, _ = timed(build)
        rows.append(f"| `VideoIndex.build` (saved) | {workers} | {len(videos) / seconds:.1f} |")
        print(rows[-1], flush=True)
        shutil.rmtree(folder)
    text = "\n".join(
        [
            f"{len(videos)} toy videos (3 s, 64x64, 8 fps) with the toy model (`{args.model}`: 8 frames, 64 px, "
            f"width 128), batch {args.batch_size}, {args.threads} threads; "
            f"{platform.processor() or platform.machine()}, "
            f"torch {torch.__version__}, {date.today().isoformat()}. Command: `python -m bench.index_build --write`.",
            "",
            "| build | DataLoader workers | videos / s |",
            "| --- | --- | --- |",
            *rows,
            "",
            "Several processes (`accelerate launch -m modeling_tvr.search ...`, or any script calling "
            "`VideoIndex.build` with a shared `path`) each encode their shard (tested for equality "
            "with one process; the scaling is not measured on these 2 cores).",
        ]
    )
    print(text)
    if args.write:
        write_section("index_build", "Index build throughput", text)


if __name__ == "__main__":
    main()
