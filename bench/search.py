"""Benchmark: two-stage search over 10k and 100k videos, latency per query and recall@10 against exhaustive WTI.

The collection is synthetic but made from a trained model, so that its geometry is the model's, not random:

1. the toy model trained by `python train.py` (default `outputs/drl-toy`) encodes every video of the toy benchmark
   (432 clips) and the test captions (the queries);
2. a fixed random orthonormal map embeds its features (width 128) in 512 dimensions: all cosines, hence all WTI
   scores, are unchanged, while the vectors get the width of ViT-B CLIP;
3. each synthetic video is a copy of one encoded video (cycled) moved by Gaussian noise: one offset shared by all its
   frames (norm `--video-noise`, relative to the unit frame vectors: a different video of similar content) plus
   independent noise per frame (norm `--frame-noise`), renormalised; frame weights are kept, summaries recomputed.

So a query's exhaustive top ten are perturbed copies of the videos the model ranks first, and the coarse stage must
pick the right copies among hundreds of near-duplicates (23 per encoded video at 10k, 231 at 100k). The row with
`--video-noise 0` is the harshest case: copies that differ only by independent per-frame noise, which WTI's maxima
react to and a summary vector averages away. Exhaustive WTI is `token_wise_similarity` over all videos (chunked),
one query at a time for latency.

    python bench/search.py --write
"""

import argparse
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import write_section  # noqa: E402

from modeling_tvr.index import VideoIndex  # noqa: E402
from modeling_tvr.index_features import PreparedSide, prepare_queries, two_stage_search  # noqa: E402
from modeling_tvr.interaction_drl import l2_normalize, token_wise_similarity  # noqa: E402
from modeling_tvr.search import load_model_and_processor  # noqa: E402


def encode_toy(model_dir: str, cache: Path) -> tuple[PreparedSide, PreparedSide]:
    """Prepared features of every toy video (indexed once, cached) and of the toy test captions."""
    from dataset_builders import load_benchmark

    model, processor = load_model_and_processor(model_dir)
    data = load_benchmark("toy")
    videos = sorted({row["video"] for split in data.values() for row in split})
    index = VideoIndex.sync(cache, model, processor, videos, batch_size=32, show_progress=True)
    captions = list(dict.fromkeys(data["test"]["caption"]))
    inputs = processor(text=captions)
    with torch.inference_mode():
        text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).text_embeds
        queries = prepare_queries(model, text, inputs["attention_mask"])
    return index.videos, queries


def embed(side: PreparedSide, basis: torch.Tensor) -> PreparedSide:
    return PreparedSide(side.vectors.float() @ basis, side.weights.float(), side.summary.float() @ basis)


def synthetic_collection(
    base: PreparedSide, size: int, video_noise: float, frame_noise: float, seed: int
) -> PreparedSide:
    """`size` noisy copies of the base videos, built in blocks to bound memory."""
    generator = torch.Generator().manual_seed(seed)
    num_base, frames, dim = base.vectors.shape
    vectors = torch.empty(size, frames, dim)
    weights = torch.empty(size, frames)
    summary = torch.empty(size, dim)
    for start in range(0, size, 10_000):
        rows = torch.arange(start, min(size, start + 10_000)) % num_base
        valid = (base.weights[rows] > 0).unsqueeze(-1)
        shift = torch.randn(len(rows), 1, dim, generator=generator) * (video_noise / dim**0.5)
        jitter = torch.randn(len(rows), frames, dim, generator=generator) * (frame_noise / dim**0.5)
        noisy = l2_normalize(base.vectors[rows] + shift + jitter) * valid
        vectors[start : start + len(rows)] = noisy
        weights[start : start + len(rows)] = base.weights[rows]
        summary[start : start + len(rows)] = l2_normalize(torch.bmm(base.weights[rows].unsqueeze(1), noisy).squeeze(1))
    return PreparedSide(vectors, weights, summary)


