"""A `VideoIndex` as committed in its folder: the manifest's file side (videos, failures, model) and its store's part.

`storage.py` keeps versions of tensors and a manifest safe on disk; this module says what an index puts in them and
checks what it reads back (entries well formed, every video under the folder it indexes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .chunks import remove_chunks
from .fingerprint import FileFingerprint
from .storage import IndexConflictError, IndexCorruptError, commit_index, committed_version, index_lock, read_index
from .store import SavedFeatures


@dataclass
class SavedIndex:
    """What `read_saved_index` found at `path`.

    Args:
        path (`Path`): the index folder.
        version (`str`): the committed version read.
        entries (`list[FileFingerprint]`): the indexed videos, in index order.
        signature (`dict`): `index_signature` of the model and processor that built it.
        failed (`dict[str, str]`): `{path: reason}` of the videos that could not be decoded.
        failed_stats (`dict[str, list[int]]`): `{path: [size, mtime_ns]}` of those files when they failed.
        features (`SavedFeatures`): the store's tensors, and the whole manifest (where a store finds its entries).
    """

    path: Path
    version: str
    entries: list[FileFingerprint]
    signature: dict
    failed: dict[str, str]
    failed_stats: dict[str, list[int]]
    features: SavedFeatures

    @property
    def engine(self) -> str | None:
        """The engine holding the vectors (`"qdrant"`), or None when they are in the folder."""
        return self.features.manifest.get("engine")


def read_saved_index(path: str | os.PathLike, root: str | os.PathLike | None = None, mmap: bool = False) -> SavedIndex:
    """Reads and checks the index committed at `path`.

    Args:
        path (`str` or `os.PathLike`): the index folder.
        root (`str` or `os.PathLike`, *optional*): if given, every indexed video must lie under this folder.
        mmap (`bool`, *optional*, defaults to `False`): map the tensors from disk instead of reading them.

    Raises:
        FileNotFoundError: nothing was committed at `path`.
        IndexCorruptError: the folder is truncated, edited or of an older format, or lists videos outside `root`.
    """
    path = Path(path)
    tensors, manifest, version = read_index(path, mmap=mmap)
    try:
        entries = [FileFingerprint(**entry) for entry in manifest["videos"]]
        signature = manifest["model"]
    except (KeyError, TypeError) as error:
        raise IndexCorruptError(path, f"the manifest's video entries are malformed ({error})") from None
    if root is not None:
        base = os.path.realpath(os.path.expanduser(root))
        outside = [entry.path for entry in entries if not _listed_under(base, entry.path)]
        if outside:
            raise IndexCorruptError(path, f"{len(outside)} listed video(s) lie outside {root}, e.g. {outside[0]}")
    shared = {name: tensors.pop(name) for name in manifest.get("shared_tensors", [])}
    return SavedIndex(
        path,
        version,
        entries,
        signature,
        failed=manifest.get("failed") or {},
        failed_stats=manifest.get("failed_stats") or {},
        features=SavedFeatures(tensors, shared, manifest),
    )


def commit_saved_index(path: Path, manifest: dict, features: SavedFeatures, read_version: str | None) -> str:
    """Commits a new version of the index at `path` and clears the chunks of the build it finishes.

    Args:
        path (`Path`): the index folder.
        manifest (`dict`): the file side: `model`, `videos`, `failed`, `failed_stats`.
        features (`SavedFeatures`): the store's part.
        read_version (`str`, *optional*): the version this copy of the index was read from or last saved as at
            `path`; None when it has none there.

    Returns:
        `str`: the new version.

    Raises:
        IndexConflictError: another process committed a version after `read_version`.
    """
    with index_lock(path):
        current = committed_version(path)
        if read_version is not None and current != read_version:
            raise IndexConflictError(
                f"The video index at {path} was changed by another process (version {current}) since this copy "
                f"was read (version {read_version}); saving would drop those changes. Load it again and repeat "
                "this change, or use VideoIndex.sync, which waits for other processes."
            )
        version = commit_index(path, features.tensors, {**manifest, **features.manifest}, features.shared)
        remove_chunks(path)
    return version


def _listed_under(base: str, listed: str) -> bool:
    """Whether `listed` names a file in the folder `base` (already resolved). The file's folder is resolved, the file
    itself is not: a link inside the folder to a video elsewhere is a video of the folder (the walk lists it), while
    a path edited to name a file elsewhere is not."""
    folder = os.path.realpath(os.path.dirname(os.path.abspath(listed)))
    return os.path.commonpath([base, folder]) == base
