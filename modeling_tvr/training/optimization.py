"""The optimiser of the authors' DRL training (`BertAdam` as their `main.py` builds it), and today's AdamW recipe.

The authors' recipe, exactly (their `tvr/models/optimization.py` and `main.py`, facts reproduced here):

- Adam without bias correction: ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g**2``,
  ``update = m / (sqrt(v) + eps)``, with b1 0.9, b2 0.98, eps 1e-6;
- weight decay added to the update, ``update += weight_decay * p``, before the learning rate is applied;
- ``p -= lr_group * warmup_cosine(step / total_steps, warmup) * update``, ``step`` counted from 0 for each parameter
  (so the first update is 0), ``warmup_cosine(x) = x / warmup`` while ``x < warmup``, else
  ``0.5 * (1 + cos(pi * x))`` over the whole run (not restarted after the warmup);
- each parameter's gradient clipped to norm 1.0 inside the optimiser (after the training loop clipped the global
  norm);
- groups: the CLIP parameters (their `clip.*`: both towers, both projections, `logit_scale`) at ``lr * coef_lr``,
  the rest at ``lr``; weight decay for every parameter whose name does not contain ``bias``. Their names have no
  ``LayerNorm``, so layer norms, embeddings and `logit_scale` are decayed; only biases are not.

On CUDA the authors also hold CLIP's Linear / Conv / attention matrices and both projections in fp16 (OpenAI's
`convert_weights`) and update them in fp16 arithmetic: at ``lr * coef_lr = 1e-7`` most such updates are below fp16
resolution, so most elements of those matrices never move in their runs (the exceptions: weights near 0, and elements
whose squared gradient underflows in fp16, where ``m / (sqrt(v) + eps)`` becomes large). ``fp16_clip_matrices=True``
reproduces that.

`train.py`'s step around the optimiser, for both recipes: backward, clip the global gradient norm, ``optimizer.step()``,
``scheduler.step()`` when there is a scheduler, zero the gradients, clamp `logit_scale` to at most ln(100).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

__all__ = [
    "AuthorsAdam",
    "RECIPES",
    "build_optimizer",
    "fp16_matrix_parameter_names",
    "is_clip_parameter",
    "pre_gather_parameters",
    "scale_pre_gather_gradients",
    "warmup_cosine",
]

RECIPES = ("authors", "adamw")

# This package's names of what the authors keep under `clip.`: both towers, both projections and the temperature.
_CLIP_PREFIXES = ("text_model.", "vision_model.", "text_projection.", "visual_projection.", "logit_scale")
# Applied after the authors gather the features across processes: every process computes them on the whole batch.
_POST_GATHER_PREFIXES = ("text_weight_head.", "video_weight_head.", "logit_scale")


def is_clip_parameter(name: str) -> bool:
    """Whether parameter `name` of a `DRLModel` is one the authors name `clip.*` (trained at ``lr * coef_lr``)."""
    return name.startswith(_CLIP_PREFIXES)


def warmup_cosine(progress: float, warmup: float) -> float:
    """The authors' learning-rate factor at `progress` (step / total steps): linear warmup, then cosine over the run.

    ``progress / warmup`` while ``progress < warmup``; afterwards ``0.5 * (1 + cos(pi * progress))``, which is the
    cosine of the WHOLE run, so it starts below 1 at the end of the warmup (0.976 after a 10 % warmup).
    """
    if progress < warmup:
        return progress / warmup
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def fp16_matrix_parameter_names(model: nn.Module) -> list[str]:
    """Names of the parameters that OpenAI's `convert_weights` stores in fp16, in this package's naming.

    These are the weights and biases of every Linear and Conv layer of the two towers (attention q / k / v / out, MLP,
    patch embedding) and both projections; not the embeddings, layer norms or `logit_scale`, and nothing outside CLIP.
    """
    names = []
    for prefix in ("text_model", "vision_model", "text_projection", "visual_projection"):
        root = model.get_submodule(prefix)
        modules = [("", root)] if isinstance(root, (nn.Linear, nn.Conv2d)) else root.named_modules()
        for module_name, module in modules:
            if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                for parameter_name, _ in module.named_parameters(recurse=False):
                    names.append(".".join(part for part in (prefix, module_name, parameter_name) if part))
    return names


def pre_gather_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters applied before the authors gather the features across processes: towers, projections, temporal.

    In their N-process runs these receive the full-batch gradient divided by N (each process back-propagates only its
    own slice of the gathered features, and DistributedDataParallel averages), while the WTI heads and `logit_scale`,
    applied after the gather on every process, receive the full-batch gradient.
    """
    return [p for name, p in model.named_parameters() if p.requires_grad and not name.startswith(_POST_GATHER_PREFIXES)]


