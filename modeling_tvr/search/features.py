"""The tensors a video index keeps, the exact re-rank, and the fixed-size two-stage search (`candidates=N`).

A video is stored as its L2-normalised frame features (zero on padded frames), its frame weights (WTI's head or
uniform) and one summary vector, the normalised weighted mean of its frames. A query is prepared the same way from its
token features. The default search starts from every frame (`sketch.py`); `VideoIndex.search(...,
candidates=N)` runs this one instead, in two stages:

1. coarse: every video's summary against the query's heaviest tokens, keeping the best cosine (the video-to-text
   half of WTI with the video collapsed to one vector), plus a tenth of the summaries' dot product (the other half,
   likewise collapsed). One `[videos, D] x [D, tokens + 1]` product over the collection keeps the best `candidates`;
2. exact: DRL's token-wise similarity between the query and those candidates only (`rerank_candidates`, scored by
   the model's own `interaction_drl.score_block`).

Taking the best token (rather than the weighted mean of the tokens, i.e. a dot product of two summaries) follows
WTI's maxima over tokens, but a summary cannot see which frames matter: its recall depends on the collection (see
`bench/search.py`), which is why the default is the sketch, whose measured error bound holds recall. For the DP
interaction the summaries are the DP embeddings themselves and this stage is exact (and is what DP indexes use).
"""

from dataclasses import dataclass

import torch

from ..interaction_drl import (
    end_of_text_features,
    l2_normalize,
    mean_pooled_video,
    prepare_tokens,
    score_block,
    token_wise_similarity,
)

# Bytes of candidate frames gathered at once for the exact re-ranking of a group of queries.
GATHER_BUDGET_BYTES = 256 * 1024**2


@dataclass
class PreparedSide:
    """Normalised vectors `[N, P, D]` (zero on padding), their weights `[N, P]`, and summaries `[N, D]`."""

    vectors: torch.Tensor
    weights: torch.Tensor
    summary: torch.Tensor

    def take(self, rows: torch.Tensor | slice) -> "PreparedSide":
        """The same items restricted to `rows` (indices or a slice)."""
        return PreparedSide(self.vectors[rows], self.weights[rows], self.summary[rows])


