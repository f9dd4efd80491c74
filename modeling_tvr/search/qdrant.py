"""`VideoIndex` on Qdrant: the frame vectors live in a Qdrant collection, for collections beyond one machine.

    from qdrant_client import QdrantClient
    client = QdrantClient(url="http://qdrant:6333")          # or QdrantClient(":memory:") / QdrantClient(path=...)
    index = QdrantVideoIndex.build(model, processor, videos, path="my_index", client=client, collection="clips")
    index.search(["a dog catches a frisbee"])                   # a VideoIndex: add, remove, refresh, save, search
    index = QdrantVideoIndex.load("my_index", model, processor, client=client)

`QdrantVideoIndex` makes `VideoIndex`es whose store is a `QdrantStore`. Each video is one point: its real frames as a
multivector compared by MaxSim, its frame weights and path as payload. The index folder keeps what it keeps for
`VideoIndex` (videos, fingerprints, failures, model signature), the point id of each video, and what the search runs
on in this process: each video's frame weights and the frame sketch of `sketch.py` (its top principal directions in
bfloat16, 1.5 KB a video of 12 frames, against 24 KB of float32 frame vectors in the collection).

A search runs `sketch.py`'s rule here and fetches from Qdrant only the videos it scores exactly: its probes and the
videos whose sketch score plus the measured bound reaches the k-th exact score (BENCHMARKS.md: vectors fetched per
query). The collection is the store of the vectors, served by id, so an index larger than one machine's memory
holds only the sketch. `search(..., candidates=N)` instead lets Qdrant rank the whole collection by WTI's
text-to-video half (`sum_t w_t max_f cos(q_t, v_f)` is the MaxSim of the weighted query vectors `w_t q_t`, the WTI
weights being positive) and scores its best N exactly.

Collections are created by `collection_vectors_config`: exact MaxSim (no HNSW graph), float32 or float16 vectors.
Only the `wti` and `ti` interactions are supported (a `dp` index is one vector per video: use `VideoIndex`).
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from . import frame_lists
from .encoding import EncodeOptions, empty_features
from .features import PreparedSide, rerank_candidates, weighted_summary
from .index import VideoIndex, sync_index
from .saved_index import read_saved_index
from .signature import IndexMismatchError
from .sketch import FrameSketch, adaptive_search
from .storage import IndexCorruptError
from .store import Ranking, SavedFeatures

logger = logging.getLogger(__name__)

DEFAULT_COLLECTION = "drl_videos"
ENGINE = "qdrant"
# Points written per upsert call.
UPSERT_BATCH = 256
# Frame vector dtypes a collection can store, by the name Qdrant gives them.
STORAGE_DATATYPES = {torch.float32: "float32", torch.float16: "float16"}


def collection_vectors_config(width: int, storage_dtype: torch.dtype = torch.float32):
    """The vector settings of every collection this package creates.

    One multivector per point (a video's real frames), compared by MaxSim over dot products (the frames are unit
    vectors). The HNSW graph is switched off (`m=0`), as Qdrant's multivector guides advise: a server builds one
    once a segment passes its indexing threshold, and over multivectors its ranking is approximate, while the exact
    re-rank can only re-score what the ranking hands it. Without the graph every query scans the collection
    exactly.

    Args:
        width (`int`): the frame vectors' width.
        storage_dtype (`torch.dtype`, *optional*, defaults to `torch.float32`): `torch.float16` halves the memory
            a server holds per frame.

    Returns:
        `qdrant_client.models.VectorParams`: the collection's `vectors_config`.
    """
    from qdrant_client import models

    return models.VectorParams(
        size=width,
        distance=models.Distance.DOT,
        multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
        hnsw_config=models.HnswConfigDiff(m=0),
        datatype=models.Datatype(STORAGE_DATATYPES[storage_dtype]),
    )


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


def collection_exists(client, collection: str) -> bool:
    """`client.collection_exists(collection)`, the first request an index makes: a server that cannot be reached is
    named with its address and what to check, instead of the HTTP client's bare "Connection refused".

    Raises:
        ConnectionError: If the server does not answer.
    """
    from qdrant_client.http.exceptions import ResponseHandlingException

    try:
        return client.collection_exists(collection)
    except ResponseHandlingException as error:
        address = getattr(getattr(client, "_client", None), "rest_uri", "the Qdrant server")
        raise ConnectionError(
            f"Cannot reach the Qdrant server at {address} ({error}): start it, or check the URL, port and network; "
            "the index was not changed."
        ) from error


class QdrantVideoIndex:
    """Makes `VideoIndex`es whose frame vectors are stored in and searched by Qdrant; see the module docstring.

    `build`, `load` and `sync` take `VideoIndex`'s arguments plus `client` (a `QdrantClient`, a URL, a folder, or
    None for memory) and `collection` (the collection name; `load` defaults to the one the index recorded). The
    index they return holds its `QdrantStore` as `index.store`.
    """

    @staticmethod
    def build(
        model,
        processor,
        videos: Iterable[str | os.PathLike],
        *,
        client=None,
        collection: str = DEFAULT_COLLECTION,
        **build_options,
    ) -> VideoIndex:
        """`VideoIndex.build` into a new Qdrant collection.

        Args:
            model (`DRLModel`): a `wti` or `ti` model.
            processor (`DRLProcessor`): its processor.
            videos (`Iterable[str | os.PathLike]`): the video files.
            client (`QdrantClient`, `str` or `os.PathLike`, *optional*): where the collection is (see `connect`).
            collection (`str`, *optional*, defaults to `"drl_videos"`): its name; it must hold no points.
            build_options: the other keyword arguments of `VideoIndex.build`; `storage_dtype=torch.float16` stores
                the collection's vectors in half precision (see `collection_vectors_config`).
        """
        if model.config.interaction == "dp":
            raise ValueError("QdrantVideoIndex serves the wti and ti interactions; index a dp model with VideoIndex.")
        frames, width = empty_features(model, processor, torch.float32).vectors.shape[1:]
        storage_dtype = build_options.pop("storage_dtype", torch.float32)
        if "store" in build_options:
            raise TypeError("QdrantVideoIndex.build makes its own store; call VideoIndex.build to pass one.")
        # Options are checked before the collection is created: a typo must not leave an empty collection behind.
        arguments = inspect.signature(VideoIndex.build).bind(model, processor, videos, **build_options)
        arguments.apply_defaults()
        # The options VideoIndex.build hands EncodeOptions, checked by the same dataclass (no list kept here).
        names = {field.name for field in dataclasses.fields(EncodeOptions)} & set(arguments.arguments)
        EncodeOptions(
            **{name: arguments.arguments[name] for name in names - {"storage_dtype"}}, storage_dtype=storage_dtype
        )
        store = QdrantStore.create(connect(client), collection, (frames, width), storage_dtype)
        return VideoIndex.build(model, processor, videos, store=store, **build_options)

    @staticmethod
    def load(
        path: str | os.PathLike,
        model=None,
        processor=None,
        root: str | os.PathLike | None = None,
        *,
        client=None,
        collection: str | None = None,
    ) -> VideoIndex:
        """`VideoIndex.load` of an index whose vectors are in Qdrant.

        Args:
            path (`str` or `os.PathLike`): the index folder.
            model (`DRLModel`, *optional*): the model to search with (checked against the index's).
            processor (`DRLProcessor`, *optional*): its processor.
            root (`str` or `os.PathLike`, *optional*): if given, every indexed video must lie under this folder.
            client (`QdrantClient`, `str` or `os.PathLike`, *optional*): where the collection is (see `connect`).
            collection (`str`, *optional*): the collection, if not the one the index recorded.

        Raises:
            IndexCorruptError: the collection does not hold the index's points.
            IndexMismatchError: the index keeps its vectors in its folder (`VideoIndex.load` reads it), or the model
                differs from the index's.
        """
        saved = read_saved_index(path, root=root)
        if saved.engine != ENGINE:
            raise IndexMismatchError(
                f"The video index at {path} keeps its vectors in its folder, not in Qdrant; load it with "
                "VideoIndex.load(path, model, processor)."
            )
        store = QdrantStore.from_saved(saved.features, saved.path, connect(client), collection)
        return VideoIndex.from_saved(saved, store, model, processor)

    @staticmethod
    def sync(
        path: str | os.PathLike,
        model,
        processor,
        videos: Iterable[str | os.PathLike],
        root: str | os.PathLike | None = None,
        *,
        client=None,
        collection: str | None = None,
        **build_options,
    ) -> VideoIndex:
        """`VideoIndex.sync` with the vectors in Qdrant (`collection` defaults as in `build` and `load`)."""
        client = connect(client)
        return sync_index(
            path,
            videos,
            load=lambda: QdrantVideoIndex.load(path, model, processor, root, client=client, collection=collection),
            build=lambda: QdrantVideoIndex.build(
                model,
                processor,
                videos,
                path=path,
                client=client,
                collection=collection or DEFAULT_COLLECTION,
                **build_options,
            ),
            build_options=build_options,
        )


class QdrantStore:
    """A Qdrant collection holding an index's frame vectors, one point per video; implements `store.VideoStore`.

    Args:
        client (`QdrantClient`): the connection.
        collection (`str`): the collection's name.
        shape (`tuple[int, int]`): `(frames, width)` of a video's features (frames are zero-padded on reading).
        point_ids (`Sequence[int]`, *optional*): the point id of each row.
        next_point_id (`int`, *optional*, defaults to 0): the id the next appended video gets.
        storage_dtype (`torch.dtype`, *optional*, defaults to `torch.float32`): the collection's vector dtype.
        frame_weights (`torch.Tensor`, *optional*): `[N, frames]`, each row's frame weights, kept here for the sketch
            search; read from the collection when missing.
        sketch (`FrameSketch`, *optional*): the sketch of the rows' frame vectors; built from the collection when
            missing.
    """

    def __init__(
        self,
        client,
        collection: str,
        shape: tuple[int, int],
        point_ids: Sequence[int] = (),
        next_point_id: int = 0,
        storage_dtype: torch.dtype = torch.float32,
        frame_weights: torch.Tensor | None = None,
        sketch: FrameSketch | None = None,
    ):
        if storage_dtype not in STORAGE_DATATYPES:
            raise ValueError(f"A Qdrant store keeps float32 or float16 vectors, not {storage_dtype}.")
        self.client, self.collection = client, collection
        self.shape = (int(shape[0]), int(shape[1]))
        self.point_ids = list(point_ids)
        self.next_point_id = next_point_id
        self._storage_dtype = storage_dtype
        if frame_weights is None and not self.point_ids:
            frame_weights = torch.zeros(0, self.shape[0])
        self._frame_weights, self._sketch = frame_weights, sketch
        # Videos (points with their frame vectors) read back from the collection so far: what searches cost in transfer.
        self.videos_fetched = 0

    @classmethod
    def create(
        cls, client, collection: str, shape: tuple[int, int], storage_dtype: torch.dtype = torch.float32
    ) -> QdrantStore:
        """A store over a new collection (an empty one of that name is replaced; one holding points is refused).

        Args:
            client (`QdrantClient`): the connection.
            collection (`str`): the collection's name.
            shape (`tuple[int, int]`): frames per video and vector width.
            storage_dtype (`torch.dtype`, *optional*, defaults to `torch.float32`): `torch.float16` halves the
                server's memory; vectors are rounded before they are sent, so the server and the exact re-rank score
                the same numbers.
        """
        if collection_exists(client, collection):
            points = client.count(collection).count
            if points:
                raise ValueError(
                    f"The Qdrant collection {collection!r} already holds {points} points; build into a new "
                    "collection, delete that one, or load the index that owns it (QdrantVideoIndex.load)."
                )
            client.delete_collection(collection)
        client.create_collection(collection, vectors_config=collection_vectors_config(int(shape[1]), storage_dtype))
        return cls(client, collection, shape, storage_dtype=storage_dtype)

    @classmethod
    def from_saved(cls, saved: SavedFeatures, path: Path, client, collection: str | None = None) -> QdrantStore:
        """The store `saved()` wrote, checked against the collection it names (or `collection`)."""
        collection = collection or saved.manifest.get("collection", DEFAULT_COLLECTION)
        point_ids = saved.tensors["point_ids"].tolist()
        next_point_id = saved.manifest.get("next_point_id", max(point_ids, default=-1) + 1)
        dtype = getattr(torch, saved.manifest.get("storage_dtype", "float32"))
        tensors = saved.tensors
        sketch = None
        if "frame_weights" in tensors:
            sketch = FrameSketch.from_saved(tensors, saved.shared, tensors["frame_weights"])
        store = cls(
            client,
            collection,
            saved.manifest.get("shape", (0, 0)),
            point_ids,
            next_point_id,
            dtype,
            tensors.get("frame_weights"),
            sketch,
        )
        found = client.count(collection).count if collection_exists(client, collection) else None
        if found != len(point_ids):
            raise IndexCorruptError(
                path,
                f"it lists {len(point_ids)} videos in the Qdrant collection {collection!r}, which "
                + ("does not exist" if found is None else f"holds {found} points")
                + " (another client, or the wrong collection or server)",
            )
        store.turn_off_graph_index()
        return store

    def turn_off_graph_index(self) -> None:
        """Switches off an HNSW graph over the collection's multivectors (collections created without
        `collection_vectors_config`): once a server builds one, its MaxSim ranking is approximate and the exact
        re-rank misses videos it never sees."""
        from qdrant_client import models

        graph = self.client.get_collection(self.collection).config.params.vectors.hnsw_config
        if graph is None or graph.m != 0:
            logger.warning(
                "The Qdrant collection %r builds an HNSW graph over its multivectors, whose ranking is approximate; "
                "switching it to exact search (hnsw_config m=0).",
                self.collection,
            )
            self.client.update_collection(
                self.collection, vectors_config={"": models.VectorParamsDiff(hnsw_config=models.HnswConfigDiff(m=0))}
            )

    def __len__(self) -> int:
        return len(self.point_ids)

    @property
    def storage_dtype(self) -> torch.dtype:
        return self._storage_dtype

    def append(self, paths: Sequence[str], videos: PreparedSide) -> None:
        from qdrant_client import models

        first_videos = not self.point_ids
        ids = list(range(self.next_point_id, self.next_point_id + len(paths)))
        for start in range(0, len(paths), UPSERT_BATCH):
            points = []
            for offset in range(start, min(start + UPSERT_BATCH, len(paths))):
                valid = videos.weights[offset] > 0
                points.append(
                    models.PointStruct(
                        id=ids[offset],
                        vector=videos.vectors[offset][valid].float().tolist(),
                        payload={"path": paths[offset], "weights": videos.weights[offset][valid].tolist()},
                    )
                )
            self.client.upsert(self.collection, points=points, wait=True)
        self.point_ids.extend(ids)
        self.next_point_id += len(paths)
        # The local state follows the collection; where it is not held yet, it is read whole when first needed.
        if self._frame_weights is not None:
            self._frame_weights = torch.cat([self._frame_weights, videos.weights.float()])
        if self._sketch is not None:
            self._sketch = self._sketch.extended(videos.vectors, videos.weights)
        elif first_videos:  # a build appends all its videos at once: their directions, with no read back
            self._sketch = FrameSketch.build(videos)

    def take(self, rows: torch.Tensor) -> None:
        from qdrant_client import models

        kept = [self.point_ids[i] for i in rows.tolist()]
        dropped = sorted(set(self.point_ids) - set(kept))
        if dropped:
            self.client.delete(self.collection, points_selector=models.PointIdsList(points=dropped), wait=True)
        self.point_ids = kept
        if self._frame_weights is not None:
            self._frame_weights = self._frame_weights[rows]
        if self._sketch is not None:
            self._sketch = self._sketch.take(rows)

    def _local_state(self) -> tuple[torch.Tensor, FrameSketch]:
        """The frame weights and the sketch the search runs on here, read from the collection the first time
        (an index saved without them, or a sketch not built yet: one full read, then kept and saved)."""
        if self._frame_weights is None or self._sketch is None:
            logger.info(
                "Reading the %d videos of Qdrant collection %r to build the search sketch.", len(self), self.collection
            )
            videos = self._features(self.point_ids)
            self._frame_weights, self._sketch = videos.weights, FrameSketch.build(videos)
        return self._frame_weights, self._sketch

    def features(self) -> PreparedSide:
        return self._features(self.point_ids)

    def saved(self) -> SavedFeatures:
        """The point ids, and the frame weights and sketch the search runs on (built here if no search built them
        yet, so that a loaded index searches without reading the collection)."""
        tensors = {"point_ids": torch.tensor(self.point_ids, dtype=torch.long)}
        shared = {}
        if self.point_ids:
            frame_weights, sketch = self._local_state()
            if len(self.point_ids) >= frame_lists.MIN_VIDEOS:
                sketch.frame_lists(frame_weights)
            sketch_tensors, shared = sketch.saved()
            tensors |= {"frame_weights": frame_weights} | sketch_tensors
        return SavedFeatures(
            tensors,
            shared=shared,
            manifest={
                "engine": ENGINE,
                "collection": self.collection,
                "next_point_id": self.next_point_id,
                "shape": list(self.shape),
                "storage_dtype": str(self._storage_dtype).removeprefix("torch."),
            },
        )

    def _features(self, point_ids: Sequence[int]) -> PreparedSide:
        """The prepared features of `point_ids` from Qdrant, zero-padded to the index's frame count."""
        frames, width = self.shape
        self.videos_fetched += len(point_ids)
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
    def search(self, queries: PreparedSide, top_k: int, candidates: int | None, recall_target: float) -> list[Ranking]:
        """The sketch search held here, fetching only the videos it scores exactly; with `candidates`, Qdrant's
        MaxSim ranking gives that many candidates (see the module docstring)."""
        rankings = []
        for row in range(queries.summary.shape[0]):
            query = queries.take(slice(row, row + 1))
            if candidates is None:
                scores, rows = self._sketch_search(query, min(top_k, len(self)), recall_target)
            else:
                scores, rows = self._engine_candidates(query, min(top_k, len(self)), candidates)
            rankings.append(Ranking(scores, rows))
        return rankings

    def _score_rows(self, query: PreparedSide, rows: torch.Tensor) -> torch.Tensor:
        """Exact WTI of one query against the videos at `rows`, their vectors fetched from the collection."""
        videos = self._features([self.point_ids[row] for row in rows.tolist()])
        return rerank_candidates(query, videos, torch.arange(len(rows)).unsqueeze(0))[0]

    def _sketch_search(self, query: PreparedSide, top_k: int, recall_target: float) -> tuple[list, list]:
        frame_weights, sketch = self._local_state()
        # The vectors stay in the collection: the search reads only the frame weights, and fetches what it scores.
        held_here = PreparedSide(torch.empty(0), frame_weights, torch.empty(0))
        scores, rows, _ = adaptive_search(
            query, held_here, sketch, top_k, recall_target, lambda rows: self._score_rows(query, rows)
        )
        return scores.tolist(), rows.tolist()

    def _engine_candidates(self, query: PreparedSide, top_k: int, candidates: int) -> tuple[list, list]:
        """Qdrant ranks the collection by WTI's text-to-video half (MaxSim of the weighted query vectors); its best
        `candidates` are scored exactly here."""
        valid = query.weights[0] > 0
        weighted = (query.vectors[0][valid] * query.weights[0][valid].unsqueeze(-1)).tolist()
        response = self.client.query_points(
            self.collection, query=weighted, limit=max(candidates, top_k), with_payload=False
        )
        position = {point_id: row for row, point_id in enumerate(self.point_ids)}
        rows = torch.tensor([position[point.id] for point in response.points], dtype=torch.long)
        scores = self._score_rows(query, rows)
        best = scores.topk(min(top_k, len(rows)))
        return best.values.tolist(), rows[best.indices].tolist()


__all__ = ["QdrantStore", "QdrantVideoIndex", "collection_vectors_config", "connect"]
