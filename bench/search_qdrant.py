"""Benchmark: a Qdrant-held index on qdrant-client's local mode and on Qdrant's own engine: latency, recall@10 and the
videos (their frame vectors) each query fetches from the collection.

The collection is `bench.search`'s (noisy copies of the toy model's encoded videos, embedded in 512 dimensions), 12
frames a video. Each size is loaded into two `QdrantStore`s with the settings the package writes
(`collection_vectors_config`): qdrant-client's in-process local mode (NumPy), and Qdrant's Rust engine in process
(`qdrant-edge-py`, through `tests/qdrant_engine.py`; indexed after loading, as a server indexes a collection past its
threshold). Local mode holds its points as Python objects and ran out of this machine's 24 GB at 100,000 videos of
12 x 512 (qdrant-client advises against it past 20,000), so it runs up to `--local-mode-max` videos. Two searches
per store, one query at a time:

- the default: `sketch.py`'s rule on the sketch held in this process, fetching from the collection only the videos it
  scores exactly;
- Qdrant's ranking: the collection ranked by the server (WTI's text-to-video half, MaxSim of the weighted query) and
  its best `--candidates` share scored exactly (`search(..., candidates=N)`), a fixed budget of fetched vectors, for
  comparison.

Recall is against exhaustive WTI over the collection. Latency includes the fetches (in process here: a real server
adds the network's time per fetched vector, which is why the count matters).

    python -m bench.search_qdrant --write
"""

import argparse
import platform
import statistics
import tempfile
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import torch

from bench.report import write_section
from bench.search import embedded_toy, longer_queries, synthetic_collection
from bench.timing import p95, timed
from modeling_tvr.interaction_drl import token_wise_similarity
from modeling_tvr.search.index import VideoIndex
from modeling_tvr.search.qdrant import DEFAULT_COLLECTION, QdrantStore


def loaded_store(client, collection) -> QdrantStore:
    store = QdrantStore.create(client, DEFAULT_COLLECTION, shape=collection.vectors.shape[1:])
    store.append([f"video{i}" for i in range(len(collection.vectors))], collection)
    if hasattr(client, "optimize"):  # the engine: build what a server builds past its indexing threshold
        client.optimize(DEFAULT_COLLECTION)
    store.saved()  # the sketch and frame weights, as a saved index holds them
    return store


def measure(name: str, store: QdrantStore, queries, exact_top: list[set], candidates: int | None) -> str:
    entries = [SimpleNamespace(path=f"video{i}") for i in range(len(store))]
    index = VideoIndex(entries, store, {"interaction": "wti"})
    latencies, recalls, fetched = [], [], []
    for q in range(queries.summary.shape[0]):
        query = queries.take(slice(q, q + 1))
        store.videos_fetched = 0
        seconds, hits = timed(lambda query=query: index.search_prepared(query, 10, candidates=candidates)[0])
        latencies.append(seconds * 1000)
        recalls.append(len(exact_top[q] & {hit.index for hit in hits}) / 10)
        fetched.append(store.videos_fetched)
    share = statistics.median(fetched) / len(store) * 100
    return (
        f"| {name} | {statistics.median(latencies):.0f} | {p95(latencies):.0f} | {statistics.mean(recalls):.3f} "
        f"(min {min(recalls):.1f}) | {statistics.median(fetched):.0f} ({share:.2f} %) | {max(fetched)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="outputs/drl-toy", help="a trained DRL folder (run `python train.py`)")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--video-noise", type=float, default=0.25)
    parser.add_argument("--frame-noise", type=float, default=0.3)
    parser.add_argument("--candidates", type=float, default=0.02, help="share of the collection Qdrant's ranking hands")
    parser.add_argument(
        "--local-mode-max", type=int, default=20000, help="largest size run on local mode (qdrant-client advises 20k)"
    )
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", default="outputs/bench-search/toy-index")
    parser.add_argument("--write", action="store_true", help="record the figures in BENCHMARKS.md")
    args = parser.parse_args()
    from qdrant_client import QdrantClient

    from tests.qdrant_engine import EngineClient

    base_videos, captions = embedded_toy(args.model, args.cache, args.dim, args.threads, args.queries)
    queries = longer_queries(captions, args.tokens, seed=1)
    lines = []
    for size in (int(s) for s in args.sizes.split(",")):
        collection = synthetic_collection(base_videos, size, args.video_noise, args.frame_noise, size, args.frames)
        exact_top = []
        for q in range(queries.summary.shape[0]):
            query = queries.take(slice(q, q + 1))
            scores = token_wise_similarity(query.vectors, query.weights, collection.vectors, collection.weights)
            exact_top.append(set(scores[0].topk(10).indices.tolist()))
        candidates = max(10, round(args.candidates * size))
        lines += [
            f"**{size:,} videos of {args.frames} frames, queries of {args.tokens} tokens**",
            "",
            "| collection, search | latency median (ms) | p95 (ms) | recall@10 vs exhaustive | videos fetched per "
            "query, median (share) | max |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        with tempfile.TemporaryDirectory() as folder:
            engine = EngineClient(Path(folder))
            clients = [("local mode", QdrantClient(":memory:"))] if size <= args.local_mode_max else []
            for label, client in [*clients, ("Qdrant engine", engine)]:
                load_seconds, store = timed(lambda client=client, videos=collection: loaded_store(client, videos))
                for search, count in (("sketch here (default)", None), (f"Qdrant's ranking, {candidates}", candidates)):
                    lines.append(
                        measure(f"{label} (loaded in {load_seconds:.0f} s), {search}", store, queries, exact_top, count)
                    )
                    print(lines[-1], flush=True)
                if client is engine:
                    engine.close()
        lines.append("")
        del collection
    text = "\n".join(
        [
            f"{queries.summary.shape[0]} toy test captions as queries (lengthened to {args.tokens} tokens), one at a "
            f"time; video noise {args.video_noise}, frame noise {args.frame_noise}; dim {args.dim}, "
            f"{args.threads} threads; {platform.machine()}, torch {torch.__version__}, {date.today().isoformat()}. "
            "Command: `python -m bench.search_qdrant --write`. Local mode runs up to "
            f"{args.local_mode_max:,} videos (at 100,000 it ran out of this machine's 24 GB). Videos fetched: the "
            "points read back with their frame vectors, the probes and candidates scored exactly.",
            "",
            *lines,
        ]
    )
    print(text)
    if args.write:
        write_section("search_qdrant", "Search on Qdrant: local mode and Qdrant's engine", text.rstrip())


if __name__ == "__main__":
    main()
