"""The default search: candidates from every frame's sketch, re-ranked exactly until the measured error bound stops."""

from pathlib import Path

import pytest
import torch

from modeling_tvr.interaction_drl import token_wise_similarity
from modeling_tvr.search import VideoIndex
from modeling_tvr.search.cli import main as search_main
from modeling_tvr.search.features import PreparedSide
from modeling_tvr.search.sketch import FrameSketch, adaptive_search

from .index_helpers import QUERIES, exhaustive, in_subspace, near_duplicates, random_side


def recall_and_work(queries: PreparedSide, videos: PreparedSide, sketch: FrameSketch, target: float):
    exact = token_wise_similarity(queries.vectors, queries.weights, videos.vectors, videos.weights)
    found, reranked = 0, []
    for row in range(len(exact)):
        query = queries.take(slice(row, row + 1))
        scores, indices, scored = adaptive_search(query, videos, sketch, 10, target)
        # Whatever is returned carries its exact score, best first.
        torch.testing.assert_close(scores, exact[row, indices])
        assert torch.equal(scores, scores.sort(descending=True).values)
        found += len(set(indices.tolist()) & set(exact[row].topk(10).indices.tolist()))
        reranked.append(scored)
    return found / (10 * len(exact)), reranked


def test_default_search_keeps_the_exact_top_ten_among_near_duplicates():
    videos = near_duplicates(bases=40, copies=60, frames=8, dim=48, frame_noise=0.3, seed=0)
    queries = in_subspace(random_side(20, 10, 48, seed=9), rank=12, seed=0)  # the frames' directions
    recall, reranked = recall_and_work(queries, videos, FrameSketch.build(videos, dim=16), 0.999)
    assert recall >= 0.99
    assert max(reranked) < len(videos.vectors) / 2  # the sketch does the work: not an exhaustive search in disguise


def test_a_poor_sketch_re_ranks_more_videos_rather_than_losing_recall():
    videos = random_side(3000, 8, 32, seed=1)  # no structure for principal directions to capture
    queries = random_side(12, 10, 32, seed=2)
    good_recall, good_work = recall_and_work(queries, videos, FrameSketch.build(videos, dim=32), 0.999)
    poor_recall, poor_work = recall_and_work(queries, videos, FrameSketch.build(videos, dim=2), 0.999)
    assert good_recall >= 0.99 and poor_recall >= 0.99
    assert sum(poor_work) > 2 * sum(good_work)


def test_a_higher_recall_target_re_ranks_at_least_as_many_videos():
    videos = near_duplicates(bases=30, copies=40, frames=6, dim=32, frame_noise=0.5, seed=3)
    queries = in_subspace(random_side(8, 8, 32, seed=4), rank=12, seed=3)
    sketch = FrameSketch.build(videos, dim=8)
    _, low = recall_and_work(queries, videos, sketch, 0.9)
    _, high = recall_and_work(queries, videos, sketch, 0.9999)
    assert all(h >= lo for h, lo in zip(high, low, strict=True)) and sum(high) > sum(low)


def test_a_collection_smaller_than_the_probes_is_searched_exhaustively():
    videos, queries = random_side(50, 6, 16, seed=5), random_side(3, 7, 16, seed=6)
    recall, reranked = recall_and_work(queries, videos, FrameSketch.build(videos), 0.999)
    assert recall == 1.0 and reranked == [50, 50, 50]


def test_the_sketch_follows_add_remove_and_reorder(index_setup):
    model, processor, videos, _ = index_setup
    index = VideoIndex.build(model, processor, videos[:6], batch_size=3, show_progress=False)
    first = index.search(QUERIES, top_k=3)  # builds the sketch
    basis = index.store.sketch.basis

    def assert_in_step():
        assert torch.equal(index.store.sketch.basis, basis)  # the directions stay; rows follow the videos
        frames, residuals = FrameSketch._reduce(index.videos.vectors, basis)
        assert torch.equal(index.store.sketch.frames, frames) and torch.equal(index.store.sketch.residuals, residuals)

    index.remove(videos[1:3])
    assert_in_step()
    index.add(videos[6:])
    assert_in_step()
    index.refresh(list(reversed(videos[:6])))
    assert_in_step()
    # Every hit is the model's own exact score for that video, and the default finds the exhaustive top 3.
    expected = exhaustive(model, processor, QUERIES, index.paths)
    for row, hits in enumerate(index.search(QUERIES, top_k=3)):
        assert [h.index for h in hits] == expected[row].topk(3).indices.tolist()
        torch.testing.assert_close(torch.tensor([h.score for h in hits]), expected[row].topk(3).values)
    assert len(first) == len(QUERIES)


@pytest.mark.parametrize("target", ["1.0", "0.2"])
def test_search_command_refuses_a_recall_target_outside_its_range(index_setup, target, capsys, tmp_path):
    model, processor, _, folder = index_setup
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    command = ["a query", "--model", str(tmp_path / "model"), "--videos", str(folder), "--recall-target", target]
    status = search_main(command)
    assert status == 1
    assert "--recall-target" in capsys.readouterr().err


