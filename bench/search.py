"""Benchmark: search over 10k and 100k videos, latency per query, recall@10 against exhaustive WTI, index bytes.

The collection is synthetic but made from a trained model, so that its geometry is the model's, not random:

1. the toy model trained by `python train.py` (default `outputs/drl-toy`) encodes every video of the toy benchmark
   (432 clips) and the test captions (the queries);
2. a fixed random orthonormal map embeds its features (width 128) in 512 dimensions: all cosines, hence all WTI
   scores, are unchanged, while the vectors get the width of ViT-B CLIP;
3. each synthetic video is a copy of one encoded video (cycled) moved by Gaussian noise: one offset shared by all its
   frames (norm `--video-noise`, relative to the unit frame vectors: a different video of similar content) plus
   independent noise per frame (norm `--frame-noise`), renormalised; frame weights are kept, summaries recomputed.
   With `--shapes 12x32` each video has 12 frames (drawn from its base video's frames, each with its own noise) and
   each query 32 tokens (its own tokens, then noisy copies of them, the weights spread over all).

So a query's exhaustive top ten are perturbed copies of the videos the model ranks first, and the search must pick
the right copies among hundreds of near-duplicates (23 per encoded video at 10k, 231 at 100k). Video noise 0 is the
harshest case: copies that differ only by independent per-frame noise, which WTI's maxima react to and a summary
vector averages away. Searches compared, one query at a time:

- exhaustive WTI: `token_wise_similarity` over all videos (chunked): the reference for recall;
- summary + N candidates: the fixed-size stage (`VideoIndex.search(..., candidates=N)`);
- sketch (default): `VideoIndex.search` with its defaults (`modeling_tvr/search/sketch.py`), recall target 0.999;
  from `frame_lists.MIN_VIDEOS` videos on the default reads the sketch through its frame lists
  (`modeling_tvr/search/frame_lists.py`), and the whole scan of the sketch is measured beside it;
- Qdrant: a `QdrantStore` (`modeling_tvr/search/qdrant.py`) in qdrant-client's in-process local mode (numpy, no
  server), at the sizes in `--engine-sizes`, on the first noise setting and the first `--engine-queries` queries (a
  local-mode query takes seconds): Qdrant's MaxSim gives the text-to-video half, the exact re-rank the rest. Its
  latency is the local mode's, not a server's; the row shows whether the engine path returns the same top ten.

Index bytes per video: what a search holds in memory per video (frame vectors in float32, frame weights, summary,
plus the sketch for the default, plus the frame lists where they are used).

    python -m bench.search --write
"""

import argparse
import platform
import statistics
import sys
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import torch

from bench.report import write_section
from bench.timing import median_time, p95, timed
from modeling_tvr.interaction_drl import l2_normalize, token_wise_similarity
from modeling_tvr.search.cli import load_model_and_processor
from modeling_tvr.search.features import PreparedSide, prepare_queries, two_stage_search
from modeling_tvr.search.frame_lists import MIN_VIDEOS
from modeling_tvr.search.index import VideoIndex
from modeling_tvr.search.sketch import DEFAULT_RECALL_TARGET, FrameSketch, adaptive_search


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


def embedded_toy(model: str, cache: str, dim: int, threads: int, queries: int) -> tuple[PreparedSide, PreparedSide]:
    """The toy videos and the first `queries` captions, encoded and embedded in `dim` dimensions (steps 1-2 of the
    module docstring); exits with the fix when the toy model is missing."""
    if not Path(model).is_dir():
        sys.exit(f"{model} not found: train the toy model first with `python train.py`.")
    torch.set_num_threads(threads)
    base_videos, captions = encode_toy(model, Path(cache))
    basis, _ = torch.linalg.qr(
        torch.randn(dim, base_videos.vectors.shape[-1], generator=torch.Generator().manual_seed(0))
    )
    basis = basis.T.contiguous()  # [model width, dim], orthonormal rows: cosines are preserved
    return embed(base_videos, basis), embed(captions, basis).take(slice(0, queries))


def synthetic_collection(
    base: PreparedSide, size: int, video_noise: float, frame_noise: float, seed: int, frames: int | None = None
) -> PreparedSide:
    """`size` noisy copies of the base videos (with `frames` frames each if given), built in blocks to bound memory."""
    generator = torch.Generator().manual_seed(seed)
    num_base, base_frames, dim = base.vectors.shape
    frames = frames or base_frames
    vectors = torch.empty(size, frames, dim)
    weights = torch.empty(size, frames)
    summary = torch.empty(size, dim)
    for start in range(0, size, 10_000):
        rows = torch.arange(start, min(size, start + 10_000)) % num_base
        source_vectors, source_weights = base.vectors[rows], base.weights[rows]
        if frames != base_frames:  # each new frame: one of the base video's real frames, drawn at random
            counts = (source_weights > 0).sum(1, keepdim=True)
            picks = (torch.rand(len(rows), frames, generator=generator) * counts).long()
            source_vectors = source_vectors.gather(1, picks.unsqueeze(-1).expand(-1, -1, dim))
            source_weights = torch.full((len(rows), frames), 1.0 / frames)
        valid = (source_weights > 0).unsqueeze(-1)
        shift = torch.randn(len(rows), 1, dim, generator=generator) * (video_noise / dim**0.5)
        jitter = torch.randn(len(rows), frames, dim, generator=generator) * (frame_noise / dim**0.5)
        noisy = l2_normalize(source_vectors + shift + jitter) * valid
        vectors[start : start + len(rows)] = noisy
        weights[start : start + len(rows)] = source_weights
        summary[start : start + len(rows)] = l2_normalize(torch.bmm(source_weights.unsqueeze(1), noisy).squeeze(1))
    return PreparedSide(vectors, weights, summary)


