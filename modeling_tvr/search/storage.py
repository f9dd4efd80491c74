"""How a `VideoIndex` lies on disk: versions committed by one rename, verified when read, guarded by a lock.

    path/
      CURRENT                 the committed version's folder name; replacing this one file is the commit
      v000007/                index.safetensors (features) and manifest.json (videos, model, row count, checksum)
      chunks/                 a build in progress (see `VideoIndex.build`)
      .lock                   held while a process reads-modifies-writes the index

A process killed at any point leaves `CURRENT` naming a complete version, so tensors and manifest always belong
together. Reading checks the format, the row counts, the tensors' checksum and that every value is finite, and
raises `IndexCorruptError` with the fix (rebuild) otherwise; the two full reads run once per state of the files, a
record of their size, times and inode (`verified.json`) vouching for them afterwards. A damaged `CURRENT` (empty,
not a version name, naming a missing folder) is repaired to name the newest complete version, with a warning. Files
get the mode any file of the process gets (its umask), so an index can be shared; a full disk is reported as
`IndexSpaceError` with the space needed, the committed version left as it was. `index_lock` serialises
processes that share a path (two search commands on a new folder, two builds, two `add`s): they wait for each other
instead of overwriting each other's work, and a save over a version that changed since it was loaded is refused
(`IndexConflictError`).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock, Timeout
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers.utils import logging

from ..modeling_drl import new_file_mode
from .fingerprint import content_hash

logger = logging.get_logger(__name__)

CURRENT_FILE = "CURRENT"
INDEX_FILE = "index.safetensors"
MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".lock"
VERIFIED_FILE = "verified.json"
FORMAT_VERSION = 2
# The tensors of an in-memory index; another layout (an engine-backed index) names its own in the manifest.
TENSOR_NAMES = ("vectors", "weights", "summary")
_VERSION_PREFIX = "v"
_VERSION_NAME = re.compile(rf"{_VERSION_PREFIX}\d{{6,}}")
# Errors of a write that ran out of room: the disk, the user's quota, or the largest file the filesystem allows.
_NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class IndexCorruptError(ValueError):
    """An index folder that cannot be trusted (truncated, edited, half-written by an older version); rebuild it."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(
            f"The video index at {path} is unusable: {reason}. Rebuild it: delete the folder (the search command "
            "then indexes the videos again) or call VideoIndex.build(..., path=...)."
        )


class IndexConflictError(RuntimeError):
    """The index on disk changed since this copy was loaded: saving would drop the other process's changes."""


class IndexSpaceError(OSError):
    """No room to write (part of) a video index; what was committed there before is left as it was."""

    def __init__(self, folder: str | os.PathLike, needed: int):
        self.folder, self.needed = str(folder), needed
        free = shutil.disk_usage(folder).free if os.path.isdir(folder) else 0
        super().__init__(
            f"No space left to save the video index in {folder}: it needs about {_size(needed)} ({_size(free)} "
            "free there). Free some space or keep the index elsewhere (--index DIR, or VideoIndex.save(path)); "
            "what was saved there before is intact."
        )
        self.errno = errno.ENOSPC  # after `__init__`, so that the message stays the one above


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def is_out_of_space(error: BaseException) -> bool:
    """Whether a failed write ran out of room (safetensors reports the OS error only in its message)."""
    if isinstance(error, OSError):
        return error.errno in _NO_SPACE_ERRNOS
    code = re.search(r"os error (\d+)", str(error)) if isinstance(error, SafetensorError) else None
    return code is not None and int(code.group(1)) in _NO_SPACE_ERRNOS


def tensor_bytes(tensors: dict[str, torch.Tensor]) -> int:
    """Bytes the tensors take in a safetensors file, less its small header."""
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors.values())


def save_tensors(tensors: dict[str, torch.Tensor], target: str | os.PathLike, metadata: dict | None = None) -> None:
    """`safetensors.torch.save_file`, but the file gets the process's usual mode: safetensors writes through a
    temporary file created 0600, which would lock every other user out of a shared index."""
    save_file(tensors, str(target), metadata=metadata)
    os.chmod(target, new_file_mode())


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# One lock object per folder and process, so that nested uses (sync -> build -> save) re-enter it rather than wait
# for themselves.
_LOCKS: dict[str, FileLock] = {}


