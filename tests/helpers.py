"""Tiny random DRL models and inputs for tests, and where the authors' golden tensors live."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import torch

from modeling_tvr import DRLConfig, DRLModel

# The authors' golden tensors: the full set in the project's shared folder when it is there (CI, developers), else
# the paper-configuration case shipped with the tests, so that a clone checks parity too.
_SHARED_REFERENCE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "drl_reference"
_BUNDLED_REFERENCE_DIR = Path(__file__).resolve().parent / "fixtures" / "drl_reference"
REFERENCE_DIR = _SHARED_REFERENCE_DIR if _SHARED_REFERENCE_DIR.is_dir() else _BUNDLED_REFERENCE_DIR

TINY_TEXT = {
    "vocab_size": 100,
    "hidden_size": 64,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "max_position_embeddings": 16,
    "bos_token_id": 98,
    "eos_token_id": 99,
    "pad_token_id": 0,
}
TINY_VISION = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 16,
}


def tiny_config(heads: int = 2, **overrides) -> DRLConfig:
    """A DRL config small enough to run in milliseconds on CPU (`heads=1` is OpenAI's width / 64 rule)."""
    options = {"projection_dim": 64, "max_frames": 6, "max_words": 16, "temporal_layers": 2}
    options.update(overrides)
    text = {**TINY_TEXT, "num_attention_heads": heads}
    vision = {**TINY_VISION, "num_attention_heads": heads}
    return DRLConfig(text_config=text, vision_config=vision, **options)


def tiny_model(seed: int = 0, heads: int = 2, **overrides) -> DRLModel:
    torch.manual_seed(seed)
    return DRLModel(tiny_config(heads=heads, **overrides)).eval()


def random_batch(batch: int = 3, frames: int = 6, tokens: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    """Inputs in the authors' layout: start token 98, end token 99, padding 0; some videos padded."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.zeros(batch, tokens, dtype=torch.long)
    attention_mask = torch.zeros(batch, tokens, dtype=torch.long)
    video_mask = torch.zeros(batch, frames, dtype=torch.long)
    for i in range(batch):
        length = int(torch.randint(3, tokens + 1, (1,), generator=generator))
        input_ids[i, 0] = 98
        input_ids[i, 1 : length - 1] = torch.randint(1, 98, (length - 2,), generator=generator)
        input_ids[i, length - 1] = 99
        attention_mask[i, :length] = 1
        video_mask[i, : int(torch.randint(1, frames + 1, (1,), generator=generator))] = 1
    video_mask[0] = 1  # at least one full video
    pixels = torch.randn(batch, frames, 3, 32, 32, generator=generator) * video_mask[:, :, None, None, None]
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "pixel_values_videos": pixels,
        "video_mask": video_mask,
    }


def tiny_tokenizer(folder: Path):
    """A DRLCLIPTokenizer from a small merges file in OpenAI's format, learned by the tokenizer tests."""
    from modeling_tvr import clip_tokenizer_from_bpe

    from .openai_tokenizer import LEARNED_MERGES, write_merges

    return clip_tokenizer_from_bpe(write_merges(folder / "bpe_tiny.txt.gz", LEARNED_MERGES))


def tiny_processor(folder: Path, max_words: int = 16, max_frames: int = 6):
    """A DRLProcessor for the tiny model: 32 px frames, `max_frames` frames, `max_words` tokens."""
    from modeling_tvr import DRLProcessor, DRLVideoProcessor

    video = DRLVideoProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, max_frames=max_frames)
    return DRLProcessor(video_processor=video, tokenizer=tiny_tokenizer(folder), max_words=max_words)


def tiny_model_for(tokenizer, seed: int = 0, **overrides) -> DRLModel:
    """A tiny DRL model whose vocabulary and special tokens are the tokenizer's."""
    text = {
        **TINY_TEXT,
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    options = {"projection_dim": 64, "max_frames": 6, "max_words": 16, "temporal_layers": 2, **overrides}
    torch.manual_seed(seed)
    return DRLModel(DRLConfig(text_config=text, vision_config=dict(TINY_VISION), **options)).eval()


def run_torchrun(processes: int, script: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node=N script args` in its own process group, killed whole afterwards.

    A finished 2-process run has been seen to leave a worker behind (and to abort after writing its results), which
    then holds a core for the rest of the suite: callers judge by the files the run wrote, and nothing outlives it.
    """
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [torchrun, "--standalone", f"--nproc_per_node={processes}", str(script), *args]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stdout, stderr = "", f"torchrun did not finish within {timeout} s"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