def weighted_summary(vectors: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Normalised weighted mean of normalised vectors: `[N, P, D]`, `[N, P]` -> `[N, D]`."""
    return l2_normalize(torch.bmm(weights.unsqueeze(1).to(vectors.dtype), vectors).squeeze(1))


@torch.no_grad()
def prepare_videos(model, video_embeds: torch.Tensor, video_mask: torch.Tensor) -> PreparedSide:
    """What the index stores for videos, from `model.get_video_features` output."""
    vectors = prepare_tokens(video_embeds, video_mask)
    weights = model.frame_weights(video_embeds, video_mask)
    if model.config.interaction == "dp":
        summary = mean_pooled_video(video_embeds, video_mask)
    else:
        summary = weighted_summary(vectors, weights)
    return PreparedSide(vectors, weights, summary)


@torch.no_grad()
def prepare_queries(model, text_embeds: torch.Tensor, attention_mask: torch.Tensor) -> PreparedSide:
    """The query side, from `model.get_text_features` output."""
    vectors = prepare_tokens(text_embeds, attention_mask)
    weights = model.token_weights(text_embeds, attention_mask)
    if model.config.interaction == "dp":
        summary = l2_normalize(end_of_text_features(text_embeds, attention_mask))
    else:
        summary = weighted_summary(vectors, weights)
    return PreparedSide(vectors, weights, summary)


def exact_scores(queries: PreparedSide, videos: PreparedSide, interaction: str) -> torch.Tensor:
    """`[num_queries, num_videos]` exactly as `DRLModel.similarity` scores them."""
    if interaction == "dp":
        return queries.summary @ videos.summary.T.to(queries.summary.dtype)
    return token_wise_similarity(
        queries.vectors, queries.weights, videos.vectors.float(), videos.weights.float().to(queries.weights.dtype)
    )


# Weight of the summaries' dot product (the weighted mean over tokens, WTI's text-to-video half collapsed) beside the
# best-token cosine in the coarse score. The best token alone ranks distinct videos well; this small share breaks
# near-ties between near-duplicates the way exact WTI does. It is a tuned constant, not a derived one: chosen among
# a few values on bench/search.py's synthetic collections, so other data may prefer another.
COARSE_MEAN_WEIGHT = 0.1
# Query tokens the coarse stage compares, the heaviest by WTI weight: the product's cost grows with its width, and the
# light tokens rarely hold the best cosine. Chosen on bench/search.py's toy-length captions, where fewer tokens lost
# recall and more gained none; captions much longer than those may want more.
COARSE_TOKENS = 7
# Candidates re-ranked per gather, into one buffer reused across blocks: a fresh multi-megabyte tensor per gather
# costs more in page faults than the gather itself, while blocks of this size keep the cost linear in the candidates.
RERANK_BLOCK = 512


def coarse_scores(queries: PreparedSide, videos: PreparedSide, interaction: str) -> torch.Tensor:
    """`[num_queries, num_videos]` scores of the coarse stage (see the module docstring)."""
    summaries = videos.summary.to(queries.summary.dtype)
    if interaction == "dp":
        return queries.summary @ summaries.T
    rows = []
    for vectors, weights in zip(queries.vectors, queries.weights, strict=True):
        # The heaviest valid tokens plus the weighted mean of all of them as one more column. `summaries @ tokens.T`
        # keeps the long dimension first, since a skinny left operand is the slow case of CPU matrix kernels.
        valid = weights > 0
        heaviest = weights.topk(min(COARSE_TOKENS, int(valid.sum()))).indices
        tokens = torch.cat([vectors[heaviest], (weights[valid] @ vectors[valid]).unsqueeze(0)])
        scores = summaries @ tokens.T
        rows.append(scores[:, :-1].amax(dim=1) + COARSE_MEAN_WEIGHT * scores[:, -1])
    return torch.stack(rows)


def rerank_candidates(queries: PreparedSide, videos: PreparedSide, candidates: torch.Tensor) -> torch.Tensor:
    """
    Exact token-wise scores of each query against its own candidates: `candidates` is `[Q, C]` indices into the
    videos, the result `[Q, C]`. Scored by the model's own `score_block`; per query, only its valid tokens are
    multiplied (dropped padded tokens score 0, floored back into the maxima) against one contiguous gather of the
    candidates, whose padded frames stay in as zero vectors.
    """
    rows = []
    num_tokens = queries.vectors.shape[1]
    for vectors, weights, indices in zip(queries.vectors, queries.weights, candidates, strict=True):
        valid = weights > 0
        tokens, token_weights = vectors[valid].unsqueeze(0), weights[valid].unsqueeze(0)  # one text: [1, T, D], [1, T]
        dropped = torch.tensor([tokens.shape[1] < num_tokens], device=tokens.device)
        row = []
        buffer = videos.vectors.new_empty((min(RERANK_BLOCK, len(indices)), *videos.vectors.shape[1:]))
        for block in indices.split(RERANK_BLOCK):
            frames = torch.index_select(videos.vectors, 0, block, out=buffer[: len(block)]).to(tokens.dtype)
            frame_weights = videos.weights.index_select(0, block).to(token_weights.dtype)  # [C, F]
            row.append(score_block(tokens, token_weights, dropped, frames, frame_weights, None)[0])
        rows.append(torch.cat(row))
    return torch.stack(rows)


def two_stage_search(
    queries: PreparedSide,
    videos: PreparedSide,
    interaction: str,
    top_k: int,
    candidates: int,
    chunk_bytes: int = GATHER_BUDGET_BYTES,
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Best `top_k` videos per query: `(scores [Q, k], indices [Q, k])`, sorted by exact score.

    With `candidates >= num_videos` the coarse stage keeps everything and the result is exhaustive search. Queries
    run in groups whose gathered candidate frames fit `chunk_bytes`.
    """
    num_videos, num_frames, dim = videos.vectors.shape
    top_k = min(top_k, num_videos)
    keep = min(num_videos, max(candidates, top_k))
    query_chunk = max(1, chunk_bytes // (keep * num_frames * dim * 4))
    all_scores, all_indices = [], []
    for start in range(0, queries.summary.shape[0], query_chunk):
        chunk = queries.take(slice(start, start + query_chunk))
        if interaction == "dp":
            fine, fine_indices = coarse_scores(chunk, videos, interaction), None
        elif keep < num_videos:
            fine_indices = coarse_scores(chunk, videos, interaction).topk(keep, dim=1).indices
            fine = rerank_candidates(chunk, videos, fine_indices)
        else:
            fine, fine_indices = exact_scores(chunk, videos, interaction), None
        scores, order = fine.topk(top_k, dim=1)
        indices = order if fine_indices is None else fine_indices.gather(1, order)
        all_scores.append(scores)
        all_indices.append(indices)
    return torch.cat(all_scores), torch.cat(all_indices)
