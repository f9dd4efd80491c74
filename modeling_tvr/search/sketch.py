"""Candidates from every frame: a low-rank sketch of the frame vectors and an exact search that adapts to it.

WTI compares every caption token with every frame and keeps maxima, so a video's score hinges on its best frames; one
summary vector per video averages them away, and a candidate count tuned on one collection loses recall on another
(near-duplicate videos that differ only in a few frames). Here every frame takes part from the start:

1. the sketch: each frame vector projected on the collection's top `SKETCH_DIM` principal directions (PCA of the
   frames, uncentred, so that dot products are what it approximates), stored in bfloat16: 128 bytes a frame
   against 2 KiB for a float32 frame of width 512, plus each video's largest residual norm (what the directions
   miss). A query scores every video with WTI computed on the sketch;
2. the error of that approximation is measured on this query: the `PROBE` best videos by approximate score and
   `PROBE` others drawn at random are scored exactly. A token-frame error is the dot product of the two residuals,
   so it scales with (query's largest residual norm) x (video's residual norm); the probes' errors divided by that
   scale give a mean and a standard deviation, and a video's bound is `(mean + z * std) * scale`, where `z` is the
   normal quantile that one video in the whole collection exceeds with probability `1 - recall_target` (a bound
   for the collection's extremes, which is where the top videos come from, not for a typical video);
3. every video whose approximate score plus its bound reaches the k-th best exact score found so far is scored
   exactly, highest bound first, until the next one's falls below it.

Where the sketch approximates poorly (queries or frames far from the principal directions) the bounds widen, more
videos are re-ranked and the search slows down, up to an exhaustive one, rather than missing results (tested on
frames without low-rank structure). Recall and latency per collection shape: BENCHMARKS.md (`bench/search.py`).

From `MIN_VIDEOS` videos on, step 1 no longer scores every video: the sketch's frames are grouped into lists
(`frame_lists.py`), the probes come from the lists whose centroids score best, and only the videos whose bound from
the lists can reach the k-th exact score minus their error bound are scored on the sketch; steps 2 and 3 are
unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from . import frame_lists
from .error_bound import error_quantile
from .features import PreparedSide, rerank_candidates
from .fixed_shapes import next_power_of_two, padded_query
from .frame_lists import FrameLists, ListScan

logger = logging.getLogger(__name__)

# Recall of the exact top ten that the search aims at by default (measured recall: BENCHMARKS.md).
DEFAULT_RECALL_TARGET = 0.999
# Principal directions kept per frame. Only speed depends on it (the error bound keeps recall): fewer directions
# scan faster but widen the bounds, so more videos are re-ranked exactly.
SKETCH_DIM = 64
# Frames sampled to estimate the principal directions: plenty for a 512 x 512 second-moment matrix.
PCA_SAMPLE = 50_000
# Videos scored exactly to measure the approximation error: the best by approximate score, and as many at random.
# 128 of each (half the exact scoring of 256) kept recall@10 at 1.000 on every collection of bench/search.py.
PROBE = 128
# Videos re-ranked at once while the bound still reaches the k-th score: smaller steps stop closer to where the bound
# falls below it.
RERANK_STEP = 256
# Videos whose sketch is scored at once. The `[videos * frames, tokens]` scores are reduced twice (over frames, over
# tokens), so the block should stay in cache: 4096 videos of 12 frames against 32 tokens is 6 MiB in float32.
# Latency per collection shape: BENCHMARKS.md (bench/search.py).
SCORE_BLOCK = 4096
# Fewest videos in one product: smaller counts are rounded up to a power of two at least this (`fixed_shapes.py`).
MIN_VIDEOS_SCORED = 32
# Videos projected at once when the sketch is built (float32 copies of their frames).
REDUCE_BLOCK = 16_384


@dataclass
class FrameSketch:
    """Frame vectors `[N, F, D]` reduced to `frames [N, F, d]` (bfloat16) by an orthonormal `basis [D, d]`."""

    basis: torch.Tensor
    frames: torch.Tensor
    residuals: torch.Tensor
    _lists: FrameLists | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def build(cls, videos: PreparedSide, dim: int = SKETCH_DIM, seed: int = 0) -> FrameSketch:
        """Principal directions of the valid frames of `videos` (a fixed-seed sample), and every frame reduced."""
        num_videos, num_frames, width = videos.vectors.shape
        flat = videos.vectors.reshape(-1, width)
        valid = (videos.weights.reshape(-1) > 0).nonzero().flatten()
        generator = torch.Generator().manual_seed(seed)
        sample = flat[valid[torch.randperm(len(valid), generator=generator)[:PCA_SAMPLE]]].float()
        dim = min(dim, width)
        if len(sample) == 0:
            basis = torch.eye(width)[:, :dim]
        else:
            _, eigenvectors = torch.linalg.eigh(sample.T @ sample)
            basis = eigenvectors[:, -dim:].flip(-1).contiguous()  # strongest direction first
        return cls(basis, *cls._reduce(videos.vectors, basis))

    @staticmethod
    def _reduce(vectors: torch.Tensor, basis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames in the basis (bfloat16) and each video's largest residual norm, `[N]`: what the basis misses."""
        reduced = torch.empty(*vectors.shape[:2], basis.shape[1], dtype=torch.bfloat16)
        residuals = torch.empty(len(vectors))
        for start in range(0, len(vectors), REDUCE_BLOCK):
            block = vectors[start : start + REDUCE_BLOCK].float()
            projected = block @ basis
            reduced[start : start + REDUCE_BLOCK] = projected.to(torch.bfloat16)
            missing = (block.square().sum(-1) - projected.square().sum(-1)).clamp_min(0).sqrt()
            residuals[start : start + REDUCE_BLOCK] = missing.amax(dim=1)
        return reduced, residuals

    def extended(self, vectors: torch.Tensor, weights: torch.Tensor | None = None) -> FrameSketch:
        """The sketch with new videos' frame vectors `[n, F, D]` appended (same directions); its frame lists, if
        built, gain their frames when the frame `weights [n, F]` are given and the collection at most doubles (the
        centroids stay, so lists fitted to a much smaller collection are built again on first use instead)."""
        frames, residuals = self._reduce(vectors, self.basis)
        grown = FrameSketch(self.basis, torch.cat([self.frames, frames]), torch.cat([self.residuals, residuals]))
        if self._lists is not None and weights is not None and len(vectors) <= len(self.frames):
            grown._lists = self._lists.extended(frames, weights)
        return grown

    def take(self, rows: torch.Tensor) -> FrameSketch:
        """The sketch of the videos at `rows`, in that order (its frame lists follow when `rows` has no repeats)."""
        kept = FrameSketch(self.basis, self.frames[rows], self.residuals[rows])
        if self._lists is not None and len(torch.unique(rows)) == len(rows):
            kept._lists = self._lists.take(rows)
        return kept

    def saved(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """What an index folder keeps of the sketch: per-video tensors, and the shared ones (the basis, and the frame
        lists when they were built)."""
        shared = {"sketch_basis": self.basis} | ({} if self._lists is None else self._lists.saved())
        return {"sketch_frames": self.frames, "sketch_residuals": self.residuals}, shared

    @classmethod
    def from_saved(
        cls, tensors: dict[str, torch.Tensor], shared: dict[str, torch.Tensor], weights: torch.Tensor
    ) -> FrameSketch | None:
        """The sketch `saved()` wrote (None when the folder holds none), with its lists if they were saved."""
        if "sketch_basis" not in shared:  # absent for dp and empty indexes, or when written without it
            return None
        sketch = cls(shared["sketch_basis"], tensors["sketch_frames"], tensors["sketch_residuals"])
        sketch._lists = FrameLists.from_saved(shared, weights)
        return sketch

    def approximate_scores(
        self,
        tokens: torch.Tensor,
        token_weights: torch.Tensor,
        videos: PreparedSide,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """WTI of one query (its tokens `[T, D]`, weights `[T]`) against every video (or those at `rows`), on the
        sketch: `[N]` (or `[len(rows)]`).

        Same formula as `rerank_candidates`: padded frames are zero vectors (they score 0 in the maxima over
        frames), and when the query had padded tokens their zero scores floor the maxima over tokens.
        """
        padded_tokens = bool((token_weights == 0).any())
        valid = token_weights > 0
        query, token_weights = padded_query(tokens[valid].float() @ self.basis, token_weights[valid])
        count = len(self.frames) if rows is None else len(rows)
        scores = torch.empty(count)
        for start in range(0, count, SCORE_BLOCK):
            wanted = min(SCORE_BLOCK, count - start)
            size = min(next_power_of_two(wanted, MIN_VIDEOS_SCORED), len(self.frames))
            if rows is None:  # a window of whole blocks around the wanted videos (see fixed_shapes.py)
                window = max(0, min(start, len(self.frames) - size))
                block, offset = slice(window, window + size), start - window
            else:  # the wanted rows, padded with copies of the first
                block, offset = rows[start : start + wanted], 0
                block = torch.cat([block, block[:1].expand(size - wanted)])
            frames = self.frames[block]
            num_videos, num_frames, dim = frames.shape
            # The product in bfloat16 (a fast kernel), the reductions in float32 (CPU reductions over bfloat16 are
            # slower than the conversion).
            token_frame = (frames.view(-1, dim) @ query).float().view(num_videos, num_frames, -1)
            text_to_video = token_frame.amax(dim=1) @ token_weights
            best_token = token_frame.amax(dim=2)
            if padded_tokens:
                best_token = best_token.clamp_min(0)
            frame_weights = videos.weights[block].float()
            block_scores = (text_to_video + (best_token * frame_weights).sum(dim=1)) / 2
            scores[start : start + wanted] = block_scores[offset : offset + wanted]
        return scores

    def frame_lists(self, weights: torch.Tensor) -> FrameLists:
        """The frame lists of this sketch (`frame_lists.py`), built on first use and kept with it (a sketch that
        gains or loses videos is a new object, whose lists are built again)."""
        if self._lists is None:
            logger.info("Grouping %d videos' sketch frames into lists for pruned search.", len(self.frames))
            self._lists = FrameLists.build(self.frames, weights)
        return self._lists


def draw_others(num_videos: int, taken: torch.Tensor, count: int) -> torch.Tensor:
    """`count` distinct videos outside `taken`, at random with a fixed seed (the same query on the same index returns
    the same hits); drawn with rejection, so the cost does not grow with the collection (`count <= num_videos / 2`)."""
    generator = torch.Generator().manual_seed(0)
    excluded = set(taken.tolist())
    drawn: list[int] = []
    while len(drawn) < count:
        for video in torch.randint(num_videos, (2 * count,), generator=generator).tolist():
            if video not in excluded:
                excluded.add(video)
                drawn.append(video)
                if len(drawn) == count:
                    break
    return torch.tensor(drawn, dtype=torch.long)


def probes_from_lists(
    scan: ListScan, sketch: FrameSketch, query: PreparedSide, videos: PreparedSide, probe: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sketch scores (NaN where not computed) and the probes of a search over the lists: the `probe` best videos by
    sketch score among those of the first lists' best frames, then `probe` drawn at random."""
    tokens, token_weights = query.vectors[0], query.weights[0]
    scan.first_wave()
    approximate = torch.full((len(videos.weights),), float("nan"))
    seeds = scan.best_videos(4 * probe)
    approximate[seeds] = sketch.approximate_scores(tokens, token_weights, videos, seeds)
    best = seeds[approximate[seeds].topk(min(probe, len(seeds))).indices]
    others = draw_others(len(videos.weights), best, probe)
    approximate[others] = sketch.approximate_scores(tokens, token_weights, videos, others)
    return approximate, torch.cat([best, others])


def adaptive_search(
    query: PreparedSide,
    videos: PreparedSide,
    sketch: FrameSketch,
    top_k: int,
    recall_target: float,
    score_exactly: Callable[[torch.Tensor], torch.Tensor] | None = None,
    use_lists: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The best `top_k` videos for ONE query by exact WTI; see the module docstring for the rule.

    Args:
        query (`PreparedSide`): one prepared query.
        videos (`PreparedSide`): the videos; only their frame `weights` are read when `score_exactly` is given.
        sketch (`FrameSketch`): the sketch of their frame vectors.
        top_k (`int`): how many videos to return.
        recall_target (`float`): the recall of the exact top `top_k` the bound aims at.
        score_exactly (`Callable[[torch.Tensor], torch.Tensor]`, *optional*): exact WTI of the query against the
            videos at the given rows, for vectors held elsewhere (a server: only these rows are fetched); by default
            `rerank_candidates` on `videos`.
        use_lists (`bool`, *optional*): whether the sketch is read through its frame lists (`frame_lists.py`) or
            scanned whole; by default through the lists from `MIN_VIDEOS` videos on.

    Returns:
        `tuple[torch.Tensor, torch.Tensor, int]`: scores `[k]`, rows `[k]`, and how many videos were scored exactly.
    """
    if score_exactly is None:

        def score_exactly(rows: torch.Tensor) -> torch.Tensor:
            return rerank_candidates(query, videos, rows.unsqueeze(0))[0]

    num_videos = len(videos.weights)
    top_k = min(top_k, num_videos)
    z = error_quantile(recall_target, num_videos)
    probe = max(PROBE, top_k)
    tokens, token_weights = query.vectors[0], query.weights[0]
    valid_tokens = tokens[token_weights > 0].float()
    reduced = valid_tokens @ sketch.basis
    scan = None
    if num_videos <= 2 * probe:
        approximate = sketch.approximate_scores(tokens, token_weights, videos)
        probes = torch.arange(num_videos)
    elif not (num_videos >= frame_lists.MIN_VIDEOS if use_lists is None else use_lists):
        approximate = sketch.approximate_scores(tokens, token_weights, videos)
        best = approximate.topk(probe).indices
        probes = torch.cat([best, draw_others(num_videos, best, probe)])
    else:
        scan = ListScan(sketch.frame_lists(videos.weights), reduced, bool((token_weights == 0).any()))
        approximate, probes = probes_from_lists(scan, sketch, query, videos, probe)
    exact = score_exactly(probes)
    scored = torch.full((num_videos,), float("nan"))
    scored[probes] = exact
    if len(probes) < num_videos:
        # unit vectors: the residual is what the directions miss
        query_residual = (1 - reduced.square().sum(-1)).clamp_min(0).sqrt().max()
        # The second term: bfloat16 keeps 8 bits, so rounding moves a dot product of unit vectors by up to ~2^-8
        # whatever the residuals (and keeps the scale positive when the directions hold everything).
        scale = query_residual * sketch.residuals + 2.0**-8
        errors = (exact - approximate[probes]) / scale[probes]
        unit = max(float(part.mean() + z * part.std()) for part in errors.split([len(probes) - probe, probe]))
        bound = unit * scale
        kth = exact.topk(top_k).values[-1]
        if scan is not None:
            # Every video whose sketch score could reach `kth - bound` is scored on the sketch; no other can.
            candidates = scan.candidates(float(kth) - bound, recall_target) & approximate.isnan()
            rows = candidates.nonzero().flatten()
            approximate[rows] = sketch.approximate_scores(tokens, token_weights, videos, rows)
        reach = approximate + bound
        todo = ((reach >= kth) & scored.isnan()).nonzero().flatten()
        todo = todo[reach[todo].argsort(descending=True)]
        for block in todo.split(RERANK_STEP):
            if len(block) == 0 or reach[block[0]] < kth:
                break
            scored[block] = score_exactly(block)
            kth = torch.nan_to_num(scored, nan=-float("inf")).topk(top_k).values[-1]
    final = torch.nan_to_num(scored, nan=-float("inf"))
    scores, indices = final.topk(top_k)
    return scores, indices, int((~scored.isnan()).sum())
