"""`build_optimizer(recipe="authors")` against the authors' rules, recomputed here step by step from their text.

The reference below is written from the recipe's description (the rules listed in the docstring of
`modeling_tvr/training/optimization.py`, taken from the authors' code), one parameter at a time with plain tensor
arithmetic, and shares no code with `modeling_tvr.training.optimization`.
"""

import copy
import math

import numpy as np
import pytest
import torch

from modeling_tvr.training.optimization import (
    build_optimizer,
    fp16_matrix_parameter_names,
    pre_gather_parameters,
    scale_pre_gather_gradients,
    warmup_cosine,
)

from .helpers import random_batch, tiny_model

LR, COEF_LR, WEIGHT_DECAY, WARMUP, TOTAL = 1e-2, 0.1, 0.2, 0.3, 10


def authors_factor(step: int) -> float:
    x = step / TOTAL
    return x / WARMUP if x < WARMUP else 0.5 * (1 + math.cos(math.pi * x))


def is_authors_clip(name: str) -> bool:
    # The authors' `clip.` parameters, in this package's names.
    return name.split(".")[0] in ("text_model", "vision_model", "text_projection", "visual_projection", "logit_scale")


class ReferenceBertAdam:
    """One parameter's state under the authors' rules."""

    def __init__(self, name: str, value: torch.Tensor):
        self.value = value.detach().clone().double()
        self.m = torch.zeros_like(self.value)
        self.v = torch.zeros_like(self.value)
        self.step = 0
        self.lr = LR * COEF_LR if is_authors_clip(name) else LR
        self.decay = 0.0 if "bias" in name else WEIGHT_DECAY

    def update(self, grad: torch.Tensor) -> None:
        grad = grad.double()
        norm = grad.norm()
        grad = grad * min(1.0, 1.0 / (float(norm) + 1e-6))  # each parameter clipped to norm 1
        self.m = 0.9 * self.m + 0.1 * grad
        self.v = 0.98 * self.v + 0.02 * grad * grad
        update = self.m / (self.v.sqrt() + 1e-6) + self.decay * self.value
        self.value = self.value - self.lr * authors_factor(self.step) * update
        self.step += 1


def loss_of(model, batch):
    return model(**batch, return_loss=True).loss


def test_authors_recipe_follows_the_rules_step_by_step():
    model = tiny_model(seed=3).train()
    batches = [random_batch(batch=3, seed=seed) for seed in range(6)]
    reference = {name: ReferenceBertAdam(name, p) for name, p in model.named_parameters()}
    optimizer, scheduler = build_optimizer(
        model, lr=LR, coef_lr=COEF_LR, weight_decay=WEIGHT_DECAY, warmup_proportion=WARMUP, total_steps=TOTAL
    )
    assert scheduler is None  # the schedule lives in the optimiser, as in the authors' BertAdam
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    for step, batch in enumerate(batches):
        loss_of(model, batch).backward()
        grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
        optimizer.step()
        optimizer.zero_grad()
        for name, grad in grads.items():
            reference[name].update(grad)
        if step == 0:
            # The first update has learning rate 0: nothing moves.
            for name, p in model.named_parameters():
                assert torch.equal(p.detach(), before[name]), name
    for name, p in model.named_parameters():
        expected = reference[name].value.to(p.dtype)
        torch.testing.assert_close(p.detach(), expected, rtol=2e-5, atol=2e-6, msg=name)
        assert not torch.equal(p.detach(), before[name]) or name not in reference or reference[name].step == 0


