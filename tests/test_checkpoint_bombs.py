"""Reading checkpoints allocates what they honestly hold: zip bombs and repeated-view tensors are refused first."""

import resource
import zipfile
from pathlib import Path

import pytest
import torch

from modeling_tvr.conversion.checkpoint_files import CheckpointLoadError, load_official_state_dict


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def write_zip_bomb(path: Path, inflated_bytes: int) -> Path:
    """A TorchScript-shaped archive whose one storage member deflates from a few hundred kB to `inflated_bytes`."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("archive/constants.pkl", b"\x80\x02).")
        with archive.open("archive/data/0", "w") as member:
            block = bytes(16 * 1024**2)
            for _ in range(inflated_bytes // len(block)):
                member.write(block)
    return path


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    bomb = write_zip_bomb(tmp_path / "ViT-B-32.pt", 512 * 1024**2)
    assert bomb.stat().st_size < 2 * 1024**2
    before = peak_rss_bytes()
    with pytest.raises(CheckpointLoadError, match="inflate to 0.54 GB"):
        load_official_state_dict(bomb)
    assert peak_rss_bytes() - before < 256 * 1024**2  # nothing near the inflated size was allocated


def test_a_checkpoint_above_the_size_limit_is_refused_naming_the_limit(tmp_path):
    path = tmp_path / "big.bin"
    torch.save({"weight": torch.zeros(300_000)}, path)  # 1.2 MB, stored uncompressed
    with pytest.raises(CheckpointLoadError, match="above the limit of 0.0 GB.*max_bytes"):
        load_official_state_dict(path, max_bytes=1_000_000)
    assert load_official_state_dict(path)["weight"].shape == (300_000,)


def test_a_tensor_repeating_one_value_through_stride_zero_is_refused(tmp_path):
    path = tmp_path / "pytorch_model.bin"
    torch.save({"clip.visual.proj": torch.zeros(1).expand(2_500_000_000)}, path)  # 10 GB apparent, 4 bytes stored
    assert path.stat().st_size < 100_000
    with pytest.raises(CheckpointLoadError, match="clip.visual.proj.*repeatedly"):
        load_official_state_dict(path)
