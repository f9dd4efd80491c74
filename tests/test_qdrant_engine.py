"""`QdrantStore` on Qdrant's real engine (`qdrant-edge-py`, in process), with the collection settings the package
writes: the same top-k and scores as qdrant-client's local mode and as exact WTI, after the engine has indexed the
collection as a server does past its indexing threshold."""

import numpy as np
import pytest
import torch
from qdrant_client import QdrantClient, models

from modeling_tvr.search import MemoryStore, VideoIndex
from modeling_tvr.search.features import PreparedSide
from modeling_tvr.search.qdrant import QdrantStore, collection_vectors_config

from .index_helpers import near_duplicates, random_side
from .qdrant_engine import EngineClient

FRAMES, WIDTH = 6, 32


class _Entry:
    """A stand-in fingerprint for features that come from no file."""

    def __init__(self, path: str):
        self.path = path


@pytest.fixture
def engine(tmp_path):
    client = EngineClient(tmp_path / "engine")
    yield client
    client.close()


@pytest.fixture(scope="module")
def collection() -> PreparedSide:
    # 2,000 near-duplicate videos: the top ten of a query are copies of one base video told apart by their frames.
    return near_duplicates(bases=40, copies=50, frames=FRAMES, dim=WIDTH, frame_noise=0.3, seed=5)


@pytest.fixture(scope="module")
def queries() -> PreparedSide:
    return random_side(6, 8, WIDTH, seed=6)


def filled_store(client, videos: PreparedSide, storage_dtype=torch.float32) -> tuple[QdrantStore, list[_Entry]]:
    entries = [_Entry(f"/videos/{i}.mp4") for i in range(len(videos.vectors))]
    store = QdrantStore.create(client, "drl_videos", (FRAMES, WIDTH), storage_dtype)
    store.append([entry.path for entry in entries], videos)
    if isinstance(client, EngineClient):
        client.optimize("drl_videos")
    return store, entries


def weighted_query(queries: PreparedSide, row: int) -> list[list[float]]:
    valid = queries.weights[row] > 0
    return (queries.vectors[row][valid] * queries.weights[row][valid].unsqueeze(-1)).tolist()


def numpy_max_sim(query: list[list[float]], videos: PreparedSide) -> np.ndarray:
    frames = videos.vectors.float().numpy()
    scores = np.einsum("td,nfd->ntf", np.asarray(query, dtype=np.float32), frames)
    scores = np.where((videos.weights.numpy() > 0)[:, None, :], scores, -np.inf)
    return scores.max(axis=2).sum(axis=1)


def test_the_package_creates_collections_with_exact_multivector_search():
    params = collection_vectors_config(WIDTH)
    assert params.hnsw_config.m == 0 and params.multivector_config.comparator == models.MultiVectorComparator.MAX_SIM
    assert collection_vectors_config(WIDTH, torch.float16).datatype == models.Datatype.FLOAT16


def test_the_engine_ranks_by_max_sim_exactly_as_local_mode_and_numpy(engine, collection, queries):
    filled_store(engine, collection)
    local = QdrantClient(location=":memory:")
    filled_store(local, collection)
    for row in range(len(queries.vectors)):
        query = weighted_query(queries, row)
        expected = numpy_max_sim(query, collection)
        top = np.argsort(-expected, kind="stable")[:10]
        for client in (engine, local):
            points = client.query_points("drl_videos", query=query, limit=10).points
            assert [point.id for point in points] == top.tolist()
            np.testing.assert_allclose([point.score for point in points], expected[top], atol=1e-6)


@pytest.mark.parametrize("storage_dtype", [torch.float32, torch.float16])
def test_an_index_on_the_engine_returns_the_exact_top_ten_as_local_mode_does(
    engine, collection, queries, storage_dtype
):
    stored = PreparedSide(collection.vectors.to(storage_dtype), collection.weights, collection.summary)
    signature = {"interaction": "wti"}
    on_engine = VideoIndex(*_index_parts(engine, stored, storage_dtype), signature)
    on_local = VideoIndex(*_index_parts(QdrantClient(location=":memory:"), stored, storage_dtype), signature)
    entries = on_engine.entries
    exact = VideoIndex(entries, MemoryStore(stored, "wti"), signature)
    expected = exact.search_prepared(queries, 10, candidates=len(entries))
    for engine_hits, local_hits, exact_hits in zip(
        on_engine.search_prepared(queries, 10), on_local.search_prepared(queries, 10), expected, strict=True
    ):
        assert [h.index for h in engine_hits] == [h.index for h in local_hits] == [h.index for h in exact_hits]
        np.testing.assert_allclose([h.score for h in engine_hits], [h.score for h in exact_hits], rtol=1e-5)
        np.testing.assert_allclose([h.score for h in local_hits], [h.score for h in exact_hits], rtol=1e-5)


def _index_parts(client, videos: PreparedSide, storage_dtype):
    store, entries = filled_store(client, videos, storage_dtype)
    return entries, store


def test_a_collection_with_a_graph_is_switched_to_exact_search_when_its_index_loads(
    engine, collection, queries, caplog, tmp_path
):
    # A collection created without the package's settings: the engine builds an HNSW graph over the multivectors
    # when it indexes the collection, and its MaxSim ranking is approximate.
    graph_on = collection_vectors_config(WIDTH).model_copy(update={"hnsw_config": None})
    engine.create_collection("drl_videos", vectors_config=graph_on)
    store = QdrantStore(engine, "drl_videos", (FRAMES, WIDTH))
    store.append([f"/videos/{i}.mp4" for i in range(len(collection.vectors))], collection)
    QdrantStore.from_saved(store.saved(), tmp_path, engine)
    assert engine.params["drl_videos"].hnsw_config.m == 0
    assert "switching it to exact search" in caplog.text
    engine.optimize("drl_videos")
    for row in range(len(queries.vectors)):
        query = weighted_query(queries, row)
        expected = numpy_max_sim(query, collection)
        points = engine.query_points("drl_videos", query=query, limit=10).points
        assert [point.id for point in points] == np.argsort(-expected, kind="stable")[:10].tolist()


def test_an_index_on_the_engine_searched_through_frame_lists_returns_the_exact_top_ten(
    engine, collection, queries, monkeypatch
):
    from modeling_tvr.search import frame_lists, sketch_kmeans

    # The lists take over from 50,000 videos; here from the first, sized for 2,000 videos.
    monkeypatch.setattr(frame_lists, "MIN_VIDEOS", 0)
    monkeypatch.setattr(sketch_kmeans, "FRAMES_PER_LIST", 16)
    monkeypatch.setattr(frame_lists, "FIRST_WAVE_FRAMES", 512)
    signature = {"interaction": "wti"}
    on_engine = VideoIndex(*_index_parts(engine, collection, torch.float32), signature)
    exact = VideoIndex(on_engine.entries, MemoryStore(collection, "wti"), signature)
    expected = exact.search_prepared(queries, 10, candidates=len(on_engine.entries))
    on_engine.store.videos_fetched = 0
    for engine_hits, exact_hits in zip(on_engine.search_prepared(queries, 10), expected, strict=True):
        assert [h.index for h in engine_hits] == [h.index for h in exact_hits]
        np.testing.assert_allclose([h.score for h in engine_hits], [h.score for h in exact_hits], rtol=1e-5)
    assert on_engine.store._sketch._lists is not None  # the search went through the lists
    assert on_engine.store.videos_fetched < len(on_engine.entries) * len(queries.vectors) / 2