@contextmanager
def index_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold the index folder's lock, waiting (with a log line) while another process holds it."""
    path = Path(path).absolute()
    path.mkdir(parents=True, exist_ok=True)
    lock = _LOCKS.setdefault(str(path), FileLock(str(path / LOCK_FILE), mode=new_file_mode()))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logger.warning("Another process is using the video index at %s; waiting for it to finish.", path)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def committed_version(path: str | os.PathLike) -> str | None:
    """The folder name `CURRENT` names, or None when nothing was committed at `path`.

    A damaged `CURRENT` is repaired to name the newest complete version, with a warning; `IndexCorruptError` (the
    folder to delete) when no complete version is left.
    """
    path = Path(path)
    version, problem = _read_pointer(path)
    return version if problem is None else _repair_pointer(path, problem)


def _read_pointer(path: Path) -> tuple[str | None, str | None]:
    """The version `CURRENT` names (None when there is no such file), or else what is wrong with it."""
    try:
        raw = (path / CURRENT_FILE).read_bytes()
    except FileNotFoundError:
        return None, None
    try:
        name = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        return None, "it holds bytes that are not a version name"
    if not name:
        return None, "it is empty"
    if not _VERSION_NAME.fullmatch(name):
        return None, f"it holds {name[:40]!r}, not a version name"
    if not (path / name).is_dir():
        return None, f"it names {name}, which is not there"
    return name, None


def _newest_complete_version(path: Path, problem: str) -> str:
    """The newest version folder holding both files (checked in full when read), else `IndexCorruptError`."""
    complete = [
        folder.name
        for folder in path.iterdir()
        if _VERSION_NAME.fullmatch(folder.name)
        and (folder / INDEX_FILE).is_file()
        and (folder / MANIFEST_FILE).is_file()
    ]
    if not complete:
        raise IndexCorruptError(
            path, f"its {CURRENT_FILE} pointer is damaged ({problem}) and no complete version is left to repair it from"
        )
    return max(complete, key=lambda name: int(name[len(_VERSION_PREFIX) :]))


def _repair_pointer(path: Path, problem: str) -> str:
    """Points `CURRENT` at the newest complete version, under the folder's lock (a commit in progress ends first)."""
    try:
        with index_lock(path):
            version, problem_now = _read_pointer(path)
            if problem_now is None:
                return version  # another process repaired it, or committed, while this one waited
            version = _newest_complete_version(path, problem)
            _write_pointer(path, version)
    except OSError as error:  # a folder this user may read but not write: use the version, leave the file
        version = _newest_complete_version(path, problem)
        logger.warning(
            "The video index at %s has a damaged %s pointer (%s); reading %s, the newest complete version, but "
            "the pointer could not be rewritten (%s): ask whoever can write there to delete %s.",
            path, CURRENT_FILE, problem, version, error, path / CURRENT_FILE,
        )  # fmt: skip
        return version
    logger.warning(
        "The video index at %s had a damaged %s pointer (%s); repaired it to name %s, the newest complete version.",
        path, CURRENT_FILE, problem, version,
    )  # fmt: skip
    return version


def _write_pointer(path: Path, version: str) -> None:
    """Makes `version` the committed one by replacing `CURRENT` (written beside it first, then renamed)."""
    pointer = path / (CURRENT_FILE + ".partial")
    with open(pointer, "w") as handle:
        handle.write(version)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(pointer, path / CURRENT_FILE)  # the commit
    _fsync_directory(path)


def has_index(path: str | os.PathLike) -> bool:
    """Whether `path` holds a committed index, or files of an older layout that `read_index` will reject."""
    path = Path(path)
    return (path / CURRENT_FILE).is_file() or (path / MANIFEST_FILE).is_file()


