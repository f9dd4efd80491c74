"""Training objectives of DRL: the symmetric InfoNCE loss and Channel DeCorrelation Regularisation (CDCR)."""

import torch
import torch.nn.functional as F


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


def decorrelation_penalty(correlation: torch.Tensor, alpha_on: float, alpha_off: float) -> torch.Tensor:
    """`alpha_on * sum_i (c_ii - 1)^2 + alpha_off * sum_{i != j} c_ij^2`."""
    diagonal = torch.diagonal(correlation)
    on_diagonal = (diagonal - 1).pow(2).sum()
    off_diagonal = correlation.pow(2).sum() - diagonal.pow(2).sum()
    return alpha_on * on_diagonal + alpha_off * off_diagonal


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
    alpha_on: float,
    alpha_off: float,
) -> torch.Tensor:
    """
    CDCR over the matching pairs of a batch (text `a` with video `a`).

    Args:
        text: `[B, L, D]` L2-normalised token features (padded positions NOT zeroed: a best match can fall on a
            padded position, whose feature then enters the statistics, as in the authors' code).
        text_mask, video_mask: `[B, L]`, `[B, F]` validity masks.
        video: `[B, F, D]` L2-normalised frame features.
        text_weights, video_weights: `[B, L]`, `[B, F]` interaction weights (used by mode 3).
        mode: 1 one random valid token and frame per sample; 2 every valid token with its best frame and every
            valid frame with its best token; 3 as 2 with each pair weighted by its token's or frame's weight.
        alpha_on, alpha_off: weights of the on- and off-diagonal terms.

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
        return decorrelation_penalty(cross_correlation(text_rows, frame_rows, None, batch_size), alpha_on, alpha_off)

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
    return decorrelation_penalty((by_tokens + by_frames) / 2, alpha_on, alpha_off)


def pooled_decorrelation_loss(
    text_vectors: torch.Tensor, video_vectors: torch.Tensor, alpha_on: float, alpha_off: float
) -> torch.Tensor:
    """CDCR of the DP interaction: the normalised caption and pooled video vectors of the batch, `[B, D]` each."""
    correlation = cross_correlation(text_vectors, video_vectors, None, text_vectors.shape[0])
    return decorrelation_penalty(correlation, alpha_on, alpha_off)