def test_layer_norms_embeddings_and_temperature_are_decayed_biases_are_not():
    model = tiny_model(seed=1).train()
    optimizer, _ = build_optimizer(model, lr=1.0, coef_lr=1.0, weight_decay=0.5, warmup_proportion=0.0, total_steps=4)
    decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    names = dict(model.named_parameters())
    for name in (
        "text_model.final_layer_norm.weight",
        "vision_model.embeddings.class_embedding",
        "text_model.embeddings.token_embedding.weight",
        "logit_scale",
        "temporal_transformer.layers.0.layer_norm1.weight",
    ):
        assert decay[id(names[name])] == 0.5, name
    for name in ("text_model.final_layer_norm.bias", "text_weight_head.0.bias", "visual_projection.weight"):
        assert decay[id(names[name])] == (0.0 if "bias" in name else 0.5), name
    # A decayed parameter with a zero gradient still moves: p -= lr * factor * wd * p.
    norm = names["text_model.final_layer_norm.weight"]
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    before = norm.detach().clone()
    optimizer.step()  # step 0: factor 0 ... unless the warmup is 0, where the cosine starts at 1
    torch.testing.assert_close(norm.detach(), before - 0.5 * before)


def test_learning_rates_follow_one_cosine_over_the_whole_run():
    assert warmup_cosine(0.0, 0.1) == 0.0
    assert warmup_cosine(0.05, 0.1) == pytest.approx(0.5)
    # Not restarted after the warmup: at its end the cosine of the whole run is already below 1.
    assert warmup_cosine(0.1, 0.1) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.1)))
    assert warmup_cosine(1.0, 0.1) == pytest.approx(0.0)
    model = tiny_model()
    optimizer, _ = build_optimizer(
        model, lr=1e-4, coef_lr=1e-3, weight_decay=0.2, warmup_proportion=0.1, total_steps=100
    )
    assert sorted(set(optimizer.current_lrs())) == [0.0]  # step 0
    (clip_lr,) = [group["lr"] for group in optimizer.param_groups if group["params"][0] is model.logit_scale]
    assert clip_lr == pytest.approx(1e-7)


def test_fp16_matrices_leave_a_1e7_update_below_fp16_resolution():
    torch.manual_seed(0)
    model = tiny_model(seed=2).train()
    fp16_names = set(fp16_matrix_parameter_names(model))
    assert "text_model.encoder.layers.0.self_attn.q_proj.weight" in fp16_names
    assert "vision_model.embeddings.patch_embedding.weight" in fp16_names
    assert {"text_projection.weight", "visual_projection.weight"} <= fp16_names
    assert not any("norm" in name or "embedding.weight" in name and "patch" not in name for name in fp16_names)
    assert not any(name.startswith(("temporal_transformer", "text_weight_head", "logit_scale")) for name in fp16_names)

    optimizer, _ = build_optimizer(
        model,
        lr=1e-4,
        coef_lr=1e-3,
        weight_decay=0.2,
        warmup_proportion=0.0,  # full learning rate at the first step: 1e-7 for CLIP
        total_steps=1000,
        fp16_clip_matrices=True,
    )
    name = "text_model.encoder.layers.0.mlp.fc1.weight"
    weight = dict(model.named_parameters())[name]
    assert torch.equal(weight.detach(), weight.detach().half().float())  # rounded to fp16 storage when built
    before = weight.detach().clone()
    head_before = model.text_weight_head[0].weight.detach().clone()
    loss_of(model, random_batch(seed=4)).backward()
    grad = weight.grad.detach().clone()
    optimizer.step()
    after = weight.detach()

    # fp16 emulation of the authors' update of this weight, written from the rules.
    holder = before.half().requires_grad_()
    holder.grad = grad.half()
    torch.nn.utils.clip_grad_norm_(holder, 1.0)  # what BertAdam calls on each (here fp16) parameter
    g = holder.grad
    m = (torch.zeros_like(g) * 0.9).add_(g, alpha=0.1)
    v = (torch.zeros_like(g) * 0.98).addcmul_(g, g, value=0.02)
    update = m / (v.sqrt() + 1e-6) + 0.2 * before.half()
    emulated = before.half() - (1e-7 * 0.5 * (1 + math.cos(0.0))) * update
    changed = after != before
    assert torch.equal(changed, emulated.float() != before)
    # Most elements of a typical weight do not move. Those that do are near 0, or have a gradient so small that its
    # square underflows in fp16 (v = 0, so m / (sqrt(v) + 1e-6) is large): the authors' fp16 arithmetic, kept as is.
    assert changed.float().mean() < 0.1
    # In fp32 the same update would move nearly every element.
    assert ((before - 1e-7 * update.float()) != before).float().mean() > 0.9
    # The new modules (fp32, lr 1e-4) do move.
    assert (head_before != model.text_weight_head[0].weight.detach()).float().mean() > 0.9


