"""A video index never returns wrong hits or loses entries: crashes, concurrent processes, corruption, edits."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from modeling_tvr.search import IndexConflictError, IndexCorruptError, IndexMismatchError, VideoIndex
from modeling_tvr.search import storage as index_storage
from modeling_tvr.search.fingerprint import content_hash

from .helpers import tiny_model_for, tiny_processor
from .index_helpers import QUERIES, write_clip


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("integrity")
    processor = tiny_processor(folder)
    model = tiny_model_for(processor.tokenizer, seed=4)
    videos = [str(write_clip(folder / f"clip{i}.mp4", seed=10 + i, seconds=1 + i % 3)) for i in range(6)]
    return model, processor, videos, folder


def committed_folder(path: Path) -> Path:
    return path / (path / "CURRENT").read_text()


def test_a_crash_between_writes_leaves_the_previous_index_whole(setup, tmp_path, monkeypatch):
    model, processor, videos, _ = setup
    index = VideoIndex.build(model, processor, videos[:3], path=tmp_path / "idx", show_progress=False)
    index.add(videos[3:])
    real_replace = os.replace

    def crash_at_commit(source, target):
        if Path(target).name == "CURRENT":
            raise KeyboardInterrupt("killed between writing the new version and committing it")
        return real_replace(source, target)

    monkeypatch.setattr(index_storage.os, "replace", crash_at_commit)
    with pytest.raises(KeyboardInterrupt):
        index.save(tmp_path / "idx")
    monkeypatch.setattr(index_storage.os, "replace", real_replace)
    loaded = VideoIndex.load(tmp_path / "idx", model, processor)
    assert loaded.paths == videos[:3] and loaded.videos.vectors.shape[0] == 3  # old manifest with old tensors
    assert loaded.search(QUERIES[:1], top_k=3)[0][0].video in videos[:3]
    loaded.refresh(videos)  # and the next save commits cleanly over the leftover
    loaded.save(tmp_path / "idx")
    assert VideoIndex.load(tmp_path / "idx").paths == videos


def test_a_second_copy_saving_over_newer_changes_fails_instead_of_losing_them(setup, tmp_path):
    model, processor, videos, _ = setup
    VideoIndex.build(model, processor, videos[:2], path=tmp_path / "idx", show_progress=False)
    first = VideoIndex.load(tmp_path / "idx", model, processor)
    second = VideoIndex.load(tmp_path / "idx", model, processor)
    first.add([videos[2]])
    second.add([videos[3]])
    first.save(tmp_path / "idx")
    with pytest.raises(IndexConflictError, match="changed by another process"):
        second.save(tmp_path / "idx")
    assert VideoIndex.load(tmp_path / "idx").paths == videos[:3]  # the first copy's addition is kept


SEARCH = """
import sys
from modeling_tvr.search.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_two_search_commands_on_a_new_folder_take_turns_and_both_see_every_video(setup, tmp_path):
    model, processor, videos, _ = setup
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    folder = tmp_path / "clips"
    folder.mkdir()
    for i, video in enumerate(videos):
        (folder / f"v{i}.mp4").write_bytes(Path(video).read_bytes())
    command = [sys.executable, "-c", SEARCH, "--model", str(tmp_path / "model"), "--videos", str(folder), "a dog"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (_, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err[-2000:]
        assert f"{len(videos)} video(s) indexed" in err
    (index_dir,) = (folder / ".drl-index").iterdir()
    assert len(VideoIndex.load(index_dir).paths) == len(videos)


def rewrite_tensors(path: Path, change) -> None:
    """Apply `change` to the committed tensors and record their new checksum, as a careful editor would."""
    version = committed_folder(path)
    tensors = load_file(version / "index.safetensors")
    change(tensors)
    save_file(tensors, version / "index.safetensors")
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["tensors_blake2b"] = content_hash(version / "index.safetensors")
    (version / "manifest.json").write_text(json.dumps(manifest))


def test_corrupt_truncated_or_non_finite_indexes_are_refused_by_name_with_the_fix(setup, tmp_path):
    model, processor, videos, _ = setup
    VideoIndex.build(model, processor, videos[:3], path=tmp_path / "idx", show_progress=False)
    tensor_file = committed_folder(tmp_path / "idx") / "index.safetensors"
    intact = tensor_file.read_bytes()
    tensor_file.write_bytes(intact[: len(intact) // 2])
    with pytest.raises(IndexCorruptError, match="checksum.*Rebuild it"):
        VideoIndex.load(tmp_path / "idx")
    tensor_file.write_bytes(intact)

    def one_infinite_row(tensors):
        tensors["summary"][1] = float("inf")

    rewrite_tensors(tmp_path / "idx", one_infinite_row)
    with pytest.raises(IndexCorruptError, match="not finite"):
        VideoIndex.load(tmp_path / "idx")

    def drop_a_row(tensors):
        for name in tensors:
            tensors[name] = tensors[name][:2].contiguous()

    rewrite_tensors(tmp_path / "idx", drop_a_row)
    with pytest.raises(IndexCorruptError, match="3 videos listed"):
        VideoIndex.load(tmp_path / "idx")
    (committed_folder(tmp_path / "idx") / "manifest.json").write_text("{not json")
    with pytest.raises(IndexCorruptError, match="not valid JSON"):
        VideoIndex.load(tmp_path / "idx")


def test_an_index_listing_files_outside_its_folder_is_refused(setup, tmp_path):
    model, processor, videos, folder = setup
    VideoIndex.build(model, processor, videos[:2], path=tmp_path / "idx", show_progress=False)
    manifest_file = committed_folder(tmp_path / "idx") / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["videos"][0]["path"] = "/etc/passwd"
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="outside"):
        VideoIndex.load(tmp_path / "idx", root=folder)


@pytest.mark.slow
def test_a_folder_of_links_to_videos_elsewhere_is_searched_again_from_its_index(setup, tmp_path):
    """A folder of symbolic links (a curated selection of a larger collection) is indexed on the first search; the
    second search loads that index instead of refusing its videos as lying outside the folder."""
    model, processor, videos, _ = setup
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    folder = tmp_path / "selection"
    folder.mkdir()
    for i, video in enumerate(videos[:3]):
        (folder / f"v{i}.mp4").symlink_to(Path(video).resolve())
    command = [sys.executable, "-c", SEARCH, "--model", str(tmp_path / "model"), "--videos", str(folder), "a dog"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    versions = []
    for run in ("indexes", "loads"):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{run}: {result.stderr[-2000:]}"
        assert all(f"v{i}.mp4" in result.stdout for i in range(3)), result.stdout
        (index_dir,) = (folder / ".drl-index").iterdir()
        versions.append(committed_folder(index_dir))
    assert versions[0] == versions[1]  # the second search changed nothing in the index


def test_a_file_replaced_by_one_of_the_same_size_and_time_is_encoded_again(setup, tmp_path):
    model, processor, videos, _ = setup
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(Path(videos[0]).read_bytes())
    index = VideoIndex.build(model, processor, [str(clip)], show_progress=False)
    stamp = clip.stat()
    replacement = bytearray(clip.read_bytes())
    middle = len(replacement) // 2
    replacement[middle : middle + 64] = bytes(64)  # same size, other content (inside the frame data)
    clip.write_bytes(bytes(replacement))
    os.utime(clip, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # and the same modification time
    assert clip.stat().st_size == stamp.st_size and clip.stat().st_mtime_ns == stamp.st_mtime_ns
    assert index.refresh([str(clip)]) == {"removed": 0, "reencoded": 1, "added": 0}


def test_signature_covers_every_weight_and_preprocessing_setting_and_not_the_dtype(setup, tmp_path):
    model, processor, videos, _ = setup
    VideoIndex.build(model, processor, videos[:2], path=tmp_path / "idx", show_progress=False)
    changed = tiny_model_for(processor.tokenizer, seed=4)
    with torch.no_grad():
        weight = changed.text_model.encoder.layers[1].mlp.fc2.weight
        weight.view(-1)[-1] += 0.5  # far past the first values of the tensor
    with pytest.raises(IndexMismatchError):
        VideoIndex.load(tmp_path / "idx", changed, processor)
    unnormalised = tiny_processor(tmp_path)
    unnormalised.video_processor.do_normalize = False
    with pytest.raises(IndexMismatchError, match="video processor"):
        VideoIndex.load(tmp_path / "idx", model, unnormalised)
    half = tiny_model_for(processor.tokenizer, seed=4).half()
    VideoIndex.load(tmp_path / "idx", half, processor)  # the same weights in fp16 are the same model


def test_videos_the_model_encodes_to_non_finite_features_are_reported_not_indexed(setup, monkeypatch):
    model, processor, videos, _ = setup
    original = model.get_video_features

    def nan_for_the_second(pixels, mask):
        output = original(pixels, mask)
        output.video_embeds[1] = float("nan")
        return output

    monkeypatch.setattr(model, "get_video_features", nan_for_the_second)
    index = VideoIndex.build(model, processor, videos[:3], batch_size=3, show_progress=False)
    assert index.paths == [videos[0], videos[2]]
    assert "non-finite" in index.failed[videos[1]]
