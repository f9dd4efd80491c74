"""Frame lists: the sketch's frames grouped around centroids, so that a search reads only the groups that can matter.

The sketch (`sketch.py`) scores every video, so a query costs time in proportion to the collection. Here the frames of
the sketch are grouped once, by a two-level k-means in sketch space (`sketch_kmeans.py`: lists of one coarse group
are numbered, and stored, next to each other, so that the lists a query reads tend to form runs), and kept list after
list. For one query:

1. every list gets an upper bound on the best-token score of its frames: the best token's score against the list's
   centroid plus `reach`, the query's longest token in the sketch times the largest distance of a member to the
   centroid (Cauchy-Schwarz: no frame can exceed it). The bound keeps a share `margin` of `reach`, measured as
   `sketch.py` measures the sketch's error: on the lists read first, and on lists drawn from the band where the
   decision is made (bound reaching `beta` with the whole reach, not without it), each list's best frame above its
   centroid's score, divided by its reach, gives `mean + z * std` (`z` for one list in the collection's lists at
   the recall target; at most 1);
2. the lists whose bound reaches `beta` are read, frame by frame (runs of neighbouring lists in one product). A
   video's WTI on the sketch is at most half of (its best frame's score + its frames' weighted mean score): a frame
   not read, or read below `beta`, counts as `beta`. Every video whose bound stays below the k-th best exact score
   minus its own error bound is ruled out without reading its frames;
3. the videos left are scored on the sketch, and `sketch.py`'s rule re-ranks them exactly.

`beta` sits `BETA_MARGIN` below the lowest sketch score that can still reach the top: lower reads more lists but
bounds partly read videos more tightly. Latency and recall: BENCHMARKS.md (`bench/search.py`,
`bench/search_million.py`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from .error_bound import error_quantile
from .fixed_shapes import padded_query, row_products
from .sketch_kmeans import two_level_kmeans

logger = logging.getLogger(__name__)

# Collections smaller than this are scanned whole: below it the lists did not pay for their bookkeeping (30,000
# videos of 12 frames: as fast as the whole scan, or slower).
MIN_VIDEOS = 50_000
# Frames scored in one product: its `[frames, tokens]` float32 output (2 MiB for 32 tokens) stays in cache.
SCAN_BLOCK = 16_384
# Two neighbouring lists to score are joined into one product when fewer frames than this lie between them (scoring
# them costs less than another call).
JOIN_GAP = 2_048
# The first lists scored, best bound first, hold at least this many frames: the probes come from their best frames.
FIRST_WAVE_FRAMES = 32_768
# Lists drawn at random from the band (see `ListScan.measured_margin`) and scored, to measure the margin there.
BAND_LISTS = 32
# How far below the lowest sketch score that can still reach the top the lists are opened.
BETA_MARGIN = 0.05


@dataclass
class FrameLists:
    """The frames of a `FrameSketch` grouped into lists (see the module docstring).

    Args:
        centroids (`torch.Tensor`): `[L, d]` float32, each list's centroid in sketch space.
        radii (`torch.Tensor`): `[L]`, the largest distance of a list's frame to its centroid.
        offsets (`torch.Tensor`): `[L + 1]`, list `l` holds rows `offsets[l]:offsets[l + 1]` of `frames`.
        frames (`torch.Tensor`): `[M, d]` bfloat16, the sketch's valid frames, list after list.
        frame_videos (`torch.Tensor`): `[M]`, the video each row belongs to.
        frame_weights (`torch.Tensor`): `[M]` float32, each row's frame weight.
        video_weights (`torch.Tensor`): `[N]` float32, each video's total frame weight.
    """

    centroids: torch.Tensor
    radii: torch.Tensor
    offsets: torch.Tensor
    frames: torch.Tensor
    frame_videos: torch.Tensor
    frame_weights: torch.Tensor
    video_weights: torch.Tensor

    @classmethod
    def build(cls, frames: torch.Tensor, weights: torch.Tensor, seed: int = 0) -> FrameLists:
        """The lists of a sketch's `frames [N, F, d]` (bfloat16) with frame `weights [N, F]`."""
        num_videos, num_frames, dim = frames.shape
        flat_weights = weights.reshape(-1).float()
        rows = (flat_weights > 0).nonzero().flatten()  # padded frames score 0 and are bounded by `beta >= 0`
        valid = frames.reshape(-1, dim)[rows]
        fitted = two_level_kmeans(valid, seed)
        lists, distance = fitted.assign(valid)
        order = torch.argsort(lists, stable=True)
        lists, rows, centroids = lists[order], rows[order], fitted.fine
        radii = torch.zeros(len(centroids)).scatter_reduce_(0, lists, distance[order], "amax")
        offsets = torch.zeros(len(centroids) + 1, dtype=torch.long)
        offsets[1:] = torch.bincount(lists, minlength=len(centroids)).cumsum(0)
        index_dtype = torch.int32 if num_videos < 2**31 else torch.long
        return cls(
            centroids,
            radii,
            offsets,
            valid[order],
            (rows // num_frames).to(index_dtype),
            flat_weights[rows],
            weights.float().sum(1),
        )

    @property
    def sizes(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    def nbytes(self) -> int:
        """Memory the lists hold."""
        tensors = (self.centroids, self.radii, self.offsets, self.frames, self.frame_videos, self.frame_weights)
        return sum(t.numel() * t.element_size() for t in (*tensors, self.video_weights))

    def spans(self, lists: torch.Tensor, scored: torch.Tensor) -> tuple[list[tuple[int, int]], torch.Tensor]:
        """Row ranges that cover `lists` (joined across gaps shorter than `JOIN_GAP` that hold no list already
        `scored`, cut at `SCAN_BLOCK`), and every list they cover (the given ones and those in the joined gaps)."""
        lists = lists.sort().values
        starts, ends = self.offsets[lists], self.offsets[lists + 1]
        scored_before = torch.cat([torch.zeros(1, dtype=torch.long), scored.long().cumsum(0)])
        scored_between = scored_before[lists[1:]] - scored_before[lists[:-1] + 1]
        new_span = torch.ones(len(lists), dtype=torch.bool)
        new_span[1:] = (starts[1:] - ends[:-1] >= JOIN_GAP) | (scored_between > 0)
        first = new_span.nonzero().flatten()
        last = torch.cat([first[1:] - 1, torch.tensor([len(lists) - 1])])
        covered = torch.cat([torch.arange(int(a), int(b) + 1) for a, b in zip(lists[first], lists[last], strict=True)])
        ranges = []
        for start, end in zip(starts[first].tolist(), ends[last].tolist(), strict=True):
            ranges += [(row, min(row + SCAN_BLOCK, end)) for row in range(start, end, SCAN_BLOCK)]
        return ranges, covered

    def best_token_scores(self, ranges: list[tuple[int, int]], query: torch.Tensor, floor: bool) -> torch.Tensor:
        """Each frame's best-token score on the sketch in `ranges` (concatenated); `query` is `[d, T]` bfloat16 (see
        `fixed_shapes.padded_query`);
        `floor`: padded query tokens score 0, so the maxima are floored there."""
        scores = torch.cat(
            [part.amax(dim=1) for a, b in ranges for part in row_products(self.frames, a, b, query, SCAN_BLOCK)]
        )
        return scores.clamp_min(0) if floor else scores


def measured_margin(excess: list[torch.Tensor], z: float) -> float:
    """The share of `reach x radius` kept in the lists' bounds: `mean + z * std` of the measured excess of each scored
    list's best frame over its centroid (divided by `reach x radius`; at most 1, the Cauchy-Schwarz bound), the
    largest over the groups of lists measured, as `sketch.py` bounds its error."""
    measured = [float(part.mean() + z * part.std()) for part in excess if len(part) > 1]
    return min(1.0, max(measured)) if measured else 1.0


class ListScan:
    """One query's pass over the lists: which were scored, and each scored frame's best-token score.

    Args:
        lists (`FrameLists`): the lists.
        reduced (`torch.Tensor`): `[T, d]` float32, the query's valid tokens in sketch space.
        floor (`bool`): whether the query had padded tokens (their zero scores floor the maxima over tokens).
    """

    def __init__(self, lists: FrameLists, reduced: torch.Tensor, floor: bool):
        self.lists, self.floor = lists, floor
        self.query, _ = padded_query(reduced, torch.ones(len(reduced)))
        # The frames are bfloat16 values the centroids were averaged from, so only the query's rounding to bfloat16
        # separates a frame's score from the bound (under 2^-8 for unit vectors).
        self.centroid_best = (reduced @ lists.centroids.T).amax(0) + 2.0**-8
        self.reach = lists.radii * float(reduced.norm(dim=1).max())
        self.scored = torch.zeros(len(lists.radii), dtype=torch.bool)
        # What was scored, call after call: the row ranges (their starts and lengths), the lists they cover (in row
        # order) and every scored frame's best-token score (the ranges' rows, concatenated).
        self.starts: list[int] = []
        self.lengths: list[int] = []
        self.covered: list[torch.Tensor] = []
        self.scores: list[torch.Tensor] = []
        self.videos: list[torch.Tensor] = []  # the video of each scored frame
        self.weights: list[torch.Tensor] = []  # its frame weight

    def upper_bounds(self, margin: float = 1.0) -> torch.Tensor:
        """`[L]`: no frame of a list scores above its bound (with `margin` 1: Cauchy-Schwarz, exact)."""
        return self.centroid_best + margin * self.reach

    def score(self, lists: torch.Tensor) -> torch.Tensor:
        """Scores the frames of `lists` not scored yet (and of the short gaps between them); returns the lists
        scored by this call."""
        lists = lists[~self.scored[lists]]
        if len(lists) == 0:
            return lists
        ranges, covered = self.lists.spans(lists, self.scored)
        self.starts += [start for start, _ in ranges]
        self.lengths += [end - start for start, end in ranges]
        self.covered.append(covered)
        self.scores.append(self.lists.best_token_scores(ranges, self.query, self.floor))
        self.videos.append(torch.cat([self.lists.frame_videos[start:end] for start, end in ranges]))
        self.weights.append(torch.cat([self.lists.frame_weights[start:end] for start, end in ranges]))
        self.scored[covered] = True
        return covered

    def first_wave(self) -> None:
        """Scores the lists with the best bounds, until `FIRST_WAVE_FRAMES` frames are scored."""
        order = self.upper_bounds().argsort(descending=True)
        count = int(torch.searchsorted(self.lists.sizes[order].cumsum(0), FIRST_WAVE_FRAMES)) + 1
        self.score(order[:count])

    def best_videos(self, frame_count: int) -> torch.Tensor:
        """The distinct videos of the `frame_count` best frames scored so far."""
        scores = torch.cat(self.scores)
        best = scores.topk(min(frame_count, len(scores))).indices
        return torch.unique(torch.cat(self.videos)[best].long())

    def measured_margin(self, beta: float, z: float, generator: torch.Generator) -> float:
        """The share of each list's reach its bound keeps, measured (see `measured_margin`) on the lists scored so far
        and on `BAND_LISTS` lists drawn from the band, where the margin decides: lists not scored whose centroid
        scores below `beta` but whose Cauchy-Schwarz bound reaches it (scored here)."""
        first = self.scored.nonzero().flatten()
        band = (~self.scored & (self.centroid_best < beta) & (self.upper_bounds() >= beta)).nonzero().flatten()
        drawn = self.score(band[torch.randperm(len(band), generator=generator)[:BAND_LISTS]])
        best = torch.full((len(self.scored),), -float("inf"))
        for covered, scores in zip(self.covered, self.scores, strict=True):
            best[covered] = torch.segment_reduce(scores, "max", lengths=self.lists.sizes[covered])
        excess = (best - self.centroid_best) / self.reach
        groups = [excess[group[self.reach[group] > 0]] for group in (first, drawn)]
        return measured_margin(groups, z)

    def candidates(self, lowest: torch.Tensor, recall_target: float) -> torch.Tensor:
        """`[N]` bool: the videos whose sketch score can reach `lowest` (per video: the k-th best exact score minus
        the sketch's error bound). Scores the lists that can hold a frame above `beta` and bounds every video from
        its scored frames (see the module docstring)."""
        beta = max(float(lowest.min()) - BETA_MARGIN, 0.0)
        z = error_quantile(recall_target, len(self.scored))
        margin = self.measured_margin(beta, z, torch.Generator().manual_seed(0))
        self.score((self.upper_bounds(margin) >= beta).nonzero().flatten())
        return self.video_bounds(beta, len(lowest)) >= lowest

    def video_bounds(self, beta: float, num_videos: int) -> torch.Tensor:
        """`[N]`: an upper bound of each video's WTI on the sketch, when every frame not scored (or scored below
        `beta`) is known to score at most `beta >= 0`: half of (best frame + weighted mean of the frames)."""
        scores = torch.cat(self.scores)
        high = (scores >= beta).nonzero().flatten()
        videos, scores = torch.cat(self.videos)[high].long(), scores[high]
        best = torch.full((num_videos,), beta).scatter_reduce_(0, videos, scores, "amax")
        above = torch.zeros(num_videos).index_add_(0, videos, torch.cat(self.weights)[high] * (scores - beta))
        return (best + beta * self.lists.video_weights + above) / 2