def test_fp16_optimizer_state_survives_a_checkpoint_round_trip():
    model = tiny_model(seed=5).train()
    kwargs = {"lr": 1e-3, "coef_lr": 1.0, "weight_decay": 0.1, "warmup_proportion": 0.0, "total_steps": 10}
    optimizer, _ = build_optimizer(model, **kwargs, fp16_clip_matrices=True)
    loss_of(model, random_batch(seed=1)).backward()
    optimizer.step()
    state = copy.deepcopy(optimizer.state_dict())  # as read back from a checkpoint file, not aliasing the live state
    twin = tiny_model(seed=5).train()
    twin.load_state_dict(model.state_dict())
    resumed, _ = build_optimizer(twin, **kwargs, fp16_clip_matrices=True)
    resumed.load_state_dict(state)  # torch casts the moments to the parameters' fp32 here
    for m in (model, twin):
        m.zero_grad()
        loss_of(m, random_batch(seed=2)).backward()
    optimizer.step()
    resumed.step()
    for (name, a), b in zip(model.named_parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b), name


def test_pre_gather_gradient_scaling_spares_the_weight_heads_and_temperature():
    model = tiny_model().train()
    loss_of(model, random_batch()).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    scale_pre_gather_gradients(pre_gather_parameters(model), 0.25)
    for name, p in model.named_parameters():
        if name not in grads:
            continue
        after_gather = name.startswith(("text_weight_head", "video_weight_head", "logit_scale"))
        torch.testing.assert_close(p.grad, grads[name] if after_gather else grads[name] * 0.25, msg=name)


def test_adamw_recipe_is_the_previous_behaviour():
    model = tiny_model()
    optimizer, scheduler = build_optimizer(
        model, lr=1e-3, coef_lr=0.1, weight_decay=0.2, warmup_proportion=0.1, total_steps=50, recipe="adamw"
    )
    assert isinstance(optimizer, torch.optim.AdamW)
    assert all(group["betas"] == (0.9, 0.98) and group["eps"] == 1e-6 for group in optimizer.param_groups)
    # Every trainable parameter exactly once: CLIP's at lr * coef_lr, the new modules' at lr; matrices decay,
    # biases, norms and other 1-D parameters do not.
    settings = {id(p): (g["initial_lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(settings)
    for name, p in model.named_parameters():
        decays = p.ndim >= 2 and "norm" not in name
        expected = (1e-3 * 0.1 if is_authors_clip(name) else 1e-3, 0.2 if decays else 0.0)
        assert settings[id(p)] == pytest.approx(expected), name
    # transformers' cosine schedule with warmup: linear from 0 over the first 10 % (5 steps), then half a cosine
    # down to 0 at the last step.
    factors = []
    for _ in range(51):
        factors.append(optimizer.param_groups[0]["lr"] / optimizer.param_groups[0]["initial_lr"])
        optimizer.step()
        scheduler.step()
    expected = [k / 5 if k < 5 else 0.5 * (1 + math.cos(math.pi * (k - 5) / 45)) for k in range(51)]
    np.testing.assert_allclose(factors, expected, atol=1e-12)
    with pytest.raises(ValueError, match="recipe='authors'"):
        build_optimizer(
            model,
            lr=1e-3,
            coef_lr=0.1,
            weight_decay=0.2,
            warmup_proportion=0.1,
            total_steps=50,
            recipe="adamw",
            fp16_clip_matrices=True,
        )
    with pytest.raises(ValueError, match="recipe must be one of"):
        build_optimizer(model, lr=1, coef_lr=1, weight_decay=0, warmup_proportion=0, total_steps=1, recipe="sgd")
