"""Search over frame lists: the exact top ten of the whole-sketch scan, reading only the lists that can matter."""

import pytest
import torch

from modeling_tvr.interaction_drl import token_wise_similarity
from modeling_tvr.search import frame_lists, sketch_kmeans
from modeling_tvr.search.features import PreparedSide
from modeling_tvr.search.fixed_shapes import MIN_ROWS, padded_query, row_products
from modeling_tvr.search.frame_lists import FrameLists, ListScan
from modeling_tvr.search.memory_store import MemoryStore
from modeling_tvr.search.sketch import FrameSketch, adaptive_search
from modeling_tvr.search.sketch_kmeans import two_level_kmeans

from .index_helpers import in_subspace, near_duplicates, random_side


@pytest.fixture
def small_lists(monkeypatch):
    """Lists from the first video on, sized for test collections of a few thousand videos."""
    monkeypatch.setattr(frame_lists, "MIN_VIDEOS", 0)
    monkeypatch.setattr(sketch_kmeans, "FRAMES_PER_LIST", 16)
    monkeypatch.setattr(frame_lists, "FIRST_WAVE_FRAMES", 512)
    monkeypatch.setattr(frame_lists, "JOIN_GAP", 64)
    monkeypatch.setattr(frame_lists, "SCAN_BLOCK", 1024)
    frames_read = []
    score = FrameLists.best_token_scores

    def counting(self, ranges, query, floor):
        frames_read.append(sum(end - start for start, end in ranges))
        return score(self, ranges, query, floor)

    monkeypatch.setattr(FrameLists, "best_token_scores", counting)
    return frames_read


def search_all(queries: PreparedSide, videos: PreparedSide, sketch: FrameSketch, target: float = 0.999):
    """Recall of the exhaustive top ten over the queries; checks every returned score is the exact one."""
    exact = token_wise_similarity(queries.vectors, queries.weights, videos.vectors, videos.weights)
    found = 0
    for row in range(len(exact)):
        scores, indices, _ = adaptive_search(queries.take(slice(row, row + 1)), videos, sketch, 10, target)
        torch.testing.assert_close(scores, exact[row, indices])
        found += len(set(indices.tolist()) & set(exact[row].topk(10).indices.tolist()))
    return found / (10 * len(exact))


def test_list_search_keeps_the_exact_top_ten_and_reads_a_part_of_the_frames(small_lists):
    videos = near_duplicates(bases=40, copies=60, frames=8, dim=48, frame_noise=0.3, seed=0)
    queries = in_subspace(random_side(12, 10, 48, seed=9), rank=12, seed=0)  # padded tokens and frames included
    sketch = FrameSketch.build(videos, dim=16)
    assert search_all(queries, videos, sketch) >= 0.99
    frames = int((videos.weights > 0).sum())
    per_query = sum(small_lists) / len(queries.vectors)
    assert 0 < per_query < 0.6 * frames  # the lists did the pruning, not a whole scan in disguise


def test_list_search_finds_what_the_whole_scan_finds(small_lists):
    videos = near_duplicates(bases=25, copies=40, frames=6, dim=32, frame_noise=0.5, seed=3)
    queries = in_subspace(random_side(8, 8, 32, seed=4), rank=12, seed=3)
    sketch = FrameSketch.build(videos, dim=8)
    with_lists = [adaptive_search(queries.take(slice(r, r + 1)), videos, sketch, 10, 0.999)[:2] for r in range(8)]
    whole = [
        adaptive_search(queries.take(slice(r, r + 1)), videos, sketch, 10, 0.999, use_lists=False)[:2] for r in range(8)
    ]
    for (scores, rows), (whole_scores, whole_rows) in zip(with_lists, whole, strict=True):
        assert set(rows.tolist()) == set(whole_rows.tolist())
        torch.testing.assert_close(scores, whole_scores)


def test_frames_without_structure_widen_the_bounds_rather_than_lose_recall(small_lists):
    videos = random_side(3000, 8, 32, seed=1)  # nothing for the lists' centroids to capture
    queries = random_side(10, 10, 32, seed=2)
    assert search_all(queries, videos, FrameSketch.build(videos, dim=16)) >= 0.99