def test_the_sketch_is_saved_with_the_index_and_restored_on_load(index_setup, tmp_path):
    model, processor, videos, _ = index_setup
    index = VideoIndex.build(model, processor, videos, batch_size=4, path=tmp_path / "idx", show_progress=False)
    # Saved by the build itself, before any search: the search command's next run loads it rather than building it.
    loaded = VideoIndex.load(tmp_path / "idx", model, processor)
    assert loaded.store._sketch is not None  # not recomputed: a large collection's sketch takes a pass over every frame
    hits = index.search(QUERIES, top_k=4)
    for name in ("basis", "frames", "residuals"):
        assert torch.equal(getattr(loaded.store.sketch, name), getattr(index.store.sketch, name))
    assert loaded.search(QUERIES, top_k=4) == hits


def test_a_memory_mapped_index_searches_alike_and_never_writes_its_file(index_setup, tmp_path):
    model, processor, videos, _ = index_setup
    index = VideoIndex.build(model, processor, videos, path=tmp_path / "idx", storage_dtype=torch.float16)
    index.search(QUERIES)
    index.save(tmp_path / "idx")
    tensor_file = next((tmp_path / "idx").glob("v*/index.safetensors"))
    before = tensor_file.read_bytes()
    mapped = VideoIndex.load(tmp_path / "idx", model, processor, mmap=True)
    maps = Path("/proc/self/maps").read_text()
    assert str(tensor_file.resolve()) in maps  # the features are mapped from the file, not read into memory
    assert mapped.videos.vectors.dtype == torch.float16 and mapped.store._sketch is not None
    assert mapped.search(QUERIES, top_k=5) == index.search(QUERIES, top_k=5)
    mapped.videos.vectors[0] = 0  # copy-on-write: the process's copy changes, the file does not
    assert tensor_file.read_bytes() == before
    assert mapped.remove([videos[0]]) == 1 and len(mapped) == len(videos) - 1  # changing it reads it whole


def test_an_index_saved_before_sketches_and_tensor_lists_still_loads(index_setup, tmp_path):
    import json

    from modeling_tvr.search.storage import commit_index

    model, processor, videos, _ = index_setup
    index = VideoIndex.build(model, processor, videos[:4], show_progress=False)
    # Format 2 without the sketch and without the tensor lists in the manifest: indexes like it keep loading.
    features = {"vectors": index.videos.vectors, "weights": index.videos.weights, "summary": index.videos.summary}
    manifest = {"model": index.signature, "videos": [entry.to_dict() for entry in index.entries], "failed": {}}
    commit_index(tmp_path / "idx", features, manifest)
    manifest_file = next((tmp_path / "idx").glob("v*/manifest.json"))
    manifest = json.loads(manifest_file.read_text())
    del manifest["tensors"], manifest["shared_tensors"]
    manifest_file.write_text(json.dumps(manifest))
    loaded = VideoIndex.load(tmp_path / "idx", model, processor)
    assert loaded.store._sketch is None and loaded.search(QUERIES) == index.search(QUERIES)


@pytest.mark.slow
def test_a_memory_mapped_index_keeps_searching_after_another_process_commits_over_it(index_setup, tmp_path):
    import subprocess
    import sys

    model, processor, videos, _ = index_setup
    index = VideoIndex.build(model, processor, videos[:5], path=tmp_path / "idx", show_progress=False)
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    mapped = VideoIndex.load(tmp_path / "idx", model, processor, mmap=True)
    before = mapped.search(QUERIES, top_k=3)
    # Another process adds a video and commits: the version this process mapped is deleted from the folder.
    script = (
        "import sys; from transformers import AutoModel, AutoProcessor; from modeling_tvr.search import VideoIndex\n"
        f"m = AutoModel.from_pretrained({str(tmp_path / 'model')!r}, trust_remote_code=True).eval()\n"
        f"p = AutoProcessor.from_pretrained({str(tmp_path / 'model')!r}, trust_remote_code=True)\n"
        f"VideoIndex.sync({str(tmp_path / 'idx')!r}, m, p, {videos[:6]!r}, show_progress=False)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((tmp_path / "idx").glob("v*"))) == 1 and len(VideoIndex.load(tmp_path / "idx")) == 6
    assert mapped.search(QUERIES, top_k=3) == before  # its pages stay readable: the file lives while mapped
    assert index.search(QUERIES, top_k=3) == before


def test_the_python_api_refuses_a_recall_target_outside_its_range(index_setup):
    model, processor, videos, _ = index_setup
    index = VideoIndex.build(model, processor, videos[:3], show_progress=False)
    with pytest.raises(ValueError, match="recall_target"):
        index.search(QUERIES, recall_target=1.0)