def commit_index(
    path: str | os.PathLike,
    tensors: dict[str, torch.Tensor],
    manifest: dict,
    shared: dict[str, torch.Tensor] | None = None,
) -> str:
    """Write a new version (tensors, then manifest with their checksum) and make it current by one rename.

    `tensors` have one row per video; `shared` ones (e.g. the sketch's basis) do not.

    The caller holds `index_lock(path)`. Returns the new version's folder name; older versions are deleted after the
    commit (a reader that opened one still holds its files).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    counts = {int(tensor.shape[0]) for tensor in tensors.values()}
    if len(counts) != 1:
        raise ValueError(f"The index tensors must have one row per video, got row counts {sorted(counts)}.")
    existing = [p.name for p in path.iterdir() if p.is_dir() and p.name.startswith(_VERSION_PREFIX)]
    numbers = [int(name[1:]) for name in existing if name[1:].isdigit()]
    version = f"{_VERSION_PREFIX}{max(numbers, default=0) + 1:06d}"
    staging = path / f".{version}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    shared = shared or {}
    everything = {name: tensor.contiguous() for name, tensor in {**tensors, **shared}.items()}
    record = {
        **manifest,
        "format_version": FORMAT_VERSION,
        "rows": counts.pop(),
        "tensors": sorted(tensors),
        "shared_tensors": sorted(shared),
    }
    try:
        _write_version(staging, everything, record)
        os.replace(staging, path / version)
        _write_pointer(path, version)
    except (OSError, SafetensorError) as error:
        # Nothing was committed: `CURRENT` still names the previous version, and the new files go.
        (path / (CURRENT_FILE + ".partial")).unlink(missing_ok=True)
        if _read_pointer(path)[0] != version:
            shutil.rmtree(path / version, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
        if is_out_of_space(error):
            needed = tensor_bytes(everything) + len(json.dumps(record, indent=1))
            raise IndexSpaceError(path, needed) from None
        raise
    for name in existing:
        shutil.rmtree(path / name, ignore_errors=True)
    for legacy in (INDEX_FILE, MANIFEST_FILE):  # the single-folder layout of format 1
        (path / legacy).unlink(missing_ok=True)
    return version


def _write_version(folder: Path, tensors: dict[str, torch.Tensor], record: dict) -> None:
    """The tensors, then the manifest with their checksum, both flushed to disk."""
    tensor_file = folder / INDEX_FILE
    save_tensors(tensors, tensor_file)
    record = {**record, "tensors_blake2b": content_hash(tensor_file)}
    (folder / MANIFEST_FILE).write_text(json.dumps(record, indent=1))
    for file in (tensor_file, folder / MANIFEST_FILE):
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())


# safetensors dtype names -> (numpy dtype to map the bytes with, torch dtype to view them as).
_MAPPED_DTYPES = {
    "F32": (np.float32, torch.float32),
    "F16": (np.float16, torch.float16),
    "BF16": (np.uint16, torch.bfloat16),  # numpy has no bfloat16: map the bits, view them in torch
    "I64": (np.int64, torch.int64),
    "I32": (np.int32, torch.int32),
}


def map_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, memory-mapped rather than read: pages load as they are used, so a large
    index costs little memory until searched. Copy-on-write: writing to a tensor never changes the file."""
    path = Path(path)
    with open(path, "rb") as file:
        (header_size,) = np.frombuffer(file.read(8), dtype="<u8")
        header = json.loads(file.read(int(header_size)))
    start = 8 + int(header_size)
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] not in _MAPPED_DTYPES:
            raise ValueError(f"{path}: tensor {name} has dtype {entry['dtype']}, which cannot be memory-mapped.")
        numpy_dtype, torch_dtype = _MAPPED_DTYPES[entry["dtype"]]
        begin, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        if end == begin:
            tensors[name] = torch.zeros(shape, dtype=torch_dtype)
            continue
        mapped = np.memmap(path, dtype=numpy_dtype, mode="c", offset=start + begin, shape=shape)
        tensors[name] = torch.from_numpy(mapped).view(torch_dtype)
    return tensors


