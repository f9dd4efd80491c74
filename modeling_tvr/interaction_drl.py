"""Text-video interactions of DRL: weighted token-wise (WTI), token-wise (TI) and dot product (DP).

The pairwise scoring is split in two steps so that callers (the model, a video index) can prepare each side
once and score many pairs:

1. `prepare_tokens` turns raw features `[N, L, D]` and a mask into L2-normalised features that are zero on
   padded positions; `position_weights` gives per-position weights that sum to one over the valid positions.
2. `token_wise_similarity` scores every text against every video in chunks whose size is derived from a
   memory budget, so memory stays bounded for any number of texts and videos.

`text_video_similarity` does both for the model's configured interaction.

Zeroing padded features before the matrix product gives exactly the authors' masked similarity `s * m_t * m_v`
(padded pairs score 0, not -inf), so a padded frame can still win a max when every real frame scores below 0.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

# Bytes of the `[texts, tokens, frames, videos]` score block materialised at once by `token_wise_similarity`: a block
# that stays in the CPU caches makes the two maxima after the product nearly free, so a larger budget is slower, not
# faster (`bench/similarity.py --chunk-mb` compares budgets). Memory stays small for any N x M.
DEFAULT_CHUNK_BYTES = 8 * 1024**2
# Score blocks on accelerators: large enough that a few kernels cover a big similarity matrix.
ACCELERATOR_CHUNK_BYTES = 512 * 1024**2


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension restricted to positions where `mask` is non-zero."""
    return torch.softmax(logits.masked_fill(mask == 0, float("-inf")), dim=-1)