def longer_queries(queries: PreparedSide, tokens: int, seed: int) -> PreparedSide:
    """Each query with `tokens` tokens: its own, then noisy copies of them (noise norm 0.2), weights spread evenly
    over the copies of each token (so the query's weighted mean stays put)."""
    generator = torch.Generator().manual_seed(seed)
    count, _, dim = queries.vectors.shape
    vectors, weights = torch.zeros(count, tokens, dim), torch.zeros(count, tokens)
    for row in range(count):
        valid = queries.weights[row] > 0
        own, own_weights = queries.vectors[row][valid], queries.weights[row][valid]
        picks = torch.arange(tokens) % len(own)
        noise = torch.randn(tokens, dim, generator=generator) * (0.2 / dim**0.5)
        noise[: len(own)] = 0
        vectors[row] = l2_normalize(own[picks] + noise)
        copies = torch.bincount(picks, minlength=len(own)).float()
        weights[row] = own_weights[picks] / copies[picks]
    return PreparedSide(vectors, weights, l2_normalize(torch.bmm(weights.unsqueeze(1), vectors).squeeze(1)))


def index_bytes(collection: PreparedSide, sketch: FrameSketch | None) -> float:
    """Bytes per video a search holds in memory: frame vectors, weights and summary, plus the sketch if any."""
    tensors = [collection.vectors, collection.weights, collection.summary]
    if sketch is not None:
        tensors += [sketch.frames, sketch.residuals]
    return sum(t.numel() * t.element_size() for t in tensors) / len(collection.vectors)


def row(name: str, latencies: list[float], recalls: list[float], bytes_per_video: float) -> str:
    return (
        f"| {name} | {statistics.median(latencies):.1f} | {p95(latencies):.1f} | {statistics.mean(recalls):.3f} "
        f"(min {min(recalls):.1f}) | {bytes_per_video / 1024:.1f} |"
    )


def engine_index(collection: PreparedSide):
    """The collection loaded into a VideoIndex over a QdrantStore (in-process local mode), with stand-in entries."""
    from qdrant_client import QdrantClient

    from modeling_tvr.search.qdrant import DEFAULT_COLLECTION, QdrantStore

    store = QdrantStore.create(QdrantClient(":memory:"), DEFAULT_COLLECTION, shape=collection.vectors.shape[1:])
    entries = [SimpleNamespace(path=f"video{i}") for i in range(len(collection.vectors))]
    store.append([entry.path for entry in entries], collection)
    return VideoIndex(entries, store, {"interaction": "wti"})


