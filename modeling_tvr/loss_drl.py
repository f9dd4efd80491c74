"""Training objectives of DRL: the symmetric InfoNCE loss and Channel DeCorrelation Regularisation (CDCR), over the
batch of every process (`drl_loss` gathers the features, as open_clip's losses do)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn.functional as F

from .interaction_drl import (
    end_of_text_features,
    l2_normalize,
    mean_pooled_video,
    position_weights,
    text_video_similarity,
)

if TYPE_CHECKING:
    from .configuration_drl import DRLConfig


def symmetric_info_nce(logits_per_text: torch.Tensor) -> torch.Tensor:
    """Mean of the text-to-video and video-to-text cross-entropies with the matching pair on the diagonal."""
    targets = torch.arange(logits_per_text.shape[0], device=logits_per_text.device)
    return (F.cross_entropy(logits_per_text, targets) + F.cross_entropy(logits_per_text.T, targets)) / 2


# Floor on a channel's standard deviation. A channel is constant when every row is the same token, e.g. each frame's
# best match is the start token, whose feature is identical in every caption: the authors' code divides by zero
# there and the loss turns NaN. Real channels have std of order 1/sqrt(D), far above the floor, so values match.
_MIN_STD = 1e-6


def standardize(x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Zero mean and unit (unbiased) standard deviation per channel over the rows (only those where `rows` is 1).

    With `rows`, the statistics are masked sums rather than a selection of rows, so the shapes never depend on the
    data (torch.compile / torch.export need that); unselected rows come out as zeros.
    """
    if rows is None:
        return (x - x.mean(dim=0)) / x.std(dim=0).clamp_min(_MIN_STD)
    keep = rows.to(x.dtype).unsqueeze(-1)
    count = keep.sum(dim=0)
    mean = (x * keep).sum(dim=0) / count
    variance = ((x - mean) * keep).pow(2).sum(dim=0) / (count - 1)
    # Floored before the root: the root's gradient at a zero variance is infinite, and 0 * inf is NaN.
    return (x - mean) / variance.clamp_min(_MIN_STD**2).sqrt() * keep


def decorrelation_penalty(correlation: torch.Tensor, cdcr_alpha1: float, cdcr_alpha2: float) -> torch.Tensor:
    """`cdcr_alpha1 * sum_i (c_ii - 1)^2 + cdcr_alpha2 * sum_{i != j} c_ij^2`."""
    diagonal = torch.diagonal(correlation)
    on_diagonal = (diagonal - 1).pow(2).sum()
    off_diagonal = correlation.pow(2).sum() - diagonal.pow(2).sum()
    return cdcr_alpha1 * on_diagonal + cdcr_alpha2 * off_diagonal


def _random_valid_index(mask: torch.Tensor) -> torch.Tensor:
    counts = mask.sum(dim=-1).long()
    return torch.randint(0, 2**31 - 1, counts.shape, device=mask.device) % counts


