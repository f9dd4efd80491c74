"""Gathering features with gradients: N processes with B/N samples take the same step as one process with B."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from .helpers import random_batch, run_torchrun, tiny_model

SCRIPT = Path(__file__).with_name("distributed_step.py")


def torchrun_step(processes: int, out: Path) -> dict[str, torch.Tensor]:
    result = run_torchrun(processes, SCRIPT, str(out))
    # A 2-process run has been seen to abort after finishing ("terminate called without an active exception"):
    # judge by the results it wrote.
    assert out.is_file(), result.stderr[-4000:]
    return load_file(out)


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_two_processes_with_half_batches_match_one_process_with_the_whole_batch(tmp_path):
    model = tiny_model(seed=5).train()
    model(**random_batch(batch=4, seed=7), return_loss=True).loss.backward()
    expected = {f"grad.{n}": p.grad for n, p in model.named_parameters() if p.grad is not None}

    distributed = torchrun_step(2, tmp_path / "two.safetensors")
    assert set(distributed) - {"loss", "logits_per_text"} == set(expected)
    single = tiny_model(seed=5).train()(**random_batch(batch=4, seed=7), return_loss=True)
    torch.testing.assert_close(distributed["loss"], single.loss.detach(), rtol=1e-5, atol=1e-6)
    # The loss covers both processes' pairs; the logits are the process's own: rank 0's two texts and two videos.
    assert distributed["logits_per_text"].shape == (2, 2)
    own_block = single.logits_per_text[:2, :2].detach()
    torch.testing.assert_close(distributed["logits_per_text"], own_block, rtol=1e-5, atol=1e-5)
    for name, grad in expected.items():
        scale = float(grad.abs().max()) + 1e-12
        error = float((distributed[name] - grad).abs().max())
        assert error <= 1e-4 * scale + 1e-7, f"{name}: {error:.3g} vs scale {scale:.3g}"