def test_no_frame_scores_above_its_lists_cauchy_schwarz_bound():
    videos = near_duplicates(bases=20, copies=30, frames=8, dim=32, frame_noise=0.4, seed=5)
    sketch = FrameSketch.build(videos, dim=16)
    lists = FrameLists.build(sketch.frames, videos.weights)
    for seed in range(5):
        tokens = torch.nn.functional.normalize(torch.randn(7, 32, generator=torch.Generator().manual_seed(seed)), dim=1)
        scan = ListScan(lists, tokens @ sketch.basis, floor=False)
        best = lists.best_token_scores([(0, len(lists.frames))], scan.query, floor=False)
        per_list = torch.segment_reduce(best, "max", lengths=lists.sizes)
        assert bool((per_list <= scan.upper_bounds(1.0)).all())
        # ... and the bound is not vacuous: some list's best frame comes within its reach of it.
        assert bool((per_list >= scan.upper_bounds(1.0) - scan.reach - 2.0**-7).all())


def test_lists_hold_every_valid_frame_once_with_its_video_and_weight():
    videos = random_side(300, 6, 24, seed=7)  # padded frames: weight 0, left out of the lists
    sketch = FrameSketch.build(videos, dim=8)
    lists = FrameLists.build(sketch.frames, videos.weights)
    valid = videos.weights > 0
    assert len(lists.frames) == int(valid.sum()) and int(lists.offsets[-1]) == len(lists.frames)
    owners = lists.frame_videos.long()
    assert torch.equal(torch.bincount(owners, minlength=300), valid.sum(1))
    # Each video's frames in the lists add up to its valid sketch frames (padded ones are zero vectors anyway).
    per_video = torch.zeros(300, 8).index_add_(0, owners, lists.frames.float())
    torch.testing.assert_close(per_video, sketch.frames.float().sum(1))
    torch.testing.assert_close(lists.frame_weights.sum(), videos.weights.sum())
    torch.testing.assert_close(lists.video_weights, videos.weights.sum(1))


