"""`VideoIndex` on Qdrant: the frame vectors live in a Qdrant collection, for collections beyond one machine.

    from qdrant_client import QdrantClient
    client = QdrantClient(url="http://qdrant:6333")          # or QdrantClient(":memory:") / QdrantClient(path=...)
    index = QdrantVideoIndex.build(model, processor, videos, path="my_index", client=client, collection="clips")
    index.search(["a dog catches a frisbee"])                   # same API as VideoIndex: add, remove, refresh, sync
    index = QdrantVideoIndex.load("my_index", model, processor, client=client)

Each video is one point: its real frames as a multivector compared by MaxSim, its frame weights and path as payload.
The index folder keeps what it keeps for `VideoIndex` (videos, fingerprints, failures, model signature) plus the
point id of each video; the vectors are only in Qdrant.

WTI's text-to-video half, `sum_t w_t max_f cos(q_t, v_f)`, is the MaxSim of the weighted query vectors `w_t q_t`
(the WTI weights are positive) against a video's frames: Qdrant ranks the collection by exactly that half. Candidates
are then read from Qdrant best first, with their vectors, and scored here with the whole WTI (both halves), under the
rule of `sketch.py`: the best `PROBE` videos and `PROBE` drawn at random are scored exactly, a line fitted on
them predicts WTI from the half, the bound is measured on what the line leaves (same extreme-value quantile), and
reading stops once the next video's prediction plus the bound falls below the k-th exact score.
Only the `wti` and `ti` interactions are supported (a `dp` index is one vector per video: use `VideoIndex`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from .features import PreparedSide, rerank_candidates, weighted_summary
from .fingerprint import FileFingerprint
from .index import DEFAULT_RECALL_TARGET, SearchHit, VideoIndex, check_top_k
from .sketch import PROBE, RERANK_STEP, draw_others, error_quantile
from .storage import IndexCorruptError

DEFAULT_COLLECTION = "drl_videos"
# Points written per upsert call.
UPSERT_BATCH = 256


def connect(client=None):
    """A `QdrantClient`: the one given, or one for a location string (":memory:", an http(s) URL, a folder);
    None is an in-process collection in memory (tests, trying things out)."""
    try:
        from qdrant_client import QdrantClient
    except ImportError:
        raise ImportError(
            "QdrantVideoIndex needs qdrant-client: pip install 'modeling-tvr[qdrant]' (or qdrant-client)."
        ) from None
    if client is None or client == ":memory:":
        return QdrantClient(location=":memory:")
    if isinstance(client, str | os.PathLike):
        text = str(client)
        return QdrantClient(url=text) if text.startswith(("http://", "https://")) else QdrantClient(path=text)
    return client


class QdrantVideoIndex(VideoIndex):
    """A `VideoIndex` whose frame vectors are stored in and searched by Qdrant; see the module docstring.

    Build and load take `client` (a `QdrantClient`, a URL, a folder, or None for memory) and `collection` (the
    collection name; `load` defaults to the one the index recorded).
    """

    ENGINE_OPTIONS = ("client", "collection")

    def __init__(self, *args, client=None, collection: str = DEFAULT_COLLECTION, point_ids=(), next_point_id=0, **kw):
        self.client = connect(client)
        self.collection = collection
        self.point_ids = list(point_ids)
        self.next_point_id = next_point_id
        self._shape: tuple[int, int] | None = None  # (frames, width), fixed by the model and processor
        super().__init__(*args, **kw)

    # ------------------------------------------------------------------ creating and loading
    @classmethod
    def _engine_name(cls) -> str:
        return "qdrant"

    @classmethod
    def _create_empty(cls, empty, signature, model, processor, client=None, collection=DEFAULT_COLLECTION):
        if signature.get("interaction") == "dp":
            raise ValueError("QdrantVideoIndex serves the wti and ti interactions; index a dp model with VideoIndex.")
        index = cls([], empty, signature, model, processor, client=client, collection=collection)
        index._shape = tuple(empty.vectors.shape[1:])
        from qdrant_client import models

        if index.client.collection_exists(collection):
            points = index.client.count(collection).count
            if points:
                raise ValueError(
                    f"The Qdrant collection {collection!r} already holds {points} points; build into a new "
                    "collection, delete that one, or load the index that owns it (QdrantVideoIndex.load)."
                )
            index.client.delete_collection(collection)
        index.client.create_collection(
            collection,
            vectors_config=models.VectorParams(
                size=empty.vectors.shape[-1],
                distance=models.Distance.DOT,  # the frames are unit vectors: dot product = cosine
                multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
            ),
        )
        return index

    @classmethod
    def _from_storage(cls, tensors, manifest, entries, signature, model, processor, path, client=None, collection=None):
        collection = collection or manifest.get("collection", DEFAULT_COLLECTION)
        point_ids = tensors["point_ids"].tolist()
        frames, width = manifest.get("shape", (0, 0))
        empty = PreparedSide(torch.zeros(0, frames, width), torch.zeros(0, frames), torch.zeros(0, width))
        index = cls(
            entries,
            empty,
            signature,
            model,
            processor,
            manifest.get("failed"),
            path,
            manifest.get("failed_stats"),
            client=client,
            collection=collection,
            point_ids=point_ids,
            next_point_id=manifest.get("next_point_id", max(point_ids, default=-1) + 1),
        )
        index._shape = (frames, width)
        found = index.client.count(collection).count if index.client.collection_exists(collection) else None
        if found != len(point_ids):
            raise IndexCorruptError(
                path,
                f"it lists {len(point_ids)} videos in the Qdrant collection {collection!r}, which "
                + ("does not exist" if found is None else f"holds {found} points")
                + " (another client, or the wrong collection or server)",
            )
        return index

    # ------------------------------------------------------------------ where the features live
    def _store_append(self, entries: list[FileFingerprint], videos: PreparedSide) -> None:
        from qdrant_client import models

        ids = list(range(self.next_point_id, self.next_point_id + len(entries)))
        for start in range(0, len(entries), UPSERT_BATCH):
            points = []
            for offset in range(start, min(start + UPSERT_BATCH, len(entries))):
                valid = videos.weights[offset] > 0
                points.append(
                    models.PointStruct(
                        id=ids[offset],
                        vector=videos.vectors[offset][valid].float().tolist(),
                        payload={"path": entries[offset].path, "weights": videos.weights[offset][valid].tolist()},
                    )
                )
            self.client.upsert(self.collection, points=points, wait=True)
        self.point_ids.extend(ids)
        self.next_point_id += len(entries)

    def _store_take(self, rows: torch.Tensor) -> None:
        from qdrant_client import models

        kept = [self.point_ids[i] for i in rows.tolist()]
        dropped = sorted(set(self.point_ids) - set(kept))
        if dropped:
            self.client.delete(self.collection, points_selector=models.PointIdsList(points=dropped), wait=True)
        self.point_ids = kept

    def _store_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        return {"point_ids": torch.tensor(self.point_ids, dtype=torch.long)}, {}

    def _manifest_extra(self) -> dict:
        return {
            "engine": "qdrant",
            "collection": self.collection,
            "next_point_id": self.next_point_id,
            "shape": list(self._shape or (0, 0)),
        }

    @property
    def storage_dtype(self) -> torch.dtype:
        return torch.float32  # Qdrant stores float32 vectors

    @property
    def videos(self) -> PreparedSide:
        """Every video's features read back from Qdrant, in index order (a full read: for checks, not searching)."""
        return self._features(self.point_ids)

    @videos.setter
    def videos(self, value: PreparedSide) -> None:
        self._shape = tuple(value.vectors.shape[1:])  # the constructor's empty features: only their shape is kept

    def _features(self, point_ids: Sequence[int]) -> PreparedSide:
        """The prepared features of `point_ids` from Qdrant, zero-padded to the index's frame count."""
        frames, width = self._shape
        vectors, weights = torch.zeros(len(point_ids), frames, width), torch.zeros(len(point_ids), frames)
        records = {}
        for start in range(0, len(point_ids), UPSERT_BATCH):
            batch = list(point_ids[start : start + UPSERT_BATCH])
            for record in self.client.retrieve(self.collection, batch, with_payload=["weights"], with_vectors=True):
                records[record.id] = record
        for row, point_id in enumerate(point_ids):
            record = records[point_id]
            valid = len(record.payload["weights"])
            vectors[row, :valid] = torch.from_numpy(np.asarray(record.vector, dtype=np.float32))
            weights[row, :valid] = torch.tensor(record.payload["weights"])
        return PreparedSide(vectors, weights, weighted_summary(vectors, weights))

    # ------------------------------------------------------------------ search
    def search_prepared(
        self,
        queries: PreparedSide,
        top_k: int = 10,
        candidates: int | None = None,
        recall_target: float = DEFAULT_RECALL_TARGET,
    ) -> list:
        """`VideoIndex.search_prepared` with Qdrant generating the candidates (see the module docstring)."""
        check_top_k(top_k)
        if len(self) == 0:
            return [[] for _ in range(queries.summary.shape[0])]
        position = {point_id: row for row, point_id in enumerate(self.point_ids)}
        results = []
        for row in range(queries.summary.shape[0]):
            query = queries.take(slice(row, row + 1))
            scored = self._search_one(query, min(top_k, len(self)), candidates, recall_target, position)
            best = sorted(scored.items(), key=lambda item: -item[1])[:top_k]
            results.append([SearchHit(position[p], self.entries[position[p]].path, s) for p, s in best])
        return results

    def _search_one(
        self, query: PreparedSide, top_k: int, candidates: int | None, recall_target: float, position: dict
    ) -> dict:
        """`{point id: exact score}` of every video scored for one query; the best `top_k` are the answer."""
        valid = query.weights[0] > 0
        weighted = (query.vectors[0][valid] * query.weights[0][valid].unsqueeze(-1)).tolist()

        def page(offset: int, limit: int):
            response = self.client.query_points(
                self.collection, query=weighted, limit=limit, offset=offset, with_payload=False
            )
            return [point.id for point in response.points], [point.score for point in response.points]

        def exact(point_ids: list[int]) -> torch.Tensor:
            videos = self._features(point_ids)
            return rerank_candidates(query, videos, torch.arange(len(point_ids)).unsqueeze(0))[0]

        if candidates is not None:
            point_ids, _ = page(0, max(candidates, top_k))
            return dict(zip(point_ids, exact(point_ids).tolist(), strict=True))
        z = error_quantile(recall_target, len(self))
        probe = max(PROBE, top_k)
        best_ids, best_half = page(0, probe)
        scored = dict(zip(best_ids, exact(best_ids).tolist(), strict=True))
        if len(best_ids) == len(self):
            return scored
        taken = torch.tensor([position[p] for p in best_ids])
        drawn = [self.point_ids[i] for i in draw_others(len(self), taken, min(probe, len(self) - len(taken))).tolist()]
        drawn_features = self._features(drawn)
        drawn_exact = rerank_candidates(query, drawn_features, torch.arange(len(drawn)).unsqueeze(0))[0]
        scored.update(zip(drawn, drawn_exact.tolist(), strict=True))
        halves = torch.cat([torch.tensor(best_half), half_score(query, drawn_features)])
        exacts = torch.cat([torch.tensor([scored[p] for p in best_ids]), drawn_exact])
        # WTI moves with its text-to-video half: predict it by a line fitted on the probes, so that the bound covers
        # only what the half does not explain, and fewer videos are read back and re-ranked. A line that does not
        # rise keeps the half.
        slope, intercept = fit_line(halves, exacts)
        residuals = exacts - (intercept + slope * halves)
        bound = max(float(part.mean() + z * part.std()) for part in residuals.split(len(best_ids)) if len(part) > 1)

        def reach(half: float) -> float:
            return intercept + slope * half + bound

        kth = sorted(scored.values(), reverse=True)[top_k - 1]
        offset, last_half = len(best_ids), best_half[-1]
        while offset < len(self) and reach(last_half) >= kth:
            point_ids, page_halves = page(offset, RERANK_STEP)
            if not point_ids:
                break
            new = [p for p in point_ids if p not in scored]
            if new:
                scored.update(zip(new, exact(new).tolist(), strict=True))
                kth = sorted(scored.values(), reverse=True)[top_k - 1]
            offset, last_half = offset + len(point_ids), page_halves[-1]
        return scored


def fit_line(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Least-squares `(slope, intercept)` of `y` on `x`; `(1, 0)` when the fitted slope is not positive (the reading
    order, by `x`, must also be the order of the prediction)."""
    centred = x - x.mean()
    spread = float(centred.square().sum())
    slope = float((centred * (y - y.mean())).sum()) / spread if spread > 0 else 0.0
    if slope <= 0:
        return 1.0, 0.0
    return slope, float(y.mean() - slope * x.mean())


def half_score(query: PreparedSide, videos: PreparedSide) -> torch.Tensor:
    """WTI's text-to-video half (what Qdrant's MaxSim of the weighted query gives) of one query against `videos`,
    over their real frames only, as Qdrant stores them."""
    valid = query.weights[0] > 0
    tokens, weights = query.vectors[0][valid], query.weights[0][valid]
    scores = torch.einsum("td,nfd->ntf", tokens, videos.vectors.float())
    scores = scores.masked_fill((videos.weights == 0).unsqueeze(1), float("-inf"))
    return scores.amax(dim=2) @ weights


__all__ = ["QdrantVideoIndex", "connect"]