def timed(function, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def measure(collection: PreparedSide, queries: PreparedSide, candidate_counts: list[int], args) -> list[str]:
    num_queries = queries.summary.shape[0]
    exact_top, exhaustive_ms = [], []
    for q in range(num_queries):
        query = queries.take(slice(q, q + 1))
        seconds, scores = timed(
            lambda query=query: token_wise_similarity(
                query.vectors, query.weights, collection.vectors, collection.weights
            ),
            1,
        )
        exhaustive_ms.append(seconds * 1000)
        exact_top.append(set(scores[0].topk(10).indices.tolist()))
    rows = [f"| exhaustive WTI | {statistics.median(exhaustive_ms):.1f} | 1.000 |"]
    for candidates in candidate_counts:
        latencies, recalls = [], []
        for q in range(num_queries):
            query = queries.take(slice(q, q + 1))
            seconds, (_, indices) = timed(
                lambda query=query, keep=candidates: two_stage_search(query, collection, "wti", 10, keep), args.repeat
            )
            latencies.append(seconds * 1000)
            recalls.append(len(exact_top[q] & set(indices[0].tolist())) / 10)
        rows.append(
            f"| two-stage, {candidates} candidates | {statistics.median(latencies):.1f} "
            f"(p95 {sorted(latencies)[int(0.95 * (len(latencies) - 1))]:.1f}) | {statistics.mean(recalls):.3f} |"
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="outputs/drl-toy", help="a trained DRL folder (run `python train.py`)")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--candidates", default="1000,2000,3000,4000")
    parser.add_argument("--video-noise", default="1.0,0.5", help="norms of the offset shared by a video's frames")
    parser.add_argument("--frame-noise", type=float, default=0.1, help="norm of the independent noise per frame")
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3, help="timings per query (median)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", default="outputs/bench-search/toy-index")
    parser.add_argument("--write", action="store_true", help="record the figures in BENCHMARKS.md")
    args = parser.parse_args()
    if not Path(args.model).is_dir():
        sys.exit(f"{args.model} not found: train the toy model first with `python train.py`.")
    torch.set_num_threads(args.threads)
    base_videos, queries = encode_toy(args.model, Path(args.cache))
    basis, _ = torch.linalg.qr(
        torch.randn(args.dim, base_videos.vectors.shape[-1], generator=torch.Generator().manual_seed(0))
    )
    basis = basis.T.contiguous()  # [model width, dim], orthonormal rows: cosines are preserved
    base_videos, queries = embed(base_videos, basis), embed(queries, basis)
    queries = queries.take(slice(0, args.queries))
    candidate_counts = [int(c) for c in args.candidates.split(",")]
    sections = []
    settings = [(int(size), float(noise)) for size in args.sizes.split(",") for noise in args.video_noise.split(",")]
    for size, video_noise in settings:
        collection = synthetic_collection(base_videos, size, video_noise, args.frame_noise, seed=size)
        print(f"{size} videos, video noise {video_noise}", flush=True)
        rows = measure(collection, queries, candidate_counts, args)
        sections += [
            f"**{size:,} videos, video noise {video_noise}** ({collection.vectors.numel() * 4 / 1024**3:.2f} GiB of "
            "frame features):",
            "",
            "| search | latency per query, median (ms) | recall@10 vs exhaustive |",
            "| --- | --- | --- |",
            *rows,
            "",
        ]
    frames, tokens = base_videos.vectors.shape[1], queries.vectors.shape[1]
    text = "\n".join(
        [
            f"{queries.summary.shape[0]} toy test captions as queries ({tokens} tokens), one at a time; videos of "
            f"{frames} frames, dim {args.dim}, frame noise {args.frame_noise}; "
            f"float32, {args.threads} threads; "
            f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {date.today().isoformat()}. "
            "Command: `python bench/search.py --write` (how the collection is made: the script's docstring).",
            "",
            *sections,
        ]
    )
    print(text)
    if args.write:
        write_section("search", "Search at scale: two-stage vs exhaustive WTI", text.rstrip())


if __name__ == "__main__":
    main()