def measure(
    collection: PreparedSide, queries: PreparedSide, candidate_counts: list[int], args, engine: bool = False
) -> list[str]:
    num_queries = queries.summary.shape[0]
    exact_top, exhaustive_ms = [], []
    for q in range(num_queries):
        query = queries.take(slice(q, q + 1))
        seconds, scores = timed(
            lambda query=query: token_wise_similarity(
                query.vectors, query.weights, collection.vectors, collection.weights
            )
        )
        exhaustive_ms.append(seconds * 1000)
        exact_top.append(set(scores[0].topk(10).indices.tolist()))
    plain_bytes = index_bytes(collection, None)
    rows = [row("exhaustive WTI", exhaustive_ms, [1.0] * num_queries, plain_bytes)]

    def run(name: str, search, bytes_per_video: float) -> None:
        latencies, recalls = [], []
        for q in range(num_queries):
            query = queries.take(slice(q, q + 1))
            seconds, indices = median_time(lambda query=query: search(query), args.repeat)
            latencies.append(seconds * 1000)
            recalls.append(len(exact_top[q] & set(indices.tolist())) / 10)
        rows.append(row(name, latencies, recalls, bytes_per_video))
        print(rows[-1], flush=True)

    for candidates in candidate_counts:
        run(
            f"summary + {candidates} candidates",
            lambda query, keep=candidates: two_stage_search(query, collection, "wti", 10, keep)[1][0],
            plain_bytes,
        )
    build_seconds, sketch = timed(lambda: FrameSketch.build(collection))
    if len(collection.vectors) < MIN_VIDEOS:
        run(
            f"sketch, default (built in {build_seconds:.1f} s)",
            lambda query: adaptive_search(query, collection, sketch, 10, DEFAULT_RECALL_TARGET)[1],
            index_bytes(collection, sketch),
        )
    else:  # the default reads the sketch through its frame lists: the whole scan beside it, same run
        run(
            f"sketch, whole scan (built in {build_seconds:.1f} s)",
            lambda query: adaptive_search(query, collection, sketch, 10, DEFAULT_RECALL_TARGET, use_lists=False)[1],
            index_bytes(collection, sketch),
        )
        lists_seconds, lists = timed(lambda: sketch.frame_lists(collection.weights))
        run(
            f"sketch + frame lists, default (lists built in {lists_seconds:.1f} s)",
            lambda query: adaptive_search(query, collection, sketch, 10, DEFAULT_RECALL_TARGET)[1],
            index_bytes(collection, sketch) + lists.nbytes() / len(collection.vectors),
        )
    if engine:
        build_seconds, index = timed(lambda: engine_index(collection))
        count = min(args.engine_queries, num_queries)
        latencies, recalls, same = [], [], 0
        for q in range(count):
            query = queries.take(slice(q, q + 1))
            seconds, hits = timed(lambda query=query: index.search_prepared(query, 10)[0])
            latencies.append(seconds * 1000)
            recalls.append(len(exact_top[q] & {hit.index for hit in hits}) / 10)
            built_in = adaptive_search(query, collection, sketch, 10, DEFAULT_RECALL_TARGET)[1].tolist()
            same += [hit.index for hit in hits] == built_in
        name = (
            f"Qdrant, local mode ({count} queries, loaded in {build_seconds:.0f} s; same top ten as the sketch: {same})"
        )
        rows.append(row(name, latencies, recalls, plain_bytes))
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="outputs/drl-toy", help="a trained DRL folder (run `python train.py`)")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--candidates", default="3000", help="candidate counts of the fixed-size stage")
    parser.add_argument("--video-noise", default="1.0,0.5,0.25,0.0", help="norms of the offset shared by frames")
    parser.add_argument("--frame-noise", default="0.1,0.3", help="norms of the independent noise per frame")
    parser.add_argument("--shapes", default="native,12x32", help="frames x tokens; native: the toy's own")
    parser.add_argument("--engine-sizes", default="10000", help="sizes at which the Qdrant backend is measured")
    parser.add_argument("--engine-queries", type=int, default=10, help="queries the Qdrant backend answers")
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3, help="timings per query (median)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", default="outputs/bench-search/toy-index")
    parser.add_argument("--write", action="store_true", help="record the figures in BENCHMARKS.md")
    args = parser.parse_args()
    base_videos, all_queries = embedded_toy(args.model, args.cache, args.dim, args.threads, args.queries)
    candidate_counts = [int(c) for c in args.candidates.split(",")]
    sections = []
    first_noise = (float(args.video_noise.split(",")[0]), float(args.frame_noise.split(",")[0]))
    for shape in args.shapes.split(","):
        frames, tokens = (None, None) if shape == "native" else (int(n) for n in shape.split("x"))
        queries = all_queries if tokens is None else longer_queries(all_queries, tokens, seed=1)
        for size in (int(s) for s in args.sizes.split(",")):
            for video_noise in (float(n) for n in args.video_noise.split(",")):
                for frame_noise in (float(n) for n in args.frame_noise.split(",")):
                    collection = synthetic_collection(base_videos, size, video_noise, frame_noise, size, frames)
                    num_frames, num_tokens = collection.vectors.shape[1], queries.vectors.shape[1]
                    title = (
                        f"**{size:,} videos of {num_frames} frames, queries of {num_tokens} tokens, video noise "
                        f"{video_noise}, frame noise {frame_noise}**"
                    )
                    print(title, flush=True)
                    engine = (
                        str(size) in args.engine_sizes.split(",")
                        and shape == args.shapes.split(",")[0]
                        and (video_noise, frame_noise) == first_noise
                    )
                    rows = measure(collection, queries, candidate_counts, args, engine)
                    sections += [
                        title,
                        "",
                        "| search | latency median (ms) | p95 (ms) | recall@10 vs exhaustive | index KiB / video |",
                        "| --- | --- | --- | --- | --- |",
                        *rows,
                        "",
                    ]
                    del collection
    text = "\n".join(
        [
            f"{all_queries.summary.shape[0]} toy test captions as queries, one at a time; dim {args.dim}; "
            f"float32, {args.threads} threads; "
            f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {date.today().isoformat()}. "
            "Command: `python -m bench.search --write` (how the collections are made: the script's docstring). "
            "Recall: mean over the queries (min: the worst query).",
            "",
            *sections,
        ]
    )
    print(text)
    if args.write:
        write_section("search", "Search at scale: sketch vs fixed candidates vs exhaustive WTI", text.rstrip())


if __name__ == "__main__":
    main()
