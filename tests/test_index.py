"""VideoIndex: exact two-stage search, save / load / add / remove / refresh, resumable and multi-process builds.

The tests taking `index_api` run on each store: in memory and in Qdrant (`conftest.index_api`)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from modeling_tvr import VideoReadError
from modeling_tvr.interaction_drl import score_block, token_wise_similarity
from modeling_tvr.search import IndexMismatchError, VideoIndex
from modeling_tvr.search.cli import find_videos
from modeling_tvr.search.cli import main as search_main
from modeling_tvr.search.features import rerank_candidates, two_stage_search

from .helpers import run_torchrun, tiny_model_for, tiny_processor
from .index_helpers import QUERIES, exhaustive, random_side, write_clip


def test_rerank_of_candidates_equals_token_wise_similarity_of_those_videos():
    queries, videos = random_side(5, 7, 16, seed=0), random_side(40, 6, 16, seed=1)
    candidates = torch.randint(0, 40, (5, 9), generator=torch.Generator().manual_seed(2))
    full = token_wise_similarity(queries.vectors, queries.weights, videos.vectors, videos.weights)
    torch.testing.assert_close(rerank_candidates(queries, videos, candidates), full.gather(1, candidates))


def test_rerank_scores_with_the_models_own_block_scorer(monkeypatch):
    """One WTI implementation: the re-rank calls `interaction_drl.score_block` rather than a copy of its arithmetic."""
    import modeling_tvr.search.features as features

    calls = []
    monkeypatch.setattr(features, "score_block", lambda *args: calls.append(args) or score_block(*args))
    queries, videos = random_side(2, 7, 16, seed=0), random_side(40, 6, 16, seed=1)
    rerank_candidates(queries, videos, torch.randint(0, 40, (2, 9), generator=torch.Generator().manual_seed(2)))
    assert len(calls) == 2


def test_two_stage_with_every_video_as_candidate_is_exhaustive_and_chunking_changes_nothing():
    queries, videos = random_side(6, 7, 16, seed=3), random_side(300, 6, 16, seed=4)
    full = token_wise_similarity(queries.vectors, queries.weights, videos.vectors, videos.weights)
    expected_scores, expected_indices = full.topk(10, dim=1)
    for chunk_bytes in (1, 10_000, 1 << 30):
        scores, indices = two_stage_search(queries, videos, "wti", 10, candidates=300, chunk_bytes=chunk_bytes)
        torch.testing.assert_close(scores, expected_scores)
        assert torch.equal(indices, expected_indices)
        # Fewer candidates than videos: every returned score is still the exact one of that video.
        scores, indices = two_stage_search(queries, videos, "wti", 10, candidates=50, chunk_bytes=chunk_bytes)
        torch.testing.assert_close(scores, full.gather(1, indices))
    chunked = token_wise_similarity(queries.vectors, queries.weights, videos.vectors, videos.weights, chunk_bytes=64)
    torch.testing.assert_close(chunked, full)


# Qdrant serves the wti and ti interactions only (a dp model is refused: test_index_qdrant.py).
@pytest.mark.parametrize(
    ("index_api", "interaction"), [("memory", "wti"), ("memory", "dp"), ("qdrant", "wti")], indirect=["index_api"]
)
def test_search_returns_the_models_own_similarity_ranking(index_setup, index_api, interaction):
    _, processor, videos, _ = index_setup
    model = tiny_model_for(processor.tokenizer, seed=4, interaction=interaction)
    index = index_api.build(model, processor, videos, batch_size=3, show_progress=False)
    expected = exhaustive(model, processor, QUERIES, videos)
    hits = index.search(QUERIES, top_k=5, candidates=len(videos))
    for row, query_hits in enumerate(hits):
        scores, order = expected[row].topk(5)
        assert [h.video for h in query_hits] == [videos[i] for i in order.tolist()]
        np.testing.assert_allclose([h.score for h in query_hits], scores.numpy(), rtol=1e-5, atol=1e-6)
    few = index.search(QUERIES[0], top_k=2, candidates=3)[0]
    assert len(few) == 2 and all(abs(h.score - float(expected[0, h.index])) < 1e-5 for h in few)


def test_save_load_roundtrip_and_model_mismatch(index_setup, index_api, tmp_path):
    model, processor, videos, _ = index_setup
    index = index_api.build(model, processor, videos[:4], path=tmp_path / "idx", show_progress=False)
    version = (tmp_path / "idx" / "CURRENT").read_text()
    assert (tmp_path / "idx" / version / "index.safetensors").is_file() and not (tmp_path / "idx" / "chunks").exists()
    loaded = index_api.load(tmp_path / "idx", model, processor)
    assert loaded.paths == index.paths == videos[:4]
    assert torch.equal(loaded.videos.vectors, index.videos.vectors)
    assert torch.equal(loaded.videos.weights, index.videos.weights)
    assert loaded.search(QUERIES) == index.search(QUERIES)
    with pytest.raises(IndexMismatchError, match="another model"):
        index_api.load(tmp_path / "idx", tiny_model_for(processor.tokenizer, seed=99), processor)
    other_sampling = tiny_processor(tmp_path, max_frames=4)  # new videos would not fit the index's frames
    with pytest.raises(IndexMismatchError, match="video processor"):
        index_api.load(tmp_path / "idx", model, other_sampling)
    with pytest.raises(FileNotFoundError, match="no video index"):
        index_api.load(tmp_path / "nothing")


def test_add_and_remove_match_a_fresh_build(index_setup, index_api):
    model, processor, videos, _ = index_setup
    full = index_api.build(model, processor, videos[:5], show_progress=False)
    grown = index_api.build(model, processor, videos[:3], show_progress=False)
    assert grown.add(videos[:5]) == 2  # the three known videos are not encoded again
    assert grown.paths == full.paths
    torch.testing.assert_close(grown.videos.vectors, full.videos.vectors)
    assert grown.remove([videos[1], videos[3]]) == 2
    assert grown.paths == [videos[0], videos[2], videos[4]]
    torch.testing.assert_close(grown.videos.vectors, full.videos.vectors[[0, 2, 4]])
    assert grown.search(QUERIES, top_k=3, candidates=10)[0][0].video in grown.paths


def test_refresh_reencodes_changed_files_drops_deleted_and_skips_touched(index_setup, index_api, tmp_path):
    model, processor, _, _ = index_setup
    videos = [str(write_clip(tmp_path / f"v{i}.mp4", seed=10 + i)) for i in range(4)]
    index = index_api.build(model, processor, videos, path=tmp_path / "idx", show_progress=False)
    before = index.videos.vectors.clone()

    write_clip(Path(videos[1]), seed=77)  # new content
    os.utime(videos[2], ns=(1, 1))  # same content, new time
    os.remove(videos[3])
    new = str(write_clip(tmp_path / "v9.mp4", seed=19))
    counts = index.refresh([*videos, new])
    assert counts == {"removed": 1, "reencoded": 1, "added": 1}
    assert index.paths == [videos[0], videos[1], videos[2], new]
    fresh = index_api.build(model, processor, index.paths, show_progress=False)
    torch.testing.assert_close(index.videos.vectors, fresh.videos.vectors)
    assert not torch.equal(index.videos.vectors[1], before[1])
    assert index.refresh(index.paths) == {"removed": 0, "reencoded": 0, "added": 0}


def test_undecodable_videos_are_reported_not_dropped_silently(index_setup, index_api, tmp_path, caplog):
    model, processor, videos, _ = index_setup
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    missing = str(tmp_path / "missing.mp4")
    index = index_api.build(model, processor, [videos[0], str(broken), missing], show_progress=False)
    assert index.paths == [videos[0]]
    assert set(index.failed) == {str(broken), missing}
    assert "2 video(s) could not be decoded" in caplog.text
    index.save(tmp_path / "idx")
    assert set(index_api.load(tmp_path / "idx").failed) == {str(broken), missing}
    with pytest.raises(VideoReadError, match="broken.mp4"):
        index_api.build(model, processor, [videos[0], str(broken)], on_error="raise", show_progress=False)


def test_undecodable_file_is_not_decoded_again_until_it_changes(index_setup, index_api, tmp_path, monkeypatch):
    from modeling_tvr.search import encoding

    model, processor, videos, _ = index_setup
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    index = index_api.build(model, processor, [videos[0], str(broken)], show_progress=False)
    index.save(tmp_path / "idx")
    reads = []
    original = encoding.VideoFiles.__getitem__
    monkeypatch.setattr(encoding.VideoFiles, "__getitem__", lambda self, i: (reads.append(i), original(self, i))[1])
    again = index_api.load(tmp_path / "idx", model, processor)
    assert again.refresh([videos[0], str(broken)]) == {"removed": 0, "reencoded": 0, "added": 0}
    assert reads == [] and set(again.failed) == {str(broken)}  # still reported, not decoded again
    # Fixed (a real video written over it): tried again and indexed.
    broken.write_bytes(Path(videos[1]).read_bytes())
    assert again.refresh([videos[0], str(broken)])["added"] == 1
    assert reads and again.failed == {} and again.paths == [videos[0], str(broken)]


def test_interrupted_build_resumes_without_encoding_again(index_setup, index_api, tmp_path, monkeypatch):
    model, processor, videos, _ = index_setup
    calls = []
    original = model.get_video_features

    def failing_after_two_batches(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "get_video_features", failing_after_two_batches)
    with pytest.raises(KeyboardInterrupt):
        index_api.build(model, processor, videos, batch_size=2, save_every=1, path=tmp_path / "idx")
    assert len(list((tmp_path / "idx" / "chunks").glob("*.safetensors"))) == 2
    calls.clear()
    monkeypatch.setattr(model, "get_video_features", lambda *a, **k: (calls.append(1), original(*a, **k))[1])
    resumed = index_api.build(model, processor, videos, batch_size=2, save_every=1, path=tmp_path / "idx")
    assert len(calls) == 2  # the 4 videos left, in batches of 2
    assert resumed.paths == videos
    fresh = index_api.build(model, processor, videos, show_progress=False)
    torch.testing.assert_close(resumed.videos.vectors, fresh.videos.vectors)


BUILD_SCRIPT = """
import sys
import torch
from modeling_tvr.search.index import VideoIndex
from modeling_tvr import DRLModel, DRLProcessor
folder, out = sys.argv[1], sys.argv[2]
model = DRLModel.from_pretrained(folder).eval()
processor = DRLProcessor.from_pretrained(folder)
videos = [line for line in open(folder + "/videos.txt").read().splitlines() if line]
VideoIndex.build(model, processor, videos, batch_size=1, save_every=1, path=out, show_progress=False)
"""


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_two_processes_build_the_same_index_as_one(index_setup, tmp_path):
    model, processor, videos, _ = index_setup
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    (tmp_path / "model" / "videos.txt").write_text("\n".join(videos))
    script = tmp_path / "build.py"
    script.write_text(BUILD_SCRIPT)
    result = run_torchrun(2, script, str(tmp_path / "model"), str(tmp_path / "idx"))
    # Judge by what the run wrote (a 2-process run has been seen to abort after finishing).
    assert (tmp_path / "idx" / "CURRENT").is_file(), result.stderr[-4000:]
    distributed = VideoIndex.load(tmp_path / "idx", model, processor)
    single = VideoIndex.build(model, processor, videos, show_progress=False)
    assert distributed.paths == single.paths
    torch.testing.assert_close(distributed.videos.vectors, single.videos.vectors, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_search_command_indexes_a_folder_once_and_prints_ranked_videos(index_setup, tmp_path, capsys):
    model, processor, videos, _ = index_setup
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    folder = tmp_path / "videos"
    (folder / "nested").mkdir(parents=True)
    for i, video in enumerate(videos[:3]):
        shutil.copy(video, folder / ("nested" if i == 2 else "") / f"v{i}.mp4")
    assert [Path(p).name for p in find_videos(folder)] == ["v2.mp4", "v0.mp4", "v1.mp4"]  # sorted by full path

    command = ["--model", str(tmp_path / "model"), "--videos", str(folder), "--top-k", "2", QUERIES[0], QUERIES[1]]
    assert search_main(command) == 0
    first = capsys.readouterr()
    assert "3 video(s) indexed" in first.err
    blocks = first.out.strip().split("\n\n")
    assert [block.splitlines()[0] for block in blocks] == QUERIES[:2]
    assert all(len(block.splitlines()) == 3 for block in blocks)  # the query and its top 2
    manifest = next((folder / ".drl-index").glob("*/CURRENT"))  # the commit pointer: rewritten by every save
    written = manifest.stat().st_mtime_ns

    assert search_main(command) == 0  # cached: nothing changed, nothing re-encoded or re-written
    assert capsys.readouterr().out == first.out
    assert manifest.stat().st_mtime_ns == written

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "modeling_tvr.search", *command], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == first.out


def test_search_command_reports_user_errors_in_one_line(index_setup, tmp_path, capsys):
    model, processor, _, _ = index_setup
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    capsys.readouterr()  # the save's progress bar
    assert search_main(["--model", str(tmp_path / "model"), "--videos", str(tmp_path / "nowhere"), "q"]) == 1
    assert capsys.readouterr().err == f"error: --videos {tmp_path / 'nowhere'}: no such folder.\n"
    (tmp_path / "empty").mkdir()
    assert search_main(["--model", str(tmp_path / "model"), "--videos", str(tmp_path / "empty"), "q"]) == 1
    assert "error: no video files" in capsys.readouterr().err
    assert search_main(["--model", str(tmp_path / "no-model"), "--videos", str(tmp_path / "empty"), "q"]) == 1
    assert f"no folder {tmp_path / 'no-model'}" in capsys.readouterr().err
    (tmp_path / "not-a-model").mkdir()
    assert search_main(["--model", str(tmp_path / "not-a-model"), "--videos", str(tmp_path / "empty"), "q"]) == 1
    assert "no config.json" in capsys.readouterr().err


def test_search_command_checks_its_arguments_before_loading_torch_or_a_model(tmp_path):
    # A mistyped path is answered at once: nothing heavy is imported before the arguments are checked.
    probe = (
        "import sys; from modeling_tvr.search import main; code = main(sys.argv[1:]); "
        "print('torch' in sys.modules, 'transformers.modeling_utils' in sys.modules); sys.exit(code)"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for arguments in (
        ["--model", "outputs/drl-tyo", "--videos", str(tmp_path), "q"],  # offline, not a folder, not cached
        ["--model", str(tmp_path), "--videos", str(tmp_path / "nowhere"), "q"],
    ):
        result = subprocess.run(
            [sys.executable, "-c", probe, *arguments], capture_output=True, text=True, env=env, timeout=120
        )
        assert result.returncode == 1 and result.stderr.startswith("error: --")
        assert result.stdout.split() == ["False", "False"]


def test_half_precision_storage_keeps_the_ranking_and_survives_save_load(index_setup, tmp_path):
    model, processor, videos, _ = index_setup
    full = VideoIndex.build(model, processor, videos, show_progress=False)
    half = VideoIndex.build(model, processor, videos, storage_dtype=torch.float16, path=tmp_path / "idx")
    assert half.videos.vectors.dtype == torch.float16
    loaded = VideoIndex.load(tmp_path / "idx", model, processor)
    assert loaded.videos.vectors.dtype == torch.float16
    for index in (half, loaded):
        assert index.add(videos) == 0  # nothing new: no re-encoding
        for exact_hits, half_hits in zip(full.search(QUERIES, top_k=8), index.search(QUERIES, top_k=8), strict=True):
            np.testing.assert_allclose([h.score for h in half_hits], [h.score for h in exact_hits], atol=2e-3)


def test_empty_collections_and_bad_options(index_setup, index_api, tmp_path):
    model, processor, _, _ = index_setup
    empty = index_api.build(model, processor, [], path=tmp_path / "idx", show_progress=False)
    assert len(empty) == 0 and empty.search(QUERIES) == [[], [], []]
    assert len(index_api.load(tmp_path / "idx", model, processor)) == 0
    with pytest.raises(ValueError, match="on_error"):
        index_api.build(model, processor, [], on_error="ignore")
    with pytest.raises(ValueError, match="batch_size"):
        index_api.build(model, processor, [], batch_size=0)
    with pytest.raises(TypeError, match="list of video paths"):
        index_api.build(model, processor, str(tmp_path))
