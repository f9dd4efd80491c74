"""Where a `VideoIndex` keeps its videos' features: the interface its stores share.

The index holds the file side (fingerprints, failures, the model signature, the folder it is saved in) and one
`VideoStore`, whose row `i` holds the features of the index's `i`-th video: `MemoryStore` (tensors in this process,
saved in the index folder; `memory_store.py`) or `QdrantStore` (a Qdrant collection; `qdrant.py`). The index keeps
the rows in step with its videos (`append`, `take`), asks the store to rank them (`search`), and saves what the store
says it needs (`saved`) in the index folder beside the manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import torch

from .features import PreparedSide


class Ranking(NamedTuple):
    """One query's best videos, best first: their exact DRL scores and their rows in the store."""

    scores: list[float]
    rows: list[int]


@dataclass
class SavedFeatures:
    """What a store writes to the index folder, and reads back from it when the index is loaded.

    Args:
        tensors (`dict[str, torch.Tensor]`): tensors with one row per video.
        shared (`dict[str, torch.Tensor]`): tensors that are not per video.
        manifest (`dict`): entries of the manifest beyond the videos and the model (an engine names itself).
    """

    tensors: dict[str, torch.Tensor]
    shared: dict[str, torch.Tensor] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)


class VideoStore(Protocol):
    """The features of an index's videos, row `i` for its `i`-th video, and the search over them."""

    @property
    def storage_dtype(self) -> torch.dtype:
        """The dtype frame vectors are stored in (what new videos are encoded to)."""
        ...

    def append(self, paths: Sequence[str], videos: PreparedSide) -> None:
        """Adds rows for new videos at the end.

        Args:
            paths (`Sequence[str]`): their files (a store may keep them beside the vectors).
            videos (`PreparedSide`): their features, one row per path.
        """
        ...

    def take(self, rows: torch.Tensor) -> None:
        """Keeps the rows at `rows`, in that order (removal and reordering).

        Args:
            rows (`torch.LongTensor`): row numbers, each at most once.
        """
        ...

    def features(self) -> PreparedSide:
        """Every row's features, in order (a full read for a store outside this process)."""
        ...

    def search(self, queries: PreparedSide, top_k: int, candidates: int | None, recall_target: float) -> list[Ranking]:
        """The `top_k` best rows for each query by exact DRL similarity (the store holds at least one row).

        Args:
            queries (`PreparedSide`): prepared queries (`features.prepare_queries`).
            top_k (`int`): how many rows to return per query (fewer when the store has fewer).
            candidates (`int`, *optional*): `None` for the search that adapts to its measured error bound; a
                number for a fixed count of candidates re-ranked exactly.
            recall_target (`float`): the recall of the exact top `top_k` the adaptive search aims at.
        """
        ...

    def saved(self) -> SavedFeatures:
        """What `VideoIndex.save` writes beside the manifest."""
        ...
