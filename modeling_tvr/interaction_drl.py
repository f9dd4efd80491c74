"""Text-video interactions of DRL: weighted token-wise (WTI), token-wise (TI) and dot product (DP).

The pairwise scoring is split in two steps so that callers (the model, a video index) can prepare each side
once and score many pairs:

1. `prepare_tokens` turns raw features `[N, L, D]` and a mask into L2-normalised features that are zero on
   padded positions, plus per-position weights that sum to one over the valid positions.
2. `token_wise_similarity` scores every text against every video in chunks whose size is derived from a
   memory budget, so memory stays bounded for any number of texts and videos.

Zeroing padded features before the matrix product gives exactly the authors' masked similarity `s * m_t * m_v`
(padded pairs score 0, not -inf), so a padded frame can still win a max when every real frame scores below 0.
"""

import math

import torch

# Bytes of the `[texts, tokens, videos, frames]` score block materialised at once by `token_wise_similarity`.
DEFAULT_CHUNK_BYTES = 256 * 1024**2


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension restricted to positions where `mask` is non-zero."""
    return torch.softmax(logits.masked_fill(mask == 0, float("-inf")), dim=-1)


def uniform_weights(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Weights `1 / n_valid` on valid positions and 0 on padding (the TI interaction)."""
    mask = mask.to(dtype)
    return mask / mask.sum(dim=-1, keepdim=True)


def l2_normalize(features: torch.Tensor) -> torch.Tensor:
    """Divides by the L2 norm over the last dimension, as the authors do (no epsilon)."""
    return features / features.norm(dim=-1, keepdim=True)


def prepare_tokens(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L2-normalised `[N, L, D]` features with padded positions set to zero."""
    return l2_normalize(features) * mask.unsqueeze(-1).to(features.dtype)


def chunk_sizes(
    num_texts: int, num_videos: int, num_tokens: int, num_frames: int, bytes_per_element: int, chunk_bytes: int
) -> tuple[int, int]:
    """Texts and videos per block so that one `[texts, tokens, videos, frames]` block fits `chunk_bytes`."""
    pairs_per_chunk = max(1, chunk_bytes // (num_tokens * num_frames * bytes_per_element))
    texts = max(1, min(num_texts, math.isqrt(pairs_per_chunk)))
    videos = max(1, min(num_videos, pairs_per_chunk // texts))
    if videos == num_videos:  # spend the unused budget on more texts per block
        texts = max(1, min(num_texts, pairs_per_chunk // videos))
    return texts, videos


def _score_block(text: torch.Tensor, text_w: torch.Tensor, video: torch.Tensor, video_w: torch.Tensor) -> torch.Tensor:
    n_t, n_tok, dim = text.shape
    n_v, n_fr, _ = video.shape
    # Frames are laid out frame-major ([frames, videos]) so that both maxima (over frames, over tokens) reduce an
    # outer dimension: elementwise maxima of contiguous rows, which vectorise, instead of a strided reduction over
    # the 12 frames of each video. One matrix product gives every token-frame score: [texts * tokens, frames * videos].
    frames_major = video.transpose(0, 1).reshape(n_fr * n_v, dim)
    scores = (text.reshape(n_t * n_tok, dim) @ frames_major.T).view(n_t, n_tok, n_fr, n_v)
    text_to_video = torch.bmm(text_w.unsqueeze(1), scores.amax(dim=2)).squeeze(1)  # [texts, videos]
    video_to_text = (scores.amax(dim=1) * video_w.T.unsqueeze(0)).sum(dim=1)
    return (text_to_video + video_to_text) / 2


def token_wise_similarity(
    text: torch.Tensor,
    text_weights: torch.Tensor,
    video: torch.Tensor,
    video_weights: torch.Tensor,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> torch.Tensor:
    """
    Token-wise similarity of every text with every video.

    Args:
        text: `[N_t, L, D]` normalised token features, zero on padding (see `prepare_tokens`).
        text_weights: `[N_t, L]` token weights summing to one over valid tokens, zero on padding.
        video: `[N_v, F, D]` normalised frame features, zero on padding.
        video_weights: `[N_v, F]` frame weights summing to one over valid frames, zero on padding.
        chunk_bytes: upper bound on the bytes of the score block computed at once.

    Returns:
        `[N_t, N_v]`: `(sum_t w_t max_f s + sum_f w_f max_t s) / 2` with `s` the cosine of a token and a frame.
    """
    n_texts, n_tokens, _ = text.shape
    n_videos, n_frames, _ = video.shape
    step_t, step_v = chunk_sizes(n_texts, n_videos, n_tokens, n_frames, text.element_size(), chunk_bytes)
    if step_t >= n_texts and step_v >= n_videos:
        return _score_block(text, text_weights, video, video_weights)
    rows = []
    for t0 in range(0, n_texts, step_t):
        t_slice = slice(t0, t0 + step_t)
        blocks = [
            _score_block(text[t_slice], text_weights[t_slice], video[v0 : v0 + step_v], video_weights[v0 : v0 + step_v])
            for v0 in range(0, n_videos, step_v)
        ]
        rows.append(torch.cat(blocks, dim=1))
    return torch.cat(rows, dim=0)


def end_of_text_features(text_features: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
    """The feature at the last valid position (`sum(mask) - 1`, the end-of-text token) of each caption."""
    last = text_mask.sum(dim=-1).long() - 1
    return text_features[torch.arange(text_features.shape[0], device=text_features.device), last]


def mean_pooled_video(video_features: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
    """Masked mean of the normalised frame features, normalised again (the DP video embedding)."""
    mask = video_mask.to(video_features.dtype).unsqueeze(-1)
    pooled = (l2_normalize(video_features) * mask).sum(dim=1) / mask.sum(dim=1)
    return l2_normalize(pooled)


def dot_product_similarity(
    text_features: torch.Tensor, text_mask: torch.Tensor, video_features: torch.Tensor, video_mask: torch.Tensor
) -> torch.Tensor:
    """DP interaction: cosine of the end-of-text feature and the mean-pooled video, `[N_t, N_v]`."""
    text_vectors = l2_normalize(end_of_text_features(text_features, text_mask))
    return text_vectors @ mean_pooled_video(video_features, video_mask).T