def uniform_weights(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Weights `1 / n_valid` on valid positions and 0 on padding (the TI interaction)."""
    mask = mask.to(dtype)
    return mask / mask.sum(dim=-1, keepdim=True)


def position_weights(
    features: torch.Tensor, mask: torch.Tensor, weight_head: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> torch.Tensor:
    """
    Weights `[N, L]` of each token or frame, summing to one over the valid positions.

    Args:
        features (`torch.Tensor` of shape `(N, L, D)`):
            Unnormalised token or frame features (the WTI heads score these, as the authors' do).
        mask (`torch.Tensor` of shape `(N, L)`):
            1 on valid positions.
        weight_head (`Callable`, *optional*):
            A WTI weight head mapping `[N, L, D]` to `[N, L, 1]`: its masked softmax (WTI). Without one, uniform
            weights (TI).
    """
    if weight_head is None:
        return uniform_weights(mask, features.dtype)
    return masked_softmax(weight_head(features).squeeze(-1), mask)


def l2_normalize(features: torch.Tensor) -> torch.Tensor:
    """Divides by the L2 norm over the last dimension, as the authors do (no epsilon)."""
    return features / features.norm(dim=-1, keepdim=True)


def prepare_tokens(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L2-normalised `[N, L, D]` features with padded positions set to zero."""
    return l2_normalize(features) * mask.unsqueeze(-1).to(features.dtype)


def chunk_sizes(
    num_texts: int,
    num_videos: int,
    num_tokens: int,
    num_frames: int,
    bytes_per_element: int,
    chunk_bytes: int,
    dim: int | None = None,
) -> tuple[int, int]:
    """
    Texts and videos per block so that one `[texts, tokens, videos, frames]` score block fits `chunk_bytes`, and
    (given `dim`) so that one block's video features `[videos, frames, dim]` fit it too: with few texts, the score
    budget alone would let a video block grow to hundreds of megabytes of features, copied out of cache.
    """
    pairs_per_chunk = max(1, chunk_bytes // (num_tokens * num_frames * bytes_per_element))
    max_videos = num_videos if dim is None else max(1, chunk_bytes // (num_frames * dim * bytes_per_element))
    texts = max(1, min(num_texts, math.isqrt(pairs_per_chunk)))
    videos = max(1, min(num_videos, max_videos, pairs_per_chunk // texts))
    if videos < pairs_per_chunk // texts or videos == num_videos:  # spend the unused budget on more texts
        texts = max(1, min(num_texts, pairs_per_chunk // videos))
    return texts, videos


@dataclass
class _Blocks:
    """
    Items sorted by how many positions they use, cut into blocks trimmed to the longest item of each block. A block's
    tensors are built on demand (`block(i)`), so a caller that uses each block once never holds a second copy of
    all the features.
    """

    vectors: torch.Tensor
    weights: torch.Tensor
    order: list[torch.Tensor]  # indices into the original items, per block
    keep: list[int]  # positions kept per block
    padded: list[torch.Tensor]  # [items] per block: True where the item has a padded position in the full layout
    frame_major: bool
    dtype: torch.dtype

    def __len__(self) -> int:
        return len(self.order)

    def block(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        `(vectors, weights, padded)` of block `i`: `[items, positions, D]`, or frame-major `[positions * items, D]`
        for `frame_major` videos (see `score_block`). A block of consecutive items is a view, not a copy.
        """
        rows, keep = self.order[i], self.keep[i]
        if len(rows) == int(rows[-1] - rows[0]) + 1 and bool((rows[1:] > rows[:-1]).all()):
            kept = self.vectors[int(rows[0]) : int(rows[-1]) + 1, :keep]
            weights = self.weights[int(rows[0]) : int(rows[-1]) + 1, :keep]
        else:
            kept = self.vectors.index_select(0, rows)[:, :keep]
            weights = self.weights.index_select(0, rows)[:, :keep]
        kept = kept.to(self.dtype)
        if self.frame_major:
            kept = kept.transpose(0, 1).reshape(-1, kept.shape[-1])
        return kept, weights, self.padded[i]


def _sorted_blocks(
    vectors: torch.Tensor,
    weights: torch.Tensor,
    block: int,
    frame_major: bool = False,
    dtype: torch.dtype | None = None,
    mask: torch.Tensor | None = None,
) -> _Blocks:
    """
    Groups items of similar length so that each block computes only up to its longest item: padded positions are
    zero vectors, whose scores are known to be 0 without computing them. Sorting keeps the waste inside a block
    small; the loop runs over blocks, never over items. `mask` (1 on valid positions) spares a pass over the
    features to find the zero vectors.
    """
    num_positions = vectors.shape[1]
    # Without a mask, the norms: a reduction, no temporary as large as the features.
    valid = torch.linalg.vector_norm(vectors, dim=-1) > 0 if mask is None else mask.to(vectors.device) != 0
    positions = torch.arange(1, num_positions + 1, device=vectors.device)
    used = (valid * positions).amax(dim=1).clamp_min(1)  # last valid position + 1 (interior padding stays zero)
    padded = valid.sum(dim=1) < num_positions
    order = list(torch.argsort(used, stable=True).split(block))
    keep = [int(used[rows].max()) for rows in order]
    return _Blocks(vectors, weights, order, keep, [padded[rows] for rows in order], frame_major, dtype or vectors.dtype)


def score_block(
    text: torch.Tensor,
    text_w: torch.Tensor,
    text_padded: torch.Tensor | None,
    frames: torch.Tensor,
    video_w: torch.Tensor,
    video_padded: torch.Tensor | None,
) -> torch.Tensor:
    """
    WTI `[n_t, n_v]` of a block of texts with a block of videos: the one implementation of the scoring, used by
    `token_wise_similarity` and by the search's exact re-rank (`modeling_tvr.search.features.rerank_candidates`).

    Args:
        text: `[n_t, L, D]` normalised token features (zero on padding), `text_w` their weights `[n_t, L]`.
        text_padded: `[n_t]` bool, True for a text that has padded positions not in `text` (trimmed or dropped), or
            None when `text` holds every position.
        frames: frame-major `[F * n_v, D]` (many texts) or video-major `[n_v, F, D]` (few texts) normalised frame
            features, `video_w` their weights `[n_v, F]`.
        video_padded: `[n_v]` bool as `text_padded`, for the videos (None: nothing cut off).

    Frame-major: one matrix product gives every token-frame score laid out `[texts, tokens, frames, videos]`, so both
    maxima reduce an outer dimension (maxima of contiguous rows, which vectorise) rather than a strided run of
    frames. Video-major is multiplied the other way round.

    In the authors' masked scores a padded position scores exactly 0 and takes part in the maxima. Padded positions
    still present are zero vectors and score 0 by themselves; positions cut off are such zeros too, so an item that
    had some gets its maxima floored at 0.
    """
    n_t, n_tok, dim = text.shape
    n_v, n_fr = video_w.shape
    if frames.dim() == 3:
        # Few texts (videos given video-major `[videos, frames, D]`, usually a view of the caller's tensor): the
        # long dimension goes first, since a skinny left operand is the slow case of CPU matrix kernels, and no
        # frame-major copy of the collection is made.
        scores_t = (frames.reshape(n_v * n_fr, dim) @ text.reshape(n_t * n_tok, dim).T).view(n_v, n_fr, n_t, n_tok)
        best_frame = scores_t.amax(dim=1).permute(1, 2, 0).to(text_w.dtype)  # [texts, tokens, videos]
        best_token = scores_t.amax(dim=3).permute(2, 1, 0).to(video_w.dtype)  # [texts, frames, videos]
        return _weighted_halves(best_frame, best_token, text_w, text_padded, video_w, video_padded)
    scores = (text.reshape(n_t * n_tok, dim) @ frames.T).view(n_t, n_tok, n_fr, n_v)
    # Maxima in the product's dtype (exact: they select), weighted sums in the weights' dtype (float32).
    best_frame = scores.amax(dim=2).to(text_w.dtype)  # [texts, tokens, videos]
    best_token = scores.amax(dim=1).to(video_w.dtype)  # [texts, frames, videos]
    return _weighted_halves(best_frame, best_token, text_w, text_padded, video_w, video_padded)


# Below this many token rows per text block, videos are scored video-major with the frames as the left operand.
_FEW_TOKEN_ROWS = 64


def _weighted_halves(
    best_frame: torch.Tensor,
    best_token: torch.Tensor,
    text_w: torch.Tensor,
    text_padded: torch.Tensor | None,
    video_w: torch.Tensor,
    video_padded: torch.Tensor | None,
) -> torch.Tensor:
    """`(sum_t w_t max_f s + sum_f w_f max_t s) / 2` from the two maxima, padded zeros floored back in."""
    if video_padded is not None and video_padded.any():
        best_frame = torch.where(video_padded, best_frame.clamp_min(0), best_frame)
    if text_padded is not None and text_padded.any():
        best_token = torch.where(text_padded[:, None, None], best_token.clamp_min(0), best_token)
    text_to_video = torch.bmm(text_w.unsqueeze(1), best_frame).squeeze(1)
    video_to_text = (best_token * video_w.T.unsqueeze(0)).sum(dim=1)
    return (text_to_video + video_to_text) / 2


def token_wise_similarity(
    text: torch.Tensor,
    text_weights: torch.Tensor,
    video: torch.Tensor,
    video_weights: torch.Tensor,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    compute_dtype: torch.dtype | None = None,
    text_mask: torch.Tensor | None = None,
    video_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """
    Token-wise similarity of every text with every video.

    Args:
        text: `[N_t, L, D]` normalised token features, zero on padding (see `prepare_tokens`).
        text_weights: `[N_t, L]` token weights summing to one over valid tokens, zero on padding.
        video: `[N_v, F, D]` normalised frame features, zero on padding.
        video_weights: `[N_v, F]` frame weights summing to one over valid frames, zero on padding.
        chunk_bytes: upper bound on the bytes of the score block computed at once.
        compute_dtype: dtype of the token-frame products (e.g. `torch.bfloat16` or `torch.float16` on GPUs with fast
            half-precision matrix units); weights and sums stay in the input dtype. Default: the input dtype. The
            accuracy impact is measured in `bench/similarity.py`.
        text_mask, video_mask: the masks `prepare_tokens` zeroed the padding with, if at hand (otherwise the
            padding is found from the zero vectors).

    Returns:
        `[N_t, N_v]`: `(sum_t w_t max_f s + sum_f w_f max_t s) / 2` with `s` the cosine of a token and a frame, and
        padded positions scoring 0 as in the authors' masked formulation. Padded positions are skipped rather than
        computed (see `_sorted_blocks`), which divides the work by the padding ratio on real captions.
    """
    n_texts, n_tokens, _ = text.shape
    n_videos, n_frames, _ = video.shape
    dim = text.shape[-1]
    step_t, step_v = chunk_sizes(n_texts, n_videos, n_tokens, n_frames, text.element_size(), chunk_bytes, dim)
    texts = _sorted_blocks(text, text_weights, step_t, dtype=compute_dtype, mask=text_mask)
    few_texts = step_t * n_tokens < _FEW_TOKEN_ROWS
    videos = _sorted_blocks(
        video, video_weights, step_v, frame_major=not few_texts, dtype=compute_dtype, mask=video_mask
    )
    # Video blocks are reused by every text block: build them once, unless there is a single text block (a few
    # queries against a collection), where building each one as it is scored keeps it in cache.
    video_blocks = [videos.block(j) for j in range(len(videos))] if len(texts) > 1 else None
    video_order = torch.cat(videos.order).unsqueeze(0)
    similarity = text.new_empty(n_texts, n_videos)
    for i in range(len(texts)):
        t_vectors, t_weights, t_padded = texts.block(i)
        row_blocks = [
            score_block(t_vectors, t_weights, t_padded, *(video_blocks[j] if video_blocks else videos.block(j)))
            for j in range(len(videos))
        ]
        similarity[texts.order[i].unsqueeze(1), video_order] = torch.cat(row_blocks, dim=1)
    return similarity


def dense_token_wise_similarity(
    text: torch.Tensor, text_weights: torch.Tensor, video: torch.Tensor, video_weights: torch.Tensor
) -> torch.Tensor:
    """`token_wise_similarity` as the authors write it: every token-frame score in one `[N_t, N_v, L, F]` tensor.

    For training batches (a few hundred pairs: the tensor is small) and traced graphs (torch.compile, torch.export),
    where the chunked scorer's data-dependent block sizes cannot be traced. Same inputs and result.
    """
    scores = torch.einsum("atd,bvd->abtv", text, video)
    text_to_video = (scores.amax(dim=3) * text_weights.unsqueeze(1)).sum(dim=-1)
    video_to_text = (scores.amax(dim=2) * video_weights.unsqueeze(0)).sum(dim=-1)
    return (text_to_video + video_to_text) / 2


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


def text_video_similarity(
    text_features: torch.Tensor,
    text_mask: torch.Tensor,
    video_features: torch.Tensor,
    video_mask: torch.Tensor,
    interaction: str,
    text_weight_head: Callable[[torch.Tensor], torch.Tensor] | None = None,
    video_weight_head: Callable[[torch.Tensor], torch.Tensor] | None = None,
    dense: bool = False,
    chunk_bytes: int | None = None,
    compute_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """
    Unscaled similarity `[N_t, N_v]` of every text with every video under `interaction`.

    Args:
        text_features (`torch.Tensor` of shape `(N_t, L, D)`):
            Unnormalised token features.
        text_mask (`torch.Tensor` of shape `(N_t, L)`):
            1 on valid tokens.
        video_features (`torch.Tensor` of shape `(N_v, F, D)`):
            Unnormalised frame features.
        video_mask (`torch.Tensor` of shape `(N_v, F)`):
            1 on valid frames.
        interaction (`str`):
            `"wti"`, `"ti"` or `"dp"` (see `DRLConfig.interaction`).
        text_weight_head (`Callable`, *optional*):
            The WTI weight head of the tokens (see `position_weights`); None for uniform weights.
        video_weight_head (`Callable`, *optional*):
            The WTI weight head of the frames, likewise.
        dense (`bool`, defaults to `False`):
            Score every token-frame pair in one tensor (`dense_token_wise_similarity`): for training batches and
            traced graphs. Otherwise `token_wise_similarity` scores in blocks, memory bounded for any N_t x N_v.
        chunk_bytes (`int`, *optional*):
            Budget of one score block; defaults to `DEFAULT_CHUNK_BYTES` on CPU (blocks that stay in cache) and
            `ACCELERATOR_CHUNK_BYTES` elsewhere (fewer, larger kernels).
        compute_dtype (`torch.dtype`, *optional*):
            dtype of the token-frame products of the blocked scorer (see `token_wise_similarity`).
    """
    if interaction == "dp":
        return dot_product_similarity(text_features, text_mask, video_features, video_mask)
    text, video = prepare_tokens(text_features, text_mask), prepare_tokens(video_features, video_mask)
    text_weights = position_weights(text_features, text_mask, text_weight_head)
    video_weights = position_weights(video_features, video_mask, video_weight_head)
    if dense:
        return dense_token_wise_similarity(text, text_weights, video, video_weights)
    if chunk_bytes is None:
        chunk_bytes = DEFAULT_CHUNK_BYTES if text_features.device.type == "cpu" else ACCELERATOR_CHUNK_BYTES
    return token_wise_similarity(
        text,
        text_weights,
        video,
        video_weights,
        chunk_bytes=chunk_bytes,
        compute_dtype=compute_dtype,
        text_mask=text_mask,
        video_mask=video_mask,
    )