def read_index(path: str | os.PathLike, mmap: bool = False) -> tuple[dict[str, torch.Tensor], dict, str]:
    """The committed tensors, manifest and version at `path`, verified; `IndexCorruptError` if anything is off.

    `mmap=True` maps the tensors from the file (`map_safetensors`) instead of reading them into memory.
    """
    path = Path(path)
    version = committed_version(path)
    if version is None:
        if (path / MANIFEST_FILE).is_file():
            raise IndexCorruptError(path, "it was written by an older version of this package (format 1)")
        raise FileNotFoundError(f"{path} holds no video index (no {CURRENT_FILE} file).")
    folder = path / version
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        raise IndexCorruptError(path, f"{CURRENT_FILE} names {version}, which has no {MANIFEST_FILE}") from None
    except ValueError as error:
        raise IndexCorruptError(path, f"{version}/{MANIFEST_FILE} is not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        found = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise IndexCorruptError(path, f"format {found}, expected {FORMAT_VERSION}")
    tensor_file = folder / INDEX_FILE
    if not tensor_file.is_file():
        raise IndexCorruptError(path, f"{version}/{INDEX_FILE} is missing")
    # The full checks (checksum, finite values) read every byte: seconds for a large index, on every search command.
    # They run once per state of the files; a record of the files' stat then vouches for them, as for indexed videos.
    stamp = _files_stamp(folder)
    trusted = _read_verified(folder) == stamp
    if not trusted and content_hash(tensor_file) != manifest.get("tensors_blake2b"):
        raise IndexCorruptError(path, f"{version}/{INDEX_FILE} does not match the checksum its manifest recorded")
    try:
        tensors = map_safetensors(tensor_file) if mmap else load_file(str(tensor_file))
    except (SafetensorError, OSError, ValueError, KeyError) as error:
        raise IndexCorruptError(path, f"{version}/{INDEX_FILE} cannot be read ({error})") from None
    rows = manifest.get("rows")
    videos = manifest.get("videos")
    names = manifest.get("tensors", TENSOR_NAMES)  # indexes written before the list was recorded hold these
    shared = manifest.get("shared_tensors", [])
    if (
        not isinstance(videos, list)
        or not isinstance(names, list | tuple)
        or not isinstance(shared, list)
        or set(tensors) != set(names) | set(shared)
    ):
        raise IndexCorruptError(path, "the manifest or the tensor file lacks required entries")
    counts = {name: int(tensors[name].shape[0]) for name in names}
    if len(videos) != rows or any(count != rows for count in counts.values()):
        raise IndexCorruptError(path, f"{len(videos)} videos listed, {rows} rows recorded, tensors hold {counts}")
    if not trusted:
        for name in tensors:
            if tensors[name].is_floating_point() and not all_finite(tensors[name]):
                raise IndexCorruptError(path, f"{name} holds values that are not finite (NaN or infinite)")
        _write_verified(folder, stamp)
    return tensors, manifest, version


def _files_stamp(folder: Path) -> dict:
    """Size, modification and change times and inode of a version's two files: any rewrite, copy or truncation of
    either moves one of them (the change time cannot be set back by any tool)."""
    stamp = {}
    for name in (INDEX_FILE, MANIFEST_FILE):
        status = (folder / name).stat()
        stamp[name] = [status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino]
    return stamp


def _read_verified(folder: Path) -> dict | None:
    try:
        return json.loads((folder / VERIFIED_FILE).read_text())
    except (OSError, ValueError):
        return None


def _write_verified(folder: Path, stamp: dict) -> None:
    """Record that the files as `stamp` describes them passed the full checks (best effort: a read-only index
    is simply verified in full again next time)."""
    try:
        partial = folder / (VERIFIED_FILE + ".partial")
        partial.write_text(json.dumps(stamp))
        os.replace(partial, folder / VERIFIED_FILE)
    except OSError:
        pass


def all_finite(tensor: torch.Tensor, rows_per_block: int = 4096) -> bool:
    """Whether every value is finite, checked in blocks of rows so a large index needs no full-size mask."""
    return all(bool(torch.isfinite(block).all()) for block in torch.split(tensor, rows_per_block))


def finite_rows(tensor: torch.Tensor, rows_per_block: int = 4096) -> torch.Tensor:
    """`[N]` booleans: whether every value of each row is finite, checked in blocks of rows like `all_finite`."""
    if len(tensor) == 0:
        return torch.zeros(0, dtype=torch.bool)
    return torch.cat([torch.isfinite(block).flatten(1).all(1) for block in torch.split(tensor, rows_per_block)])
