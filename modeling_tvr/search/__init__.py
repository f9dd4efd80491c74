"""Text search over a collection of videos: an index of a model's frame features, kept in step with a folder.

`VideoIndex` with its features in a `MemoryStore` (saved as safetensors, memory-mappable) or a `QdrantStore` (a
Qdrant collection, through `QdrantVideoIndex`), and the command line `python -m modeling_tvr.search`. None of this
travels with a saved model: it imports the model core and is used beside it.

The names load on first use, so that the command line checks its arguments before torch is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "IndexConflictError": "storage",
    "IndexCorruptError": "storage",
    "IndexMismatchError": "signature",
    "IndexSpaceError": "storage",
    "MemoryStore": "memory_store",
    "QdrantStore": "qdrant",
    "QdrantVideoIndex": "qdrant",
    "SearchHit": "index",
    "VideoIndex": "index",
    "VideoStore": "store",
    "find_videos": "video_files",
    "main": "cli",
}
__all__ = list(_EXPORTS)

if TYPE_CHECKING:  # the names for type checkers and editors, as `__getattr__` gives them
    from .cli import main as main
    from .index import SearchHit as SearchHit
    from .index import VideoIndex as VideoIndex
    from .memory_store import MemoryStore as MemoryStore
    from .qdrant import QdrantStore as QdrantStore
    from .qdrant import QdrantVideoIndex as QdrantVideoIndex
    from .signature import IndexMismatchError as IndexMismatchError
    from .storage import IndexConflictError as IndexConflictError
    from .storage import IndexCorruptError as IndexCorruptError
    from .storage import IndexSpaceError as IndexSpaceError
    from .store import VideoStore as VideoStore
    from .video_files import find_videos as find_videos


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
