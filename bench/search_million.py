"""Benchmark: one million videos on one 24 GB machine: index size, build time, latency, recall@10.

The collection is made as in `bench/search.py` (noisy copies of the toy model's encoded videos, embedded in 512
dimensions; see its docstring), here 1,000,000 videos of 12 frames: 6 billion float16 values, 11.4 GiB of frame
vectors, more than half this machine's memory in float16 and more than all of it in float32. It is written block by
block to a safetensors file on disk, which the search memory-maps (`modeling_tvr.search.storage.map_safetensors`, what
`VideoIndex.load(..., mmap=True)` does); only the sketch (`modeling_tvr/search/sketch.py`) and its frame lists
(`modeling_tvr/search/frame_lists.py`) are built in memory. Each query runs the whole sketch scan and the default
search through the frame lists, one after the other, median of `--repeat` calls each. Recall
is measured against exhaustive WTI over all million videos for each query (seconds per query, so on `--queries` of
them).

    python -m bench.search_million --write
"""

import argparse
import json
import os
import platform
import statistics
from datetime import date
from pathlib import Path

import torch

from bench.report import write_section
from bench.search import embedded_toy, synthetic_collection
from bench.timing import median_time, p95, status_kib, timed
from modeling_tvr.search.features import PreparedSide, rerank_candidates
from modeling_tvr.search.sketch import DEFAULT_RECALL_TARGET, FrameSketch, adaptive_search
from modeling_tvr.search.storage import map_safetensors

BLOCK = 20_000  # videos generated and written at once


def write_collection(base: PreparedSide, path: Path, size: int, frames: int, video_noise: float, frame_noise: float):
    """Streams the synthetic collection into a safetensors file: vectors (float16) and frame weights (float32)."""
    dim = base.vectors.shape[-1]
    vector_bytes = size * frames * dim * 2
    total = vector_bytes + size * frames * 4
    header = {
        "vectors": {"dtype": "F16", "shape": [size, frames, dim], "data_offsets": [0, vector_bytes]},
        "weights": {"dtype": "F32", "shape": [size, frames], "data_offsets": [vector_bytes, total]},
    }
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)  # safetensors aligns the data
    weights = []
    with open(path, "wb") as file:
        file.write(len(encoded).to_bytes(8, "little") + encoded)
        for start in range(0, size, BLOCK):
            count = min(BLOCK, size - start)
            # Seeded per block, so a block's content does not depend on the block size of earlier ones.
            block = synthetic_collection(base, count, video_noise, frame_noise, seed=start + 1, frames=frames)
            file.write(block.vectors.to(torch.float16).numpy().tobytes())
            weights.append(block.weights)
        file.write(torch.cat(weights).numpy().tobytes())


def exhaustive_top(query: PreparedSide, videos: PreparedSide, k: int = 10) -> set[int]:
    """Exact top k over every video, read in blocks from the memory-mapped file."""
    scores = torch.cat(
        [
            rerank_candidates(query, videos, torch.arange(start, min(start + 50_000, len(videos.vectors)))[None])[0]
            for start in range(0, len(videos.vectors), 50_000)
        ]
    )
    return set(scores.topk(k).indices.tolist())


