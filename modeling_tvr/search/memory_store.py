"""`MemoryStore`: an index's features as tensors in this process, saved in the index folder, searched here.

The frame vectors, frame weights and summaries are held whole (or memory-mapped from the saved file), with the frame
sketch the default search starts from (`sketch.py`), which follows every `append` and `take`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from . import frame_lists
from .features import PreparedSide, two_stage_search
from .sketch import FrameSketch, adaptive_search
from .store import Ranking, SavedFeatures


class MemoryStore:
    """Features held as tensors; implements `store.VideoStore`.

    Args:
        videos (`PreparedSide`): the features, one row per video (frame vectors in the storage dtype).
        interaction (`str`): the model's interaction; `"dp"` features are searched by their summaries alone.
        sketch (`FrameSketch`, *optional*): the sketch of `videos` (built on the first search otherwise).
    """

    def __init__(self, videos: PreparedSide, interaction: str, sketch: FrameSketch | None = None):
        self.videos, self.interaction = videos, interaction
        self._sketch = sketch

    @classmethod
    def from_saved(cls, saved: SavedFeatures, interaction: str) -> MemoryStore:
        """The store `saved()` wrote, as `VideoIndex.load` read it back (tensors read or memory-mapped)."""
        tensors = saved.tensors
        videos = PreparedSide(tensors["vectors"], tensors["weights"], tensors["summary"])
        return cls(videos, interaction, FrameSketch.from_saved(tensors, saved.shared, videos.weights))

    @property
    def storage_dtype(self) -> torch.dtype:
        return self.videos.vectors.dtype

    @property
    def sketch(self) -> FrameSketch:
        """The frame sketch the default search starts from, built on first use."""
        if self._sketch is None:
            self._sketch = FrameSketch.build(self.videos)
        return self._sketch

    def append(self, paths: Sequence[str], videos: PreparedSide) -> None:
        self.videos = PreparedSide(
            torch.cat([self.videos.vectors, videos.vectors]),
            torch.cat([self.videos.weights, videos.weights]),
            torch.cat([self.videos.summary, videos.summary]),
        )
        if self._sketch is not None:
            self._sketch = self._sketch.extended(videos.vectors, videos.weights)

    def take(self, rows: torch.Tensor) -> None:
        self.videos = self.videos.take(rows)
        if self._sketch is not None:
            self._sketch = self._sketch.take(rows)

    def features(self) -> PreparedSide:
        return self.videos

    def search(self, queries: PreparedSide, top_k: int, candidates: int | None, recall_target: float) -> list[Ranking]:
        if candidates is not None or self.interaction == "dp":  # DP's summaries are its exact embeddings
            count = candidates or self.videos.summary.shape[0]
            scores, rows = two_stage_search(queries, self.videos, self.interaction, top_k, count)
            return [Ranking(*ranking) for ranking in zip(scores.tolist(), rows.tolist(), strict=True)]
        rankings = []
        for position in range(queries.summary.shape[0]):
            query = queries.take(slice(position, position + 1))
            scores, rows, _ = adaptive_search(query, self.videos, self.sketch, top_k, recall_target)
            rankings.append(Ranking(scores.tolist(), rows.tolist()))
        return rankings

    def saved(self) -> SavedFeatures:
        """The features, and the sketch (with its frame lists from `MIN_VIDEOS` videos on): built here if no search
        built them yet, so that every later load (each run of the search command) finds them instead of computing
        them again."""
        tensors = {"vectors": self.videos.vectors, "weights": self.videos.weights, "summary": self.videos.summary}
        if self.interaction == "dp" or self.videos.summary.shape[0] == 0:
            return SavedFeatures(tensors)  # DP searches its summaries; no videos give no frames to take directions from
        if len(self.videos.weights) >= frame_lists.MIN_VIDEOS:
            self.sketch.frame_lists(self.videos.weights)
        sketch_tensors, shared = self.sketch.saved()
        return SavedFeatures(tensors | sketch_tensors, shared=shared)