@torch.no_grad()
def scale_pre_gather_gradients(parameters: Iterable[nn.Parameter], factor: float) -> None:
    """Multiply the gradients of `parameters` (see :func:`pre_gather_parameters`) by `factor`, in place."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if grads and factor != 1.0:
        torch._foreach_mul_(grads, factor)


class AuthorsAdam(torch.optim.Optimizer):
    """The authors' `BertAdam` with their warmup-cosine schedule built in (see the module docstring for the rules).

    Each parameter group holds ``lr``, ``weight_decay`` and ``fp16``; ``fp16`` groups are stored and updated in fp16
    arithmetic, with fp16 moments, as `BertAdam` does on the fp16 matrices of the authors' GPU runs. Their fp32 copies
    in the model always hold the fp16 values (rounded when the optimiser is built), so the forward sees what the
    authors' stored weights would be. The learning-rate schedule lives in the optimiser, as theirs does: there is no
    separate scheduler, and :meth:`current_lrs` tells the learning rates the next step will use.

    Args:
        params: Parameter groups (dicts with ``params``, ``lr``, ``weight_decay``, optionally ``fp16``).
        lr: Default learning rate of a group that sets none.
        warmup: Warmup as a fraction of `total_steps` (the authors' ``warmup_proportion``).
        total_steps: Number of optimiser steps of the whole run (the authors' ``t_total``); -1 for a constant rate.
        betas: ``(b1, b2)`` of the moving averages.
        eps: Added to ``sqrt(v)``.
        weight_decay: Default weight decay of a group that sets none.
        max_grad_norm: Norm each parameter's gradient is clipped to before the update (0 to skip).
    """

    def __init__(
        self,
        params: Iterable[dict[str, Any]],
        lr: float,
        warmup: float = 0.1,
        total_steps: int = -1,
        betas: tuple[float, float] = (0.9, 0.98),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        max_grad_norm: float = 1.0,
    ) -> None:
        if lr < 0 or not 0.0 <= betas[0] < 1.0 or not 0.0 <= betas[1] < 1.0 or eps < 0:
            raise ValueError(f"Invalid AuthorsAdam settings: lr={lr}, betas={betas}, eps={eps}.")
        if not 0.0 <= warmup < 1.0 and total_steps != -1:
            raise ValueError(f"warmup is a fraction of the run in [0, 1), got {warmup}.")
        defaults = {
            "lr": lr,
            "warmup": warmup,
            "total_steps": total_steps,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "max_grad_norm": max_grad_norm,
            "fp16": False,
        }
        super().__init__(params, defaults)
        with torch.no_grad():
            for group in self.param_groups:
                if group["fp16"]:
                    for parameter in group["params"]:
                        parameter.copy_(parameter.to(torch.float16))

    def _schedule(self, group: dict[str, Any], step: int) -> float:
        if group["total_steps"] == -1:
            return 1.0
        return warmup_cosine(step / group["total_steps"], group["warmup"])

    def current_lrs(self) -> list[float]:
        """The scheduled learning rate of each group for the next step (by the step count of its first parameter)."""
        lrs = []
        for group in self.param_groups:
            state = self.state.get(group["params"][0], {}) if group["params"] else {}
            lrs.append(group["lr"] * self._schedule(group, state.get("step", 0)))
        return lrs

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 - torch's Optimizer signature
        """One update of every parameter that has a gradient; see the class docstring for the rules."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            if any(p.grad.is_sparse for p in params):
                raise RuntimeError("AuthorsAdam does not support sparse gradients.")
            dtype = torch.float16 if group["fp16"] else None
            for p in params:
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["next_m"] = torch.zeros_like(p, dtype=dtype)
                    state["next_v"] = torch.zeros_like(p, dtype=dtype)
                elif dtype is not None and state["next_m"].dtype != dtype:
                    # `load_state_dict` casts optimiser state to the parameter's dtype (fp32); the values are fp16.
                    state["next_m"], state["next_v"] = state["next_m"].to(dtype), state["next_v"].to(dtype)
            for p in params:
                self._update(group, p, dtype)
        return loss

    def _update(self, group: dict[str, Any], p: nn.Parameter, dtype: torch.dtype | None) -> None:
        """`BertAdam`'s update of one parameter, in the order and rounding of its tensor operations.

        One parameter at a time, as `BertAdam` does: in fp16, torch's multi-tensor (`_foreach_*`) kernels round a
        Python scalar such as the 1e-7 learning rate differently from ``scalar * tensor``, which changes which weights
        move at all.
        """
        state = self.state[p]
        value, grad = (p, p.grad) if dtype is None else (p.to(dtype), p.grad.to(dtype))
        if group["max_grad_norm"] > 0:
            # What torch's `clip_grad_norm_(p, max_grad_norm)` does to one parameter, as `BertAdam` calls it.
            factor = group["max_grad_norm"] / (torch.linalg.vector_norm(grad) + 1e-6)
            grad.mul_(torch.clamp(factor, max=1.0))
        beta1, beta2 = group["betas"]
        next_m, next_v = state["next_m"], state["next_v"]
        next_m.mul_(beta1).add_(grad, alpha=1 - beta1)
        next_v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        update = next_m / (next_v.sqrt() + group["eps"])
        if group["weight_decay"] > 0.0:
            update += group["weight_decay"] * value
        value.add_(-(group["lr"] * self._schedule(group, state["step"])) * update)
        if dtype is not None:
            p.copy_(value)
        state["step"] += 1


def _authors_groups(model: nn.Module, lr: float, coef_lr: float, weight_decay: float, fp16: set[str]) -> list[dict]:
    """The authors' four groups (CLIP or not x decayed or not), the fp16 matrices split off as their own groups."""
    groups: dict[tuple[bool, bool, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            key = (is_clip_parameter(name), "bias" not in name, name in fp16)
            groups.setdefault(key, []).append(parameter)
    return [
        {
            "params": params,
            "lr": lr * coef_lr if is_clip else lr,
            "weight_decay": weight_decay if decayed else 0.0,
            "fp16": in_fp16,
        }
        for (is_clip, decayed, in_fp16), params in groups.items()
    ]


def _adamw_groups(model: nn.Module, lr: float, coef_lr: float, weight_decay: float) -> list[dict]:
    """CLIP at ``lr * coef_lr``, the rest at ``lr``; no decay for biases, norms and other 1-D parameters."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            no_decay = parameter.ndim < 2 or "norm" in name or name.endswith(".bias")
            groups.setdefault((is_clip_parameter(name), no_decay), []).append(parameter)
    return [
        {"params": params, "lr": lr * coef_lr if is_clip else lr, "weight_decay": 0.0 if no_decay else weight_decay}
        for (is_clip, no_decay), params in groups.items()
    ]


def build_optimizer(
    model: nn.Module,
    *,
    lr: float,
    coef_lr: float,
    weight_decay: float,
    warmup_proportion: float,
    total_steps: int,
    recipe: str = "authors",
    fp16_clip_matrices: bool = False,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    """The optimiser (and scheduler, if the recipe has a separate one) of a DRL training run.

    Args:
        model: A `DRLModel` (this package's parameter names).
        lr: Learning rate of the new modules (temporal module, WTI heads); the authors use 1e-4.
        coef_lr: Factor of the CLIP parameters' learning rate (1e-3 in the authors' runs).
        weight_decay: Weight decay (0.2 in the authors' runs).
        warmup_proportion: Fraction of the run spent warming up (0.1).
        total_steps: Number of optimiser steps in the whole run.
        recipe: ``"authors"``: :class:`AuthorsAdam` with the authors' groups, its schedule inside, no scheduler.
            ``"adamw"``: ``torch.optim.AdamW`` (betas 0.9 / 0.98, eps 1e-6), no decay on biases, norms and 1-D
            parameters, and transformers' cosine schedule with warmup.
        fp16_clip_matrices: With ``recipe="authors"``, hold the parameters of :func:`fp16_matrix_parameter_names` in
            fp16 and update them in fp16 arithmetic, as the authors' GPU runs do. Rounds them to fp16 now.

    Returns:
        ``(optimizer, scheduler)``; the scheduler is `None` for the authors' recipe.
    """
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}.")
    if total_steps < 1:
        raise ValueError(f"total_steps must be at least 1, got {total_steps}.")
    if recipe == "authors":
        fp16 = set(fp16_matrix_parameter_names(model)) if fp16_clip_matrices else set()
        groups = _authors_groups(model, lr, coef_lr, weight_decay, fp16)
        optimizer = AuthorsAdam(groups, lr=lr, warmup=warmup_proportion, total_steps=total_steps)
        return optimizer, None
    if fp16_clip_matrices:
        raise ValueError("fp16_clip_matrices reproduces the authors' recipe; it needs recipe='authors'.")
    from transformers import get_cosine_schedule_with_warmup

    optimizer = torch.optim.AdamW(_adamw_groups(model, lr, coef_lr, weight_decay), betas=(0.9, 0.98), eps=1e-6)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(warmup_proportion * total_steps), total_steps)
    return optimizer, scheduler