def test_two_level_kmeans_places_each_point_within_its_lists_radius_and_is_reproducible(monkeypatch):
    monkeypatch.setattr(sketch_kmeans, "FRAMES_PER_LIST", 25)  # 200 lists in 64 groups
    points = torch.randn(5000, 16, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    fitted = two_level_kmeans(points, seed=3)
    lists, distance = fitted.assign(points)
    recomputed = (points.float() - fitted.fine[lists]).norm(dim=1)
    torch.testing.assert_close(distance, recomputed, atol=1e-2, rtol=1e-2)
    assert len(torch.unique(lists)) > len(fitted.coarse)  # the second level splits the groups
    again = two_level_kmeans(points, seed=3)
    assert torch.equal(again.fine, fitted.fine) and torch.equal(again.assign(points)[0], lists)


def test_the_lists_are_kept_with_their_sketch_and_built_again_when_they_cannot_follow_it():
    videos = random_side(200, 4, 16, seed=8)
    sketch = FrameSketch.build(videos, dim=8)
    lists = sketch.frame_lists(videos.weights)
    assert sketch.frame_lists(videos.weights) is lists
    more = random_side(5, 4, 16, seed=9)
    assert sketch.extended(more.vectors)._lists is None  # no frame weights: no way to bound the new frames
    assert sketch.extended(more.vectors, more.weights)._lists is not None
    many = random_side(201, 4, 16, seed=10)  # more than doubling: centroids fitted to the old frames are refitted
    assert sketch.extended(many.vectors, many.weights)._lists is None


def test_the_store_switches_to_the_lists_from_min_videos_on(monkeypatch):
    built = []
    build = FrameLists.build

    def spy(frames, weights, seed=0):
        built.append(len(frames))
        return build(frames, weights, seed)

    monkeypatch.setattr(FrameLists, "build", spy)
    monkeypatch.setattr(frame_lists, "MIN_VIDEOS", 1000)
    queries = random_side(2, 6, 16, seed=1)
    MemoryStore(random_side(900, 4, 16, seed=2), "wti").search(queries, 5, None, 0.999)
    assert built == []
    MemoryStore(random_side(1100, 4, 16, seed=3), "wti").search(queries, 5, None, 0.999)
    assert built == [1100]  # once per sketch, not per query


def test_padded_query_keeps_the_maxima_and_gives_copies_no_weight():
    tokens, weights = torch.randn(5, 16), torch.softmax(torch.randn(5), 0)
    columns, padded_weights = padded_query(tokens, weights)
    assert columns.shape == (16, 8) and columns.dtype == torch.bfloat16
    frames = torch.randn(30, 16).to(torch.bfloat16)
    torch.testing.assert_close((frames @ columns).float().amax(1), (frames @ columns[:, :5]).float().amax(1))
    assert torch.equal(padded_weights[5:], torch.zeros(3)) and torch.equal(padded_weights[:5], weights)


@pytest.mark.parametrize(("rows", "start", "end"), [(3000, 0, 700), (3000, 2900, 3000), (3000, 10, 2999), (100, 5, 60)])
def test_row_products_in_fixed_shapes_equal_the_plain_product(rows, start, end):
    frames = torch.randn(rows, 16).to(torch.bfloat16)
    query = torch.randn(16, 8).to(torch.bfloat16)
    pieces = row_products(frames, start, end, query, block=1024)
    torch.testing.assert_close(torch.cat(pieces), (frames[start:end] @ query).float())
    assert all(len(piece) <= 1024 for piece in pieces) and MIN_ROWS == 256


def test_a_qdrant_index_searches_through_the_lists_and_fetches_only_what_it_scores(small_lists):
    from types import SimpleNamespace

    from qdrant_client import QdrantClient

    from modeling_tvr.search import VideoIndex
    from modeling_tvr.search.qdrant import QdrantStore

    videos = near_duplicates(bases=40, copies=50, frames=6, dim=32, frame_noise=0.3, seed=5)
    queries = random_side(4, 8, 32, seed=6)
    entries = [SimpleNamespace(path=f"/videos/{i}.mp4") for i in range(len(videos.vectors))]
    store = QdrantStore.create(QdrantClient(location=":memory:"), "drl_videos", shape=(6, 32))
    store.append([entry.path for entry in entries], videos)
    engine = VideoIndex(entries, store, {"interaction": "wti"})
    memory = VideoIndex(entries, MemoryStore(videos, "wti"), {"interaction": "wti"})
    for row in range(len(queries.vectors)):
        query = queries.take(slice(row, row + 1))
        store.videos_fetched = 0
        hits = engine.search_prepared(query, 10)[0]
        assert 0 < store.videos_fetched < len(entries) / 2
        expected = memory.search_prepared(query, 10, candidates=len(entries))[0]
        assert [h.index for h in hits] == [h.index for h in expected]
        torch.testing.assert_close(torch.tensor([h.score for h in hits]), torch.tensor([h.score for h in expected]))
    assert sum(small_lists) > 0  # the lists were read, not the whole sketch


def assert_lists_match(lists: FrameLists, videos: PreparedSide, sketch: FrameSketch):
    """Every valid frame of every video is in one list, within that list's radius, with its video and weight."""
    owners = lists.frame_videos.long()
    valid = videos.weights > 0
    assert torch.equal(torch.bincount(owners, minlength=len(valid)), valid.sum(1))
    per_video = torch.zeros(len(valid), sketch.frames.shape[-1]).index_add_(0, owners, lists.frames.float())
    torch.testing.assert_close(per_video, sketch.frames.float().sum(1))
    members = torch.repeat_interleave(torch.arange(len(lists.radii)), lists.sizes)
    distance = (lists.frames.float() - lists.centroids[members]).norm(dim=1)
    assert bool((distance <= lists.radii[members] + 1e-6).all())
    torch.testing.assert_close(lists.video_weights, videos.weights.sum(1))


def test_the_lists_follow_added_removed_and_reordered_videos(small_lists):
    everything = near_duplicates(bases=30, copies=50, frames=6, dim=32, frame_noise=0.3, seed=11)
    first, more = everything.take(slice(0, 1200)), everything.take(slice(1200, 1500))
    sketch = FrameSketch.build(first, dim=12)
    sketch.frame_lists(first.weights)
    grown = sketch.extended(more.vectors, more.weights)
    assert grown._lists is not None  # extended, not built again
    assert_lists_match(grown._lists, everything, grown)
    rows = torch.randperm(1500, generator=torch.Generator().manual_seed(0))[:900]  # a subset, reordered
    kept = grown.take(rows)
    assert_lists_match(kept._lists, everything.take(rows), kept)
    queries = in_subspace(random_side(6, 8, 32, seed=12), rank=12, seed=11)
    assert search_all(queries, everything.take(rows), kept) >= 0.99
    assert grown.take(torch.tensor([0, 0, 1]))._lists is None  # a repeated row: built again when needed


def test_the_lists_are_saved_with_the_index_and_searched_after_loading(small_lists, tmp_path):
    from modeling_tvr.search import VideoIndex
    from modeling_tvr.search.fingerprint import FileFingerprint

    videos = near_duplicates(bases=30, copies=40, frames=6, dim=32, frame_noise=0.3, seed=13)
    entries = [FileFingerprint(f"/videos/{i}.mp4", 1, 1, "0") for i in range(len(videos.vectors))]
    index = VideoIndex(entries, MemoryStore(videos, "wti"), {"interaction": "wti"})
    index.save(tmp_path / "idx")  # from MIN_VIDEOS videos on (0 here) the save builds the lists and keeps them
    built = index.store.sketch._lists
    loaded = VideoIndex.load(tmp_path / "idx", mmap=True)
    lists = loaded.store._sketch._lists
    assert lists is not None
    for name in FrameLists.SAVED + ("video_weights",):
        assert torch.equal(getattr(lists, name), getattr(built, name)), name
    queries = random_side(3, 8, 32, seed=14)
    assert loaded.search_prepared(queries, 10) == index.search_prepared(queries, 10)


def test_the_measured_margin_stays_between_the_centroid_and_the_cauchy_schwarz_bound():
    from modeling_tvr.search.frame_lists import measured_margin

    assert measured_margin([torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.2, 0.25])], z=2.0) == pytest.approx(
        max(0.2 + 2.0 * 0.1, 0.225 + 2.0 * torch.tensor([0.2, 0.25]).std().item())
    )
    assert measured_margin([torch.tensor([-0.5, -0.4, -0.6])], z=1.0) == 0.0
    assert measured_margin([torch.tensor([0.9, 1.0, 1.1])], z=3.0) == 1.0
    assert measured_margin([torch.tensor([0.3])], z=3.0) == 1.0  # nothing to measure a spread on: Cauchy-Schwarz


