"""Training loss: symmetric InfoNCE plus lambda x CDCR, every CDCR mode, gradient checkpointing."""

import pytest
import torch

from modeling_tvr.loss_drl import decorrelation_penalty, drl_loss, symmetric_info_nce

from .helpers import random_batch, tiny_model


def test_symmetric_info_nce_is_the_mean_of_both_directions():
    logits = torch.randn(5, 5, generator=torch.Generator().manual_seed(0))
    target = torch.arange(5)
    expected = (
        torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)
    ) / 2
    torch.testing.assert_close(symmetric_info_nce(logits), expected)


def test_decorrelation_penalty_terms():
    c = torch.tensor([[0.5, 0.2], [-0.1, 1.0]])
    expected = 2.0 * ((0.5 - 1) ** 2 + 0.0) + 3.0 * (0.2**2 + 0.1**2)
    assert decorrelation_penalty(c, 2.0, 3.0).item() == pytest.approx(expected)


@pytest.mark.parametrize(("interaction", "cdcr"), [("wti", 1), ("wti", 2), ("wti", 3), ("ti", 3), ("dp", 2)])
def test_total_loss_is_sim_loss_plus_lambda_cdcr_and_backpropagates(interaction, cdcr):
    def forward(alpha1: float, alpha2: float):
        options = {"cdcr_alpha1": alpha1, "cdcr_alpha2": alpha2, "cdcr_lambda": 0.01}
        model = tiny_model(interaction=interaction, cdcr=cdcr, **options).train()
        torch.manual_seed(1)  # CDCR mode 1 draws its token and frame at random
        return model, model(**random_batch(batch=4), return_loss=True)

    model, out = forward(0.5, 0.1)
    _, on_diagonal = forward(1.0, 0.0)
    _, off_diagonal = forward(0.0, 1.0)
    # alpha1 weighs the diagonal term and alpha2 the off-diagonal one, both positive on real features; the
    # similarity loss does not depend on them.
    assert on_diagonal.cdcr_loss.item() > 0 and off_diagonal.cdcr_loss.item() > 0
    torch.testing.assert_close(out.cdcr_loss, 0.5 * on_diagonal.cdcr_loss + 0.1 * off_diagonal.cdcr_loss)
    torch.testing.assert_close(out.sim_loss, on_diagonal.sim_loss)
    torch.testing.assert_close(out.loss, out.sim_loss + 0.01 * out.cdcr_loss)
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_cdcr_off_gives_zero_regulariser():
    model = tiny_model(cdcr=0).train()
    out = model(**random_batch(batch=4), return_loss=True)
    assert out.cdcr_loss.item() == 0.0
    torch.testing.assert_close(out.loss, out.sim_loss)


@pytest.mark.parametrize("interaction", ["wti", "ti", "dp"])
def test_drl_loss_on_the_features_is_the_forward_loss(interaction):
    model = tiny_model(interaction=interaction).train()
    batch = random_batch(batch=4)
    out = model(**batch, return_loss=True)
    heads = (model.text_weight_head, model.video_weight_head)
    loss = drl_loss(
        out.text_embeds,
        batch["attention_mask"],
        out.video_embeds,
        batch["video_mask"],
        model.logit_scale,
        model.config,
        *heads,
    )
    torch.testing.assert_close(loss.loss, out.loss, rtol=0, atol=0)
    torch.testing.assert_close((loss.sim_loss, loss.cdcr_loss), (out.sim_loss, out.cdcr_loss), rtol=0, atol=0)
    # Outside torch.distributed the batch is this process's alone: the logits are all of the loss's.
    assert out.logits_per_text.shape == (4, 4)
    torch.testing.assert_close(loss.logits_per_text, out.logits_per_text, rtol=0, atol=0)


def test_drl_loss_refuses_unmatched_batches():
    model = tiny_model()
    text, video = torch.randn(3, 16, 64), torch.randn(2, 6, 64)
    with pytest.raises(ValueError, match="matching pairs: got 3 texts and 2 videos"):
        drl_loss(text, torch.ones(3, 16), video, torch.ones(2, 6), model.logit_scale, model.config)


def test_gradient_checkpointing_gives_the_same_gradients():
    batch = random_batch(batch=4)
    grads = []
    for checkpointing in (False, True):
        model = tiny_model(seed=3).train()
        if checkpointing:
            model.activation_checkpointing_enable()
        model(**batch, return_loss=True).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-6)


def test_constant_channel_does_not_turn_the_loss_nan():
    """Every frame matching the start token (identical in all captions) makes a channel constant."""
    from modeling_tvr.loss_drl import channel_decorrelation_loss

    g = torch.Generator().manual_seed(0)
    text = torch.nn.functional.normalize(torch.randn(3, 4, 8, generator=g), dim=-1)
    text[:, 0] = torch.nn.functional.normalize(torch.ones(8), dim=0)  # the shared start token
    video = text[:, :1].expand(3, 2, 8).clone()  # every frame equals the start token: its best match
    mask_t, mask_v = torch.ones(3, 4), torch.ones(3, 2)
    text.requires_grad_(True)
    for mode in (2, 3):
        loss = channel_decorrelation_loss(text, mask_t, video, mask_v, mask_t / 4, mask_v / 2, mode, 1.0, 1.0)
        assert torch.isfinite(loss)
        (gradient,) = torch.autograd.grad(loss, text)
        assert torch.isfinite(gradient).all(), mode  # nor its gradient
