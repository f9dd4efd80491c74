"""Qdrant's own engine in this process (the `qdrant-edge-py` wheel embeds the Rust engine a server runs), behind the
part of `QdrantClient`'s API that `QdrantStore` calls, so that an index runs on the real engine instead of
qdrant-client's local mode (a NumPy re-implementation that never builds an HNSW graph).

The collection settings `QdrantStore` asks for are carried over to the engine field by field; a setting this module
does not know fails the test that meets it, so the engine tests always run with the settings the package writes.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import qdrant_edge as edge
from qdrant_client import models

# Segments are indexed (HNSW built, where the settings ask for it) past this many vectors, as a server does past its
# indexing threshold; small, so that a test's small collection crosses it.
INDEXING_THRESHOLD_KB = 10
# Graph settings a server applies by default when a collection gives none (Qdrant's defaults).
SERVER_DEFAULT_GRAPH = {"m": 16, "ef_construct": 100}


def engine_vector_params(params: models.VectorParams) -> edge.EdgeVectorParams:
    """The engine's vector settings for the `VectorParams` a collection was created with; fails on any setting that
    this module does not carry over."""
    carried = {"size", "distance", "multivector_config", "hnsw_config", "datatype"}
    unknown = {name for name, value in params if value is not None and name not in carried}
    assert not unknown, f"QdrantStore writes collection settings the engine tests do not carry over: {unknown}"
    assert params.distance == models.Distance.DOT, params.distance
    assert params.multivector_config.comparator == models.MultiVectorComparator.MAX_SIM
    graph = dict(SERVER_DEFAULT_GRAPH)
    if params.hnsw_config is not None:
        given = {name: value for name, value in params.hnsw_config if value is not None}
        unknown_graph = set(given) - {"m", "ef_construct"}
        assert not unknown_graph, f"graph settings the engine tests do not carry over: {unknown_graph}"
        graph.update(given)
    datatype = {
        None: None,
        models.Datatype.FLOAT32: edge.VectorStorageDatatype.Float32,
        models.Datatype.FLOAT16: edge.VectorStorageDatatype.Float16,
    }[params.datatype]
    return edge.EdgeVectorParams(
        size=params.size,
        distance=edge.Distance.Dot,
        multivector_config=edge.MultiVectorConfig(comparator=edge.MultiVectorComparator.MaxSim),
        # full_scan_threshold (KB) below a test collection's size: searches use the graph, as on a server's
        # large segments.
        hnsw_config=edge.HnswIndexConfig(m=graph["m"], ef_construct=graph["ef_construct"], full_scan_threshold=1),
        datatype=datatype,
    )


class EngineClient:
    """Collections served by Qdrant's engine in process, one edge shard each under `folder`.

    Args:
        folder (`Path`): where the shards' files go.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.shards: dict[str, edge.EdgeShard] = {}
        self.params: dict[str, models.VectorParams] = {}

    def _config(self, name: str) -> edge.EdgeConfig:
        return edge.EdgeConfig(
            vectors={"": engine_vector_params(self.params[name])},
            optimizers=edge.EdgeOptimizersConfig(indexing_threshold=INDEXING_THRESHOLD_KB, default_segment_number=1),
        )

    def collection_exists(self, name: str) -> bool:
        return name in self.shards

    def create_collection(self, name: str, vectors_config: models.VectorParams) -> None:
        self.params[name] = vectors_config
        self.shards[name] = edge.EdgeShard.create(str(self.folder / name), self._config(name))

    def delete_collection(self, name: str) -> None:
        self.shards.pop(name).close()
        shutil.rmtree(self.folder / name)

    def get_collection(self, name: str):
        return SimpleNamespace(config=SimpleNamespace(params=SimpleNamespace(vectors=self.params[name])))

    def update_collection(self, name: str, vectors_config: dict) -> None:
        (diff,) = vectors_config.values()
        graph = (self.params[name].hnsw_config or models.HnswConfigDiff()).model_copy(
            update={key: value for key, value in diff.hnsw_config if value is not None}
        )
        self.params[name] = self.params[name].model_copy(update={"hnsw_config": graph})
        self.shards[name].close()
        # Loading with a config overwrites the stored one; the next optimisation rebuilds the segments under it.
        self.shards[name] = edge.EdgeShard.load(str(self.folder / name), self._config(name))

    def count(self, name: str):
        return SimpleNamespace(count=self.shards[name].count(edge.CountRequest(exact=True)))

    def upsert(self, name: str, points: list[models.PointStruct], wait: bool = True) -> None:
        operation = edge.UpdateOperation.upsert_points([edge.Point(p.id, p.vector, p.payload) for p in points])
        self.shards[name].update(operation)

    def delete(self, name: str, points_selector: models.PointIdsList, wait: bool = True) -> None:
        self.shards[name].update(edge.UpdateOperation.delete_points(list(points_selector.points)))

    def retrieve(self, name: str, ids: list[int], with_payload=True, with_vectors: bool = False) -> list:
        return self.shards[name].retrieve(list(ids), with_payload=bool(with_payload), with_vector=with_vectors)

    def query_points(self, name: str, query: list, limit: int, offset: int = 0, with_payload: bool = False):
        request = edge.QueryRequest(
            limit=limit, offset=offset, query=edge.Query.Nearest(query), with_payload=with_payload
        )
        return SimpleNamespace(points=self.shards[name].query(request))

    def optimize(self, name: str) -> None:
        """Builds what a server builds in the background once the collection passes the indexing threshold."""
        self.shards[name].optimize()

    def close(self) -> None:
        for shard in self.shards.values():
            shard.close()