def test_a_loaded_index_keeps_its_lists_in_step_as_videos_are_added_and_removed(small_lists, tmp_path):
    from modeling_tvr.search import VideoIndex
    from modeling_tvr.search.fingerprint import FileFingerprint

    everything = near_duplicates(bases=30, copies=45, frames=6, dim=32, frame_noise=0.3, seed=15)
    first = everything.take(slice(0, 1000))
    entries = [FileFingerprint(f"/videos/{i}.mp4", 1, 1, "0") for i in range(1000)]
    VideoIndex(entries, MemoryStore(first, "wti"), {"interaction": "wti"}).save(tmp_path / "idx")
    loaded = VideoIndex.load(tmp_path / "idx", mmap=True)  # the lists are mapped from the file, read-only
    store = loaded.store
    store.append([f"/videos/{i}.mp4" for i in range(1000, 1350)], everything.take(slice(1000, 1350)))
    assert store._sketch._lists is not None  # extended from the mapped lists, not built again
    assert_lists_match(store._sketch._lists, everything, store._sketch)
    store.take(torch.arange(100, 1350))
    assert_lists_match(store._sketch._lists, everything.take(slice(100, 1350)), store._sketch)
    queries = in_subspace(random_side(4, 8, 32, seed=16), rank=12, seed=15)
    assert search_all(queries, everything.take(slice(100, 1350)), store._sketch) >= 0.99


def test_an_index_saved_with_a_sketch_but_no_lists_builds_them_on_its_first_search(small_lists, tmp_path):
    from modeling_tvr.search import VideoIndex
    from modeling_tvr.search.fingerprint import FileFingerprint

    videos = near_duplicates(bases=20, copies=40, frames=6, dim=32, frame_noise=0.3, seed=17)
    entries = [FileFingerprint(f"/videos/{i}.mp4", 1, 1, "0") for i in range(len(videos.vectors))]
    index = VideoIndex(entries, MemoryStore(videos, "wti"), {"interaction": "wti"})
    saved = index.store.saved()
    # The format before the lists: the same folder without their tensors.
    saved.shared = {name: tensor for name, tensor in saved.shared.items() if not name.startswith("lists_")}
    loaded = MemoryStore.from_saved(saved, "wti")
    assert loaded._sketch is not None and loaded._sketch._lists is None
    queries = random_side(2, 8, 32, seed=18)
    assert loaded.search(queries, 10, None, 0.999) == index.store.search(queries, 10, None, 0.999)
    assert loaded._sketch._lists is not None
