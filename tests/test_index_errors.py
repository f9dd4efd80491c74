"""VideoIndex's user errors: each one a single message naming the thing and the fix, or the right result instead."""

import errno
import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from modeling_tvr.search import IndexCorruptError, IndexSpaceError, MemoryStore, VideoIndex
from modeling_tvr.search import storage as index_storage
from modeling_tvr.search.chunks import write_atomically

from .helpers import tiny_model_for, tiny_processor
from .index_helpers import QUERIES, write_clip


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("index_errors")
    processor = tiny_processor(folder)
    model = tiny_model_for(processor.tokenizer, seed=5)
    videos = [str(write_clip(folder / f"clip{i}.mp4", seed=30 + i, seconds=1 + i % 2)) for i in range(3)]
    return model, processor, videos, folder


@pytest.fixture
def saved(setup, tmp_path) -> Path:
    """An index of the three clips saved at `tmp_path / "idx"`."""
    model, processor, videos, _ = setup
    VideoIndex.build(model, processor, videos, path=tmp_path / "idx", show_progress=False)
    return tmp_path / "idx"


@pytest.mark.parametrize("top_k", [0, -1])
def test_search_refuses_a_top_k_below_one_by_its_value(setup, top_k):
    model, processor, videos, _ = setup
    index = VideoIndex.build(model, processor, videos, show_progress=False)
    with pytest.raises(ValueError, match=f"top_k must be at least 1, got {top_k}"):
        index.search(QUERIES, top_k=top_k)


@pytest.mark.parametrize(
    "pointer",
    [b"", b"\xff\xfe\x00garbage", b"v999999", b"../../elsewhere"],
    ids=["empty", "not-text", "missing-version", "not-a-version"],
)
def test_a_damaged_current_pointer_is_repaired_from_the_newest_complete_version(setup, saved, pointer, caplog):
    model, processor, videos, _ = setup
    version = (saved / "CURRENT").read_text()
    (saved / "CURRENT").write_bytes(pointer)
    with caplog.at_level(logging.WARNING):
        loaded = VideoIndex.load(saved, model, processor)
    assert loaded.paths == videos
    assert (saved / "CURRENT").read_text() == version  # repaired on disk too
    assert f"repaired it to name {version}" in caplog.text and str(saved) in caplog.text


def test_a_damaged_pointer_without_a_complete_version_names_the_folder_to_delete(saved):
    version = (saved / "CURRENT").read_text()
    (saved / version / "manifest.json").unlink()
    (saved / "CURRENT").write_bytes(b"\xff")
    with pytest.raises(IndexCorruptError, match=f"{saved}.*CURRENT.*no complete version.*delete the folder"):
        VideoIndex.load(saved)


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_index_files_are_written_with_the_process_umask(setup, tmp_path, umask):
    model, processor, videos, _ = setup
    previous = os.umask(umask)
    try:
        VideoIndex.build(model, processor, videos[:2], path=tmp_path / "idx", show_progress=False)
        VideoIndex.load(tmp_path / "idx")  # writes verified.json
        write_atomically({"x": torch.zeros(2)}, {}, tmp_path / "idx" / "chunk.safetensors")
    finally:
        os.umask(previous)
    files = [p for p in (tmp_path / "idx").rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"CURRENT", "index.safetensors", "manifest.json", "verified.json", ".lock"}
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {p.name: oct(0o666 & ~umask) for p in files}


def test_query_errors_name_the_query_not_a_caption(setup):
    model, processor, videos, _ = setup
    index = VideoIndex.build(model, processor, videos[:1], show_progress=False)
    with pytest.raises(ValueError, match=r"^Query 1 holds only whitespace") as raised:
        index.search(["a red circle", "   "])
    assert "Caption" not in str(raised.value)


def test_a_long_query_is_truncated_without_the_tokenizers_length_warning(setup, tmp_path, caplog):
    model, _, videos, _ = setup
    processor = tiny_processor(tmp_path)  # a tokenizer that has not warned yet (it warns once per instance)
    index = VideoIndex.build(model, processor, videos[:2], show_progress=False)
    long_query = " ".join(["a red circle moves to the left"] * 40)  # hundreds of tokens, 16 kept
    with caplog.at_level(logging.WARNING):
        hits = index.search(long_query, top_k=2)[0]
    assert len(hits) == 2
    assert "Token indices sequence length" not in caplog.text
    assert processor(text=long_query)["attention_mask"].sum() == processor.max_words


def test_an_undecodable_video_is_recorded_as_failed_and_the_rest_indexed(setup, tmp_path):
    from modeling_tvr import VideoReadError

    model, processor, videos, _ = setup
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(VideoReadError):
        processor.video_processor(str(broken))  # the decoder's own error, which the index must catch
    index = VideoIndex.sync(tmp_path / "idx", model, processor, [*videos[:2], str(broken)], show_progress=False)
    assert index.paths == videos[:2] and list(index.failed) == [str(broken)]
    assert "cannot decode" in index.failed[str(broken)]


def no_space_left(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_while_saving_names_the_folder_and_space_and_keeps_the_index(setup, saved, monkeypatch):
    model, processor, videos, _ = setup
    before = VideoIndex.load(saved, model, processor)
    monkeypatch.setattr(index_storage, "save_file", no_space_left)
    grown = VideoIndex.load(saved, model, processor)
    grown.remove(videos[:1])
    with pytest.raises(IndexSpaceError, match=rf"{saved}.*needs about [0-9.]+ [kM]B") as raised:
        grown.save(saved)
    assert raised.value.errno == errno.ENOSPC and "\n" not in str(raised.value)
    monkeypatch.undo()
    after = VideoIndex.load(saved, model, processor)
    assert after.paths == before.paths == videos and not list(saved.glob(".*partial"))


def mount_tmpfs(folder: Path, size: str) -> str | None:
    """Mounts a tmpfs of `size` at `folder`; the reason when this machine does not allow it."""
    if shutil.which("mount") is None:
        return "no mount command"
    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    return None if result.returncode == 0 else f"mount -t tmpfs is not permitted here: {result.stderr.decode()}"


def test_a_full_disk_on_a_real_small_filesystem_leaves_the_previous_index_intact(setup, tmp_path):
    model, processor, videos, _ = setup
    disk = tmp_path / "disk"
    reason = mount_tmpfs(disk, "160k")
    if reason is not None:
        pytest.skip(reason)
    try:
        small = VideoIndex.build(model, processor, videos[:1], path=disk / "idx", show_progress=False)
        # 200 copies of its one video: about 300 kB of features, which cannot fit.
        copies = torch.zeros(200, dtype=torch.long)
        store = MemoryStore(small.videos.take(copies), small.signature["interaction"])
        bigger = VideoIndex(small.entries * 200, store, small.signature, path=disk / "idx")
        with pytest.raises(IndexSpaceError, match=rf"{disk / 'idx'}.*needs about"):
            bigger.save(disk / "idx")
        assert VideoIndex.load(disk / "idx", model, processor).paths == videos[:1]
        assert not list((disk / "idx").glob(".*partial"))
    finally:
        subprocess.run(["umount", str(disk)], check=False)
