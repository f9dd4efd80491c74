"""QdrantVideoIndex: what is Qdrant's own (both search modes, the collection in step, sync, refusals) in its in-process
local mode, and the same rankings as the in-memory index. The behaviours every store shares run on Qdrant in
test_index.py (`conftest.index_api`)."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from qdrant_client import QdrantClient

from modeling_tvr.search import IndexCorruptError, IndexMismatchError, MemoryStore, QdrantVideoIndex, VideoIndex
from modeling_tvr.search.qdrant import QdrantStore
from modeling_tvr.search.store import SavedFeatures

from .helpers import tiny_model_for
from .index_helpers import QUERIES, exhaustive, near_duplicates, random_side, write_clip


@pytest.fixture
def client():
    return QdrantClient(location=":memory:")


def test_both_search_modes_return_the_models_own_similarity_ranking(index_setup, client):
    model, processor, videos, _ = index_setup
    index = QdrantVideoIndex.build(model, processor, videos, batch_size=3, show_progress=False, client=client)
    expected = exhaustive(model, processor, QUERIES, videos)
    for hits_of_query in (index.search(QUERIES, top_k=5), index.search(QUERIES, top_k=5, candidates=len(videos))):
        for row, hits in enumerate(hits_of_query):
            scores, order = expected[row].topk(5)
            assert [h.video for h in hits] == [videos[i] for i in order.tolist()]
            np.testing.assert_allclose([h.score for h in hits], scores.numpy(), rtol=1e-5, atol=1e-6)
    assert client.count("drl_videos").count == len(videos)


def test_same_ranking_as_the_in_memory_index_on_a_larger_collection(client):
    # The engine path end to end on 2,000 near-duplicate videos: its candidates, paging and exact re-ranking.
    videos = near_duplicates(bases=40, copies=50, frames=6, dim=32, frame_noise=0.3, seed=5)
    queries = random_side(6, 8, 32, seed=6)
    entries = [_Entry(f"/videos/{i}.mp4") for i in range(len(videos.vectors))]
    signature = {"interaction": "wti"}
    store = QdrantStore.create(client, "drl_videos", shape=(6, 32))
    store.append([entry.path for entry in entries], videos)
    engine = VideoIndex(entries, store, signature)
    memory = VideoIndex(entries, MemoryStore(videos, "wti"), signature)
    for engine_hits, memory_hits in zip(
        engine.search_prepared(queries, 10), memory.search_prepared(queries, 10, candidates=len(entries)), strict=True
    ):
        assert [h.index for h in engine_hits] == [h.index for h in memory_hits]
        np.testing.assert_allclose([h.score for h in engine_hits], [h.score for h in memory_hits], rtol=1e-5)


class _Entry:
    """A stand-in fingerprint for features that come from no file."""

    def __init__(self, path: str):
        self.path = path


def test_save_load_add_remove_refresh_keep_qdrant_and_the_folder_in_step(index_setup, tmp_path):
    model, processor, _, _ = index_setup
    clips = [str(write_clip(tmp_path / f"v{i}.mp4", seed=20 + i)) for i in range(5)]
    client = QdrantClient(path=str(tmp_path / "qdrant"))  # local mode on disk: what a restart finds again
    index = QdrantVideoIndex.build(
        model, processor, clips[:3], path=tmp_path / "idx", show_progress=False, client=client, collection="clips"
    )
    loaded = QdrantVideoIndex.load(tmp_path / "idx", model, processor, client=client)
    assert loaded.store.collection == "clips" and loaded.paths == clips[:3]
    assert loaded.search(QUERIES) == index.search(QUERIES)
    torch.testing.assert_close(loaded.videos.vectors, VideoIndex.build(model, processor, clips[:3]).videos.vectors)

    assert loaded.add(clips) == 2
    assert loaded.remove([clips[0]]) == 1
    write_clip(Path(clips[2]), seed=99)  # new content
    os.remove(clips[4])
    assert loaded.refresh(clips[1:4]) == {"removed": 1, "reencoded": 1, "added": 0}
    assert loaded.paths == clips[1:4]
    assert client.count("clips").count == 3
    fresh = VideoIndex.build(model, processor, loaded.paths, show_progress=False)
    torch.testing.assert_close(loaded.videos.vectors, fresh.videos.vectors)
    expected = exhaustive(model, processor, QUERIES, loaded.paths)
    for row, hits in enumerate(loaded.search(QUERIES, top_k=3)):
        assert [h.index for h in hits] == expected[row].topk(3).indices.tolist()
    loaded.save(tmp_path / "idx")
    assert QdrantVideoIndex.load(tmp_path / "idx", model, processor, client=client).paths == clips[1:4]


def test_sync_builds_then_refreshes_through_qdrant(index_setup, tmp_path, client):
    model, processor, videos, _ = index_setup
    first = QdrantVideoIndex.sync(tmp_path / "idx", model, processor, videos[:2], client=client, show_progress=False)
    again = QdrantVideoIndex.sync(tmp_path / "idx", model, processor, videos[:4], client=client)
    assert first.paths == videos[:2] and again.paths == videos[:4]
    assert client.count("drl_videos").count == 4


def test_undecodable_videos_are_reported_and_never_reach_qdrant(index_setup, tmp_path, client):
    model, processor, videos, _ = index_setup
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    index = QdrantVideoIndex.build(model, processor, [videos[0], str(broken)], show_progress=False, client=client)
    assert index.paths == [videos[0]] and set(index.failed) == {str(broken)}
    assert client.count("drl_videos").count == 1


def test_mismatches_are_refused_by_name(index_setup, tmp_path, client):
    model, processor, videos, _ = index_setup
    QdrantVideoIndex.build(model, processor, videos[:2], path=tmp_path / "idx", show_progress=False, client=client)
    with pytest.raises(IndexMismatchError, match="QdrantVideoIndex.load"):
        VideoIndex.load(tmp_path / "idx", model, processor)  # the vectors are not in the folder
    with pytest.raises(IndexCorruptError, match="other"):
        QdrantVideoIndex.load(tmp_path / "idx", model, processor, client=client, collection="other")
    with pytest.raises(ValueError, match="already holds 2 points"):
        QdrantVideoIndex.build(model, processor, videos[:1], show_progress=False, client=client)
    with pytest.raises(IndexMismatchError, match="another model"):
        QdrantVideoIndex.load(tmp_path / "idx", model.__class__(model.config).eval(), processor, client=client)
    VideoIndex.build(model, processor, videos[:1], path=tmp_path / "memory", show_progress=False)
    with pytest.raises(IndexMismatchError, match="VideoIndex.load"):
        QdrantVideoIndex.load(tmp_path / "memory", model, processor, client=client)  # the vectors are in the folder
    dp_model = tiny_model_for(processor.tokenizer, interaction="dp")
    with pytest.raises(ValueError, match="index a dp model with VideoIndex"):
        QdrantVideoIndex.build(dp_model, processor, videos[:1], show_progress=False, client=client)


def test_a_search_fetches_from_the_collection_only_the_videos_it_scores_exactly(client):
    # 20,000 near-duplicate videos: the sketch search held here asks the collection for its probes and the few
    # videos its bound cannot rule out, not for the collection.
    videos = near_duplicates(bases=200, copies=100, frames=6, dim=32, frame_noise=0.3, seed=5)
    queries = random_side(4, 8, 32, seed=6)
    entries = [_Entry(f"/videos/{i}.mp4") for i in range(len(videos.vectors))]
    store = QdrantStore.create(client, "drl_videos", shape=(6, 32))
    store.append([entry.path for entry in entries], videos)
    engine = VideoIndex(entries, store, {"interaction": "wti"})
    memory = VideoIndex(entries, MemoryStore(videos, "wti"), {"interaction": "wti"})
    engine.search_prepared(queries.take(slice(0, 1)), 10)  # the sketch is built from one read of the collection
    for row in range(len(queries.vectors)):
        query = queries.take(slice(row, row + 1))
        store.videos_fetched = 0
        hits = engine.search_prepared(query, 10)[0]
        assert store.videos_fetched <= 0.03 * len(entries)
        expected = memory.search_prepared(query, 10, candidates=len(entries))[0]
        assert [h.index for h in hits] == [h.index for h in expected]
        np.testing.assert_allclose([h.score for h in hits], [h.score for h in expected], rtol=1e-5)


def test_a_saved_index_searches_without_reading_the_collection_again(client, tmp_path):
    videos = near_duplicates(bases=20, copies=50, frames=6, dim=32, frame_noise=0.3, seed=5)
    entries = [_Entry(f"/videos/{i}.mp4") for i in range(len(videos.vectors))]
    store = QdrantStore.create(client, "drl_videos", shape=(6, 32))
    store.append([entry.path for entry in entries], videos)
    saved = store.saved()
    assert store.videos_fetched == 0  # the sketch comes from the vectors appended, not from reading them back
    assert saved.tensors["sketch_frames"].shape[0] == len(entries)
    loaded = QdrantStore.from_saved(saved, tmp_path, client)
    query = random_side(1, 8, 32, seed=6)
    loaded.search(query, 10, None, 0.999)
    assert loaded.videos_fetched < len(entries)  # probes and candidates only, no full read for a sketch


def test_a_float16_collection_is_created_half_size_and_ranks_as_exact_wti(index_setup, client, tmp_path):
    model, processor, videos, _ = index_setup
    index = QdrantVideoIndex.build(
        model,
        processor,
        videos,
        path=tmp_path / "index",
        show_progress=False,
        client=client,
        storage_dtype=torch.float16,
    )
    assert index.storage_dtype == torch.float16
    params = client.get_collection("drl_videos").config.params.vectors
    assert params.datatype.value == "float16" and params.hnsw_config.m == 0
    loaded = QdrantVideoIndex.load(tmp_path / "index", model, processor, client=client)
    assert loaded.storage_dtype == torch.float16
    expected = exhaustive(model, processor, QUERIES, videos)
    for row, hits in enumerate(loaded.search(QUERIES, top_k=3)):
        assert [h.video for h in hits] == [videos[i] for i in expected[row].topk(3).indices.tolist()]


def test_an_index_saved_without_a_sketch_reads_the_collection_once_then_searches_exactly(client, tmp_path):
    # An index folder holding only point ids (as Qdrant indexes were saved before the sketch was kept with them).
    videos = near_duplicates(bases=20, copies=50, frames=6, dim=32, frame_noise=0.3, seed=5)
    entries = [_Entry(f"/videos/{i}.mp4") for i in range(len(videos.vectors))]
    QdrantStore.create(client, "drl_videos", shape=(6, 32)).append([entry.path for entry in entries], videos)
    ids_only = SavedFeatures(
        {"point_ids": torch.arange(len(entries))}, manifest={"collection": "drl_videos", "shape": [6, 32]}
    )
    store = QdrantStore.from_saved(ids_only, tmp_path, client)
    queries = random_side(3, 8, 32, seed=6)
    engine = VideoIndex(entries, store, {"interaction": "wti"})
    memory = VideoIndex(entries, MemoryStore(videos, "wti"), {"interaction": "wti"})
    for engine_hits, memory_hits in zip(
        engine.search_prepared(queries, 10), memory.search_prepared(queries, 10, candidates=len(entries)), strict=True
    ):
        assert [h.index for h in engine_hits] == [h.index for h in memory_hits]
    fetched = store.videos_fetched
    assert store.saved().tensors["sketch_frames"].shape[0] == len(entries)
    assert store.videos_fetched == fetched  # read once, then kept and saved


def test_a_server_that_cannot_be_reached_is_named_with_its_address(index_setup, tmp_path):
    model, processor, videos, _ = index_setup
    with pytest.raises(ConnectionError, match=r"Cannot reach the Qdrant server at http://127\.0\.0\.1:1 .*start it"):
        QdrantVideoIndex.build(model, processor, videos, path=tmp_path / "index", client="http://127.0.0.1:1")
    assert not (tmp_path / "index").exists()


@pytest.mark.parametrize(
    ("options", "error"),
    [({"on_error": "explode"}, ValueError), ({"batchsize": 4}, TypeError), ({"batch_size": 0}, ValueError)],
)
def test_a_build_with_a_bad_option_fails_before_creating_the_collection(index_setup, client, options, error):
    model, processor, videos, _ = index_setup
    with pytest.raises(error):
        QdrantVideoIndex.build(model, processor, videos[:1], client=client, show_progress=False, **options)
    assert not client.collection_exists("drl_videos")  # nothing left behind for the next build to trip over
