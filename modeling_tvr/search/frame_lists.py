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
from .sketch_kmeans import TwoLevelCentroids, two_level_kmeans

logger = logging.getLogger(__name__)

# Collections smaller than this are scanned whole, where the whole scan is cheap and the lists' bookkeeping does not
# pay. bench/search.py times the whole scan at 10,000 videos and both at 100,000; the crossover between them is not
# benchmarked, so this threshold is a judgement.
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
        coarse (`torch.Tensor`): `[G, d]`, the first level's centroids, and `group_offsets` `[G + 1]` the lists of
            each (`sketch_kmeans.TwoLevelCentroids`): what new frames are assigned with.
        group_offsets (`torch.Tensor`): see `coarse`.
    """

    centroids: torch.Tensor
    radii: torch.Tensor
    offsets: torch.Tensor
    frames: torch.Tensor
    frame_videos: torch.Tensor
    frame_weights: torch.Tensor
    video_weights: torch.Tensor
    coarse: torch.Tensor
    group_offsets: torch.Tensor

    @classmethod
    def build(cls, frames: torch.Tensor, weights: torch.Tensor, seed: int = 0) -> FrameLists:
        """The lists of a sketch's `frames [N, F, d]` (bfloat16) with frame `weights [N, F]`."""
        rows = (weights.reshape(-1) > 0).nonzero().flatten()
        valid = frames.reshape(-1, frames.shape[-1])[rows]
        fitted = two_level_kmeans(valid, seed)
        return cls._empty(fitted, frames.shape[-1])._with(valid, rows, frames.shape[1], weights)

    @classmethod
    def _empty(cls, fitted: TwoLevelCentroids, dim: int) -> FrameLists:
        count = len(fitted.fine)
        return cls(
            fitted.fine,
            torch.zeros(count),
            torch.zeros(count + 1, dtype=torch.long),
            torch.empty(0, dim, dtype=torch.bfloat16),
            torch.empty(0, dtype=torch.int32),
            torch.empty(0),
            torch.empty(0),
            fitted.coarse,
            fitted.group_offsets,
        )

    def extended(self, frames: torch.Tensor, weights: torch.Tensor) -> FrameLists:
        """The lists with new videos' sketch frames `[n, F, d]` (weights `[n, F]`) added, as videos `N..N+n-1`:
        each valid frame joins its nearest list (the centroids stay; a radius grows to cover a farther member)."""
        rows = (weights.reshape(-1) > 0).nonzero().flatten()  # padded frames score 0 and are bounded by `beta >= 0`
        return self._with(frames.reshape(-1, frames.shape[-1])[rows], rows, frames.shape[1], weights)

    def _with(self, new_frames: torch.Tensor, rows: torch.Tensor, num_frames: int, weights: torch.Tensor) -> FrameLists:
        """`extended` for the valid frames already gathered: `new_frames` are the flat rows `rows` of `[n, F, d]`."""
        num_videos = len(weights)
        flat_weights = weights.reshape(-1).float()
        fitted = TwoLevelCentroids(self.coarse, self.centroids, self.group_offsets)
        new_lists, distance = fitted.assign(new_frames)
        radii = self.radii.clone().scatter_reduce_(0, new_lists, distance, "amax")
        old_lists = torch.repeat_interleave(torch.arange(len(self.radii)), self.sizes)
        order = torch.argsort(torch.cat([old_lists, new_lists]), stable=True)
        first_video = len(self.video_weights)
        index_dtype = torch.int32 if first_video + num_videos < 2**31 else torch.long
        videos = torch.cat([self.frame_videos.to(index_dtype), (first_video + rows // num_frames).to(index_dtype)])
        offsets = torch.zeros_like(self.offsets)
        offsets[1:] = torch.bincount(torch.cat([old_lists, new_lists]), minlength=len(self.radii)).cumsum(0)
        return FrameLists(
            self.centroids,
            radii,
            offsets,
            (torch.cat([self.frames, new_frames]) if len(self.frames) else new_frames)[order],  # no copy at build
            videos[order],
            torch.cat([self.frame_weights, flat_weights[rows]])[order],
            torch.cat([self.video_weights, weights.float().sum(1)]),
            self.coarse,
            self.group_offsets,
        )

    def take(self, rows: torch.Tensor) -> FrameLists:
        """The lists of the videos at `rows`, renumbered in that order (a video's frames leave their lists when it
        is not among them; radii stay: they still bound the members left)."""
        position = torch.full((len(self.video_weights),), -1, dtype=torch.long)
        position[rows] = torch.arange(len(rows))
        new_video = position[self.frame_videos.long()]
        kept = (new_video >= 0).nonzero().flatten()  # a video taken twice would need its frames twice: not done here
        lists = torch.repeat_interleave(torch.arange(len(self.radii)), self.sizes)[kept]
        offsets = torch.zeros_like(self.offsets)
        offsets[1:] = torch.bincount(lists, minlength=len(self.radii)).cumsum(0)
        return FrameLists(
            self.centroids,
            self.radii,
            offsets,
            self.frames[kept],
            new_video[kept].to(self.frame_videos.dtype),
            self.frame_weights[kept],
            self.video_weights[rows],
            self.coarse,
            self.group_offsets,
        )

    SAVED = ("centroids", "radii", "offsets", "frames", "frame_videos", "frame_weights", "coarse", "group_offsets")

    def saved(self) -> dict[str, torch.Tensor]:
        """The tensors an index folder keeps (`lists_` + field), all but the video weights (its frame weights)."""
        return {f"lists_{name}": getattr(self, name) for name in self.SAVED}

    @classmethod
    def from_saved(cls, shared: dict[str, torch.Tensor], weights: torch.Tensor) -> FrameLists | None:
        """The lists `saved()` wrote (None when the folder holds none), with the index's frame `weights [N, F]`."""
        if not all(f"lists_{name}" in shared for name in cls.SAVED):
            return None
        fields = {name: shared[f"lists_{name}"] for name in cls.SAVED}
        return cls(**fields, video_weights=weights.float().sum(1))

    @property
    def sizes(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    def nbytes(self) -> int:
        """Memory the lists hold."""
        tensors = [getattr(self, name) for name in self.SAVED] + [self.video_weights]
        return sum(t.numel() * t.element_size() for t in tensors)

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
        parts = [part.amax(dim=1) for a, b in ranges for part in row_products(self.frames, a, b, query, SCAN_BLOCK)]
        scores = torch.cat(parts) if parts else torch.empty(0)
        return scores.clamp_min(0) if floor else scores


def measured_margin(excess: list[torch.Tensor], z: float) -> float:
    """The share of `reach x radius` kept in the lists' bounds: `mean + z * std` of the measured excess of each scored
    list's best frame over its centroid (divided by `reach x radius`; at most 1, the Cauchy-Schwarz bound), the
    largest over the groups of lists measured, as `sketch.py` bounds its error."""
    measured = [float(part.mean() + z * part.std()) for part in excess if len(part) > 1]
    # A list's best frame scores at least its centroid (the mean of its members) for the best token, so the excess is
    # not negative unless centroids were kept while members came and went: never shrink the bound below the centroid.
    return min(1.0, max(0.0, *measured)) if measured else 1.0


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
        # What was scored, call after call: the lists covered (in row order) and, for the rows of those lists
        # concatenated, each frame's best-token score, video and frame weight.
        self.covered: list[torch.Tensor] = []
        self.scores: list[torch.Tensor] = []
        self.videos: list[torch.Tensor] = []
        self.weights: list[torch.Tensor] = []

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
        self.covered.append(covered)
        self.scores.append(self.lists.best_token_scores(ranges, self.query, self.floor))
        self.videos.append(torch.cat([self.lists.frame_videos[start:end] for start, end in [(0, 0), *ranges]]))
        self.weights.append(torch.cat([self.lists.frame_weights[start:end] for start, end in [(0, 0), *ranges]]))
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
            best[covered] = torch.segment_reduce(
                scores, "max", lengths=self.lists.sizes[covered], initial=-float("inf")
            )
        excess = (best - self.centroid_best) / self.reach
        measurable = (self.reach > 0) & (self.lists.sizes > 0)  # a list emptied by removals has no frame to measure
        groups = [excess[group[measurable[group]]] for group in (first, drawn)]
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
