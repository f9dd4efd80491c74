"""Text search over a collection of videos: an index of a model's frame features, kept in step with a folder.

`VideoIndex` (in memory, saved as safetensors, memory-mappable), `QdrantVideoIndex` (the frame vectors in a Qdrant
collection) and the command line `python -m modeling_tvr.search`. None of this travels with a saved model: it imports
the model core and is used beside it.

The names load on first use, so that the command line checks its arguments before torch is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "IndexConflictError": "storage",
    "IndexCorruptError": "storage",
    "IndexMismatchError": "index",
    "IndexSpaceError": "storage",
    "QdrantVideoIndex": "qdrant",
    "SearchHit": "index",
    "VideoIndex": "index",
    "find_videos": "video_files",
    "main": "cli",
}
__all__ = [
    "IndexConflictError",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexSpaceError",
    "QdrantVideoIndex",
    "SearchHit",
    "VideoIndex",
    "find_videos",
    "main",
]

if TYPE_CHECKING:
    from .cli import main
    from .index import IndexMismatchError, SearchHit, VideoIndex
    from .qdrant import QdrantVideoIndex
    from .storage import IndexConflictError, IndexCorruptError, IndexSpaceError
    from .video_files import find_videos


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
