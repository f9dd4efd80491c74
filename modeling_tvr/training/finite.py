"""Stopping a training run whose loss or gradients stop being finite, and finding non-finite weights before a save.

A run that diverges (typically a learning rate far too high) turns its loss and gradients into NaN or infinity, and
one optimiser step later every weight. `NonFiniteGuard` notices the first such step and the loop stops with an error
naming it; `nonfinite_tensors` is checked before anything is saved, selected or uploaded, so that a diverged model
never reaches a checkpoint, `best/`, the output folder or the Hub.

The run stops rather than skipping the step and counting: a loss that is NaN because the learning rate is far too high
stays NaN, and skipping steps would hide that behind a run that "finished" with nothing learned. Skipping would also
need the check before every optimiser step (a device sync per step) to keep the update out of the weights. Where a
non-finite gradient is expected and harmless, fp16's GradScaler, the scaler already skips the step; the guard then
watches the loss only.
"""

import math
from collections.abc import Mapping

import torch


class NonFiniteError(RuntimeError):
    """The run produced a non-finite loss, gradient or weight; the message names the step and what to change."""


def diverged(what: str, lr: float) -> str:
    """The one-line error of a diverged run: what was found, what happened to the outputs, and what to change.

    Args:
        what (`str`): What was found non-finite, and where.
        lr (`float`): The run's learning rate, which the message suggests lowering.
    """
    return (
        f"{what}: training diverged and was stopped; no checkpoint, best or final model holds a non-finite weight. "
        f"Lower --lr (now {lr:g}), e.g. ten times, and rerun."
    )


def nonfinite_tensors(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """The names of the floating-point tensors that hold a NaN or an infinity (empty: every one is finite).

    One fused check: the largest magnitude of every tensor (`torch._foreach_norm` with ord inf, which propagates NaN
    and, unlike the 2-norm, cannot overflow for large finite fp16 weights), stacked and read with a single device sync.
    The names are looked for only when that check fails.
    """
    floating = {name: tensor for name, tensor in tensors.items() if tensor.is_floating_point() and tensor.numel()}
    if not floating:
        return []
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for tensor in floating.values():  # the fused kernel takes one device and dtype at a time
        groups.setdefault((tensor.device, tensor.dtype), []).append(tensor.detach())
    device = next(iter(floating.values())).device
    peaks = [peak.float().to(device) for group in groups.values() for peak in torch._foreach_norm(group, math.inf)]
    if bool(torch.stack(peaks).isfinite().all()):
        return []
    return [name for name, tensor in floating.items() if not bool(tensor.detach().isfinite().all())]


def describe_tensors(names: list[str], shown: int = 3) -> str:
    """`a, b, c and 12 more`: the first few names of a list that may hold every tensor of a model."""
    listed = ", ".join(names[:shown])
    return listed + (f" and {len(names) - shown} more" if len(names) > shown else "")


class NonFiniteGuard:
    """Records the first optimiser step whose loss or total gradient norm is not finite, on the device.

    `observe` queues a few tiny device operations and never waits for the device, so the guard costs no sync per step;
    `first_bad_step` reads the record (one sync) at the points where the training loop syncs anyway: when it logs,
    before a checkpoint or a validation, and at the end.
    """

    def __init__(self) -> None:
        self._first: torch.Tensor | None = None  # -1 until a step is not finite

    def observe(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor | float | None = None) -> None:
        """Notes `step` as the first non-finite one if `loss` or `grad_norm` (None: not checked) is NaN or infinite."""
        values = [loss.detach().float().reshape(())]
        if grad_norm is not None:  # a tensor from torch's clip; some Accelerate back-ends return a float
            values.append(torch.as_tensor(grad_norm, dtype=torch.float32, device=loss.device).detach().reshape(()))
        if self._first is None:
            self._first = torch.full((), -1, dtype=torch.long, device=loss.device)
        bad = ~torch.stack(values).isfinite().all()
        self._first.masked_fill_(bad & (self._first < 0), step)

    def first_bad_step(self) -> int | None:
        """The first step observed with a non-finite loss or gradient norm, or None (a device sync)."""
        if self._first is None:
            return None
        step = int(self._first)
        return step if step >= 0 else None