def cross_correlation(
    a: torch.Tensor,
    b: torch.Tensor,
    row_weights: torch.Tensor | None,
    norm: float | torch.Tensor,
    rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """`sum_rows w * z(a) (x) z(b) / norm` with each side standardised over its own rows (those where `rows` is 1,
    when given): `[D, D]`."""
    z_a = standardize(a, rows)
    if row_weights is not None:
        z_a = z_a * row_weights.unsqueeze(1)
    return z_a.T @ standardize(b, rows) / norm


def channel_decorrelation_loss(
    text: torch.Tensor,
    text_mask: torch.Tensor,
    video: torch.Tensor,
    video_mask: torch.Tensor,
    text_weights: torch.Tensor,
    video_weights: torch.Tensor,
    mode: int,
    cdcr_alpha1: float,
    cdcr_alpha2: float,
) -> torch.Tensor:
    """
    CDCR over the matching pairs of a batch (text `a` with video `a`).

    Args:
        text (`torch.Tensor` of shape `(B, L, D)`):
            L2-normalised token features (padded positions NOT zeroed: a best match can fall on a padded position,
            whose feature then enters the statistics, as in the authors' code).
        text_mask (`torch.Tensor` of shape `(B, L)`):
            1 on valid tokens.
        video (`torch.Tensor` of shape `(B, F, D)`):
            L2-normalised frame features.
        video_mask (`torch.Tensor` of shape `(B, F)`):
            1 on valid frames.
        text_weights (`torch.Tensor` of shape `(B, L)`):
            The tokens' interaction weights (used by mode 3).
        video_weights (`torch.Tensor` of shape `(B, F)`):
            The frames' interaction weights (used by mode 3).
        mode (`int`):
            1 one random valid token and frame per sample; 2 every valid token with its best frame and every valid
            frame with its best token; 3 as 2 with each pair weighted by its token's or frame's weight.
        cdcr_alpha1 (`float`):
            Weight of the on-diagonal term (`DRLConfig.cdcr_alpha1`).
        cdcr_alpha2 (`float`):
            Weight of the off-diagonal term (`DRLConfig.cdcr_alpha2`).

    The token-led pairs give `c1 = z(tokens)^T z(best frames)` and the frame-led pairs `c2 = z(frames)^T
    z(best tokens)` (each of the four row sets standardised on its own, `c2` in frame-by-token orientation, as
    the authors compute it); `c = (c1 + c2) / 2`.
    """
    if mode == 0:
        return text.new_zeros(())
    batch_size = text.shape[0]
    batch = torch.arange(batch_size, device=text.device)
    if mode == 1:
        text_rows = text[batch, _random_valid_index(text_mask)]
        frame_rows = video[batch, _random_valid_index(video_mask)]
        return decorrelation_penalty(
            cross_correlation(text_rows, frame_rows, None, batch_size), cdcr_alpha1, cdcr_alpha2
        )

    scores = torch.einsum("btd,bvd->btv", text, video)
    scores = scores * text_mask.to(scores.dtype).unsqueeze(2) * video_mask.to(scores.dtype).unsqueeze(1)
    best_frame = scores.max(dim=2).indices  # [B, L]
    best_token = scores.max(dim=1).indices  # [B, F]
    # Every (caption, token) and (video, frame) row stays; padded rows are masked out of the statistics and the sums
    # instead of being selected away, so no shape depends on the masks (torch.compile, torch.export).
    dim = text.shape[-1]
    token_rows, frame_rows = text_mask.reshape(-1), video_mask.reshape(-1)
    tokens, frames_of_tokens = text.reshape(-1, dim), video[batch.unsqueeze(1), best_frame].reshape(-1, dim)
    frames, tokens_of_frames = video.reshape(-1, dim), text[batch.unsqueeze(1), best_token].reshape(-1, dim)
    if mode == 2:
        by_tokens = cross_correlation(tokens, frames_of_tokens, None, token_rows.sum(), rows=token_rows)
        by_frames = cross_correlation(frames, tokens_of_frames, None, frame_rows.sum(), rows=frame_rows)
    else:
        by_tokens = cross_correlation(tokens, frames_of_tokens, text_weights.reshape(-1), batch_size, rows=token_rows)
        by_frames = cross_correlation(frames, tokens_of_frames, video_weights.reshape(-1), batch_size, rows=frame_rows)
    return decorrelation_penalty((by_tokens + by_frames) / 2, cdcr_alpha1, cdcr_alpha2)


def pooled_decorrelation_loss(
    text_vectors: torch.Tensor, video_vectors: torch.Tensor, cdcr_alpha1: float, cdcr_alpha2: float
) -> torch.Tensor:
    """CDCR of the DP interaction: the normalised caption and pooled video vectors of the batch, `[B, D]` each."""
    correlation = cross_correlation(text_vectors, video_vectors, None, text_vectors.shape[0])
    return decorrelation_penalty(correlation, cdcr_alpha1, cdcr_alpha2)


def _process_group() -> tuple[int, int]:
    """`(rank, world_size)` of torch.distributed, `(0, 1)` outside it."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return 0, 1
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """
    Concatenates `tensor` from every process along dim 0, keeping the autograd graph: the backward sums the
    gradients of all processes' copies, so with DDP's averaging N processes with B/N samples each take the same
    step as one process with B (the authors' cross-GPU contrastive batch). A no-op outside torch.distributed.
    """
    if _process_group()[1] == 1:
        return tensor
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor.contiguous()), dim=0)


class DRLLossOutput(NamedTuple):
    """What `drl_loss` returns: the three losses (scalars) and the logits of this process's own pairs."""

    loss: torch.Tensor
    sim_loss: torch.Tensor
    cdcr_loss: torch.Tensor
    logits_per_text: torch.Tensor


def drl_loss(
    text_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    video_embeds: torch.Tensor,
    video_mask: torch.Tensor,
    logit_scale: torch.Tensor,
    config: DRLConfig,
    text_weight_head: Callable[[torch.Tensor], torch.Tensor] | None = None,
    video_weight_head: Callable[[torch.Tensor], torch.Tensor] | None = None,
    gather: bool = True,
) -> DRLLossOutput:
    """
    `sim_loss + cdcr_lambda * cdcr_loss` over matching pairs (text `i` describes video `i`), gathered from every
    process when `gather` is set, as in the authors' training.

    Args:
        text_embeds (`torch.Tensor` of shape `(batch_size, tokens, projection_dim)`):
            This process's unnormalised token features.
        attention_mask (`torch.Tensor` of shape `(batch_size, tokens)`):
            1 on valid tokens.
        video_embeds (`torch.Tensor` of shape `(batch_size, frames, projection_dim)`):
            This process's unnormalised frame features (after the temporal module).
        video_mask (`torch.Tensor` of shape `(batch_size, frames)`):
            1 on real frames.
        logit_scale (`torch.Tensor` of shape `()`):
            The learnable log temperature.
        config (`DRLConfig`):
            Reads `interaction`, `cdcr`, `cdcr_alpha1`, `cdcr_alpha2` and `cdcr_lambda`.
        text_weight_head (`Callable`, *optional*):
            The WTI weight head of the tokens (None: uniform weights); it scores the gathered features, so it
            receives the whole batch's gradient.
        video_weight_head (`Callable`, *optional*):
            The WTI weight head of the frames, likewise.
        gather (`bool`, defaults to `True`):
            Compute the loss over every process's pairs (`gather_with_grad`); a no-op outside torch.distributed.

    Returns:
        `DRLLossOutput`: `loss`, `sim_loss`, `cdcr_loss`, and `logits_per_text` `[batch_size, batch_size]`, the
        block of the loss's logits that this process's texts and videos make.
    """
    if text_embeds.shape[0] != video_embeds.shape[0]:
        raise ValueError(
            f"The contrastive loss needs matching pairs: got {text_embeds.shape[0]} texts and "
            f"{video_embeds.shape[0]} videos."
        )
    local = slice(0, text_embeds.shape[0])
    if gather:
        rank = _process_group()[0]
        local = slice(rank * text_embeds.shape[0], (rank + 1) * text_embeds.shape[0])
        text_embeds, attention_mask, video_embeds, video_mask = (
            gather_with_grad(tensor) for tensor in (text_embeds, attention_mask, video_embeds, video_mask)
        )
    # A training batch is small: the dense formulation is one einsum, with no host sync, and traces.
    similarity = text_video_similarity(
        text_embeds,
        attention_mask,
        video_embeds,
        video_mask,
        config.interaction,
        text_weight_head,
        video_weight_head,
        dense=True,
    )
    logits = logit_scale.exp() * similarity
    sim_loss = symmetric_info_nce(logits)
    if config.cdcr == 0:
        cdcr_loss = logits.new_zeros(())
    elif config.interaction == "dp":
        cdcr_loss = pooled_decorrelation_loss(
            l2_normalize(end_of_text_features(text_embeds, attention_mask)),
            mean_pooled_video(video_embeds, video_mask),
            cdcr_alpha1=config.cdcr_alpha1,
            cdcr_alpha2=config.cdcr_alpha2,
        )
    else:
        cdcr_loss = channel_decorrelation_loss(
            l2_normalize(text_embeds),
            attention_mask,
            l2_normalize(video_embeds),
            video_mask,
            position_weights(text_embeds, attention_mask, text_weight_head),
            position_weights(video_embeds, video_mask, video_weight_head),
            mode=config.cdcr,
            cdcr_alpha1=config.cdcr_alpha1,
            cdcr_alpha2=config.cdcr_alpha2,
        )
    loss = sim_loss + config.cdcr_lambda * cdcr_loss
    return DRLLossOutput(loss, sim_loss, cdcr_loss, logits[local, local])
