"""Two-level k-means of sketch frames: the centroids `frame_lists.py` groups frames around.

A flat k-means with thousands of centroids costs `frames x centroids` products to assign a million videos' frames;
two levels (`COARSE` groups, each split in proportion to its share of the frames) cost `frames x (COARSE + lists in
the group)`, and number the lists group after group, so that lists close in space are close in storage.
"""

from __future__ import annotations

import torch

# Groups of the first level.
COARSE = 64
# Frames per list aimed at: smaller lists have tighter bounds, more of them cost more per query.
FRAMES_PER_LIST = 512
# Most lists built, whatever the collection's size.
MAX_LISTS = 16_384
# Sampled frames per centroid the centroids are fitted on.
SAMPLE_PER_CENTROID = 24
# Lloyd iterations at each level.
ITERATIONS = 8
# Frames assigned in one product.
ASSIGN_BLOCK = 65_536


def nearest(points: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index of the nearest of `centroids [k, d]` (squared L2) for each of `points [n, d]`, in blocks."""
    half_norms = 0.5 * centroids.square().sum(1)
    transposed = centroids.T.to(points.dtype).contiguous()
    index = torch.empty(len(points), dtype=torch.long)
    for start in range(0, len(points), ASSIGN_BLOCK):
        products = (points[start : start + ASSIGN_BLOCK] @ transposed).float()
        index[start : start + ASSIGN_BLOCK] = (products - half_norms).argmax(1)
    return index


def distances(points: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """`|point - centroid|` in float32, row by row, in blocks: exact, unlike the expansion the products give (the
    lists' radii must bound every member)."""
    out = torch.empty(len(points))
    for start in range(0, len(points), ASSIGN_BLOCK):
        block = slice(start, start + ASSIGN_BLOCK)
        out[block] = (points[block].float() - centroids[block]).norm(dim=1)
    return out


def lloyd(points: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` centroids (float32) of `points` by Lloyd's iterations from a random draw; an empty cluster keeps its
    previous centroid."""
    count = min(count, len(points))
    centroids = points[torch.randperm(len(points), generator=generator)[:count]].float()
    for _ in range(ITERATIONS):
        assigned = nearest(points, centroids)
        sums = torch.zeros_like(centroids).index_add_(0, assigned, points.float())
        counts = torch.bincount(assigned, minlength=count).unsqueeze(1).float()
        centroids = torch.where(counts > 0, sums / counts.clamp_min(1), centroids)
    return centroids


class TwoLevelCentroids:
    """Coarse centroids `[G, d]`, and the fine ones `[L, d]` of group `g` at rows `group_offsets[g]:[g + 1]`."""

    def __init__(self, coarse: torch.Tensor, fine: torch.Tensor, group_offsets: torch.Tensor):
        self.coarse, self.fine, self.group_offsets = coarse, fine, group_offsets

    def assign(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The fine centroid of each point (nearest coarse group first, then nearest fine centroid inside it), and
        the distance to it."""
        groups = nearest(points, self.coarse)
        order = torch.argsort(groups)
        bounds = torch.searchsorted(groups[order], torch.arange(len(self.coarse) + 1)).tolist()
        index, distance = torch.empty(len(points), dtype=torch.long), torch.empty(len(points))
        for group in range(len(self.coarse)):
            members = order[bounds[group] : bounds[group + 1]]
            start, end = int(self.group_offsets[group]), int(self.group_offsets[group + 1])
            if len(members):
                group_points = points[members]
                fine = start + nearest(group_points, self.fine[start:end])
                index[members], distance[members] = fine, distances(group_points, self.fine[fine])
        return index, distance


def two_level_kmeans(points: torch.Tensor, seed: int = 0) -> TwoLevelCentroids:
    """Centroids for `points [M, d]`: about `M / FRAMES_PER_LIST` lists (at most `MAX_LISTS`), numbered group by
    group; fitted on a fixed-seed sample."""
    generator = torch.Generator().manual_seed(seed)
    lists = max(1, min(MAX_LISTS, len(points) // FRAMES_PER_LIST))
    sample = points[torch.randperm(len(points), generator=generator)[: lists * SAMPLE_PER_CENTROID]]
    coarse = lloyd(sample, min(COARSE, lists), generator)
    groups = nearest(sample, coarse)
    fine, offsets = [], [0]
    for group in range(len(coarse)):
        members = sample[groups == group]
        count = max(1, round(lists * len(members) / len(sample))) if len(members) else 0
        fine.append(lloyd(members, count, generator) if count else coarse[group : group + 1])
        offsets.append(offsets[-1] + len(fine[-1]))
    return TwoLevelCentroids(coarse, torch.cat(fine), torch.tensor(offsets))