def anonymous_gib() -> float:
    """Memory the process holds itself (`RssAnon`): mapped file pages it has read are page cache the kernel can
    drop, not memory the search needs."""
    return status_kib("RssAnon") / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="outputs/drl-toy", help="a trained DRL folder (run `python train.py`)")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--video-noise", type=float, default=0.25)
    parser.add_argument("--frame-noise", type=float, default=0.3)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--file", default="outputs/bench-search/million.safetensors")
    parser.add_argument("--cache", default="outputs/bench-search/toy-index")
    parser.add_argument("--write", action="store_true", help="record the figures in BENCHMARKS.md")
    args = parser.parse_args()
    base, queries = embedded_toy(args.model, args.cache, 512, args.threads, args.queries)

    path = Path(args.file)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Writing the collection is slow (its time is in BENCHMARKS.md): a later run with the same settings reuses the
    # file, and a record beside it keeps how long writing took, for the table.
    record = path.with_suffix(".json")
    wanted = {k: v for k, v in vars(args).items() if k in ("size", "frames", "video_noise", "frame_noise")}
    found = json.loads(record.read_text()) if record.is_file() and path.is_file() else {}
    if {k: found.get(k) for k in wanted} != wanted:
        write_seconds, _ = timed(
            lambda: write_collection(base, path, args.size, args.frames, args.video_noise, args.frame_noise)
        )
        found = {**wanted, "write_seconds": write_seconds}
        record.write_text(json.dumps(found))
    write_seconds = found["write_seconds"]
    tensors = map_safetensors(path)
    videos = PreparedSide(tensors["vectors"], tensors["weights"], torch.zeros(args.size, 0))
    sketch_seconds, sketch = timed(lambda: FrameSketch.build(videos))
    anonymous_after_sketch = anonymous_gib()
    sketch_bytes = sum(t.numel() * t.element_size() for t in (sketch.frames, sketch.residuals, sketch.basis))
    lists_seconds, lists = timed(lambda: sketch.frame_lists(videos.weights))
    anonymous_after_lists = anonymous_gib()
    print(f"written in {write_seconds:.0f} s, sketch built in {sketch_seconds:.0f} s, lists {lists_seconds:.0f} s")

    searches = {"whole scan": False, "frame lists": True}  # both in the same run, query after query
    latencies, recalls, reranked = ({name: [] for name in searches} for _ in range(3))
    exhaustive_seconds = []
    for q in range(len(queries.vectors)):
        query = queries.take(slice(q, q + 1))
        seconds, top = timed(lambda query=query: exhaustive_top(query, videos))
        exhaustive_seconds.append(seconds)
        for name, use_lists in searches.items():
            seconds, (_, indices, scored) = median_time(
                lambda query=query, use_lists=use_lists: adaptive_search(
                    query, videos, sketch, 10, DEFAULT_RECALL_TARGET, use_lists=use_lists
                ),
                args.repeat,
            )
            latencies[name].append(seconds * 1000)
            recalls[name].append(len(top & set(indices.tolist())) / 10)
            reranked[name].append(scored)
            print(f"query {q}, {name}: {seconds * 1000:.0f} ms, recall {recalls[name][-1]:.1f}, {scored} re-ranked")
    anonymous_after_searches = anonymous_gib()
    whole, pruned = latencies["whole scan"], latencies["frame lists"]
    rows = []
    for name, label in (("whole scan", "whole sketch scan"), ("frame lists", "frame lists (the default)")):
        rows += [
            f"| search latency, {label}, median / p95 | {statistics.median(latencies[name]):.0f} / "
            f"{p95(latencies[name]):.0f} ms |",
            f"| recall@10 vs exhaustive WTI, {label} | {statistics.mean(recalls[name]):.3f} "
            f"(min {min(recalls[name]):.1f}) |",
            f"| videos re-ranked exactly per query, {label}, median / max | "
            f"{statistics.median(reranked[name]):.0f} / {max(reranked[name])} |",
        ]
    file_bytes = os.path.getsize(path)
    text = "\n".join(
        [
            f"{args.size:,} videos of {args.frames} frames (dim 512, float16 on disk, memory-mapped), video noise "
            f"{args.video_noise}, frame noise {args.frame_noise}; {len(queries.vectors)} toy test captions as queries, "
            f"one at a time; {args.threads} threads; {platform.processor() or platform.machine()}, torch "
            f"{torch.__version__}, {date.today().isoformat()}. Command: `python -m bench.search_million --write`.",
            "",
            "| figure | value |",
            "| --- | --- |",
            f"| frame vectors + weights on disk | {file_bytes / 1024**3:.1f} GiB "
            f"({file_bytes / args.size:.0f} B / video) |",
            f"| sketch in memory | {sketch_bytes / 1024**3:.2f} GiB ({sketch_bytes / args.size:.0f} B / video) |",
            f"| writing the collection (generation included) | {write_seconds:.0f} s |",
            f"| building the sketch (PCA + projecting every frame) | {sketch_seconds:.0f} s |",
            f"| frame lists in memory | {lists.nbytes() / 1024**3:.2f} GiB ({lists.nbytes() / args.size:.0f} B / "
            f"video, {len(lists.radii)} lists) |",
            f"| building the frame lists (two-level k-means, grouping every frame) | {lists_seconds:.0f} s |",
            *rows,
            f"| speed-up of the frame lists over the whole scan, per query (median of the ratios) | "
            f"{statistics.median(w / p for w, p in zip(whole, pruned, strict=True)):.1f}x |",
            f"| exhaustive WTI per query (reference) | {statistics.median(exhaustive_seconds):.1f} s |",
            f"| memory held by the process (RssAnon) after the sketch / after the lists / after the searches | "
            f"{anonymous_after_sketch:.1f} / {anonymous_after_lists:.1f} / {anonymous_after_searches:.1f} GiB |",
        ]
    )
    print(text)
    if args.write:
        write_section("search_million", "Search over one million videos", text)


if __name__ == "__main__":
    main()
