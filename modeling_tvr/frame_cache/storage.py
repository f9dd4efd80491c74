"""How a frame cache lies on disk: shards committed by renames, a manifest rewritten atomically under a lock.

    DIR/
      <settings key>/            one folder per frame settings (16 hex digits of the BLAKE2b of settings.json)
        settings.json            the video processor's frame settings (`DRLVideoProcessor.frame_settings`)
        manifest.json            every record of the shards it lists, rewritten whole (temporary file + rename)
        shards/
          <name>.npy             uint8 [frames, height, width, 3]: the frames of the shard's clips, one after another
          <name>.json            the shard's records (clip, file fingerprint, offset, count, or failure): the commit
          <name>.*.partial       being written (or left by a killed process; removed once its process is gone)
        .lock                    held while the manifest is rewritten and leftovers are removed

A shard's `.npy` is renamed into place before its `.json`, and a reader only believes `.json` files, so a process
killed at any point leaves committed shards and at most leftovers (no record points at a missing or partial array).
Every writer names its shards uniquely (time, host, process, random), so processes filling one folder never write the
same file; only the manifest, a summary that readers complete from the shard records it does not list yet, needs the
lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
from filelock import FileLock

from ..modeling_drl import new_file_mode
from .records import ClipRecord

FORMAT_VERSION = 1
SETTINGS_FILE = "settings.json"
MANIFEST_FILE = "manifest.json"
SHARD_FOLDER = "shards"
LOCK_FILE = ".lock"
PARTIAL_SUFFIX = ".partial"
_UNSAFE = re.compile(r"[^A-Za-z0-9.]+")


def settings_folder(root: str | os.PathLike, settings: dict) -> Path:
    """The folder of `root` that holds frames made with `settings`, created with its `settings.json`."""
    text = json.dumps(settings, sort_keys=True)
    folder = Path(root).absolute() / hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
    (folder / SHARD_FOLDER).mkdir(parents=True, exist_ok=True)
    if not (folder / SETTINGS_FILE).is_file():
        write_json_atomically(folder / SETTINGS_FILE, settings)
    return folder


def write_json_atomically(target: Path, value: dict) -> None:
    """`target` holds all of `value` or what it held before, whenever the process dies (flushed, then renamed)."""
    partial = target.with_name(f"{target.name}.{_writer_tag()}{PARTIAL_SUFFIX}")
    with open(partial, "w") as handle:
        json.dump(value, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, target)


def write_array_atomically(target: Path, frames: list[np.ndarray]) -> None:
    """Write the frames, concatenated along the first axis, as the `.npy` `target`.

    The array is written through a memory map of a temporary file (no concatenated copy in memory), flushed, then
    renamed.
    """
    partial = target.with_name(f"{target.name}{PARTIAL_SUFFIX}")
    total = sum(len(block) for block in frames)
    array = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(total, *frames[0].shape[1:]))
    start = 0
    for block in frames:
        array[start : start + len(block)] = block
        start += len(block)
    array.flush()
    del array
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)


def _writer_tag() -> str:
    """`<pid>_<host>_<random>`: unique to this writer, and says which process on which host made a file."""
    return f"{os.getpid()}_{_UNSAFE.sub('-', socket.gethostname())}_{uuid.uuid4().hex[:8]}"


def new_shard_name() -> str:
    """A shard name no other writer uses; names sort in the order their shards were started."""
    return f"{time.time_ns():020d}_{_writer_tag()}"


def lock(folder: Path) -> FileLock:
    """The settings folder's lock (manifest rewrites, removal of leftovers)."""
    return FileLock(str(folder / LOCK_FILE), mode=new_file_mode())


def read_records(folder: Path) -> tuple[list[ClipRecord], set[str]]:
    """Every committed record, oldest shard first, and the names of the shards they come from."""
    records, shards = read_records_with_sources(folder)
    return [record for _, record in records], shards


def commit_shard(folder: Path, name: str, frames: list[np.ndarray], records: list[ClipRecord]) -> None:
    """Writes a shard's frames (if any) and then its records, the record file's rename being the commit."""
    shards = folder / SHARD_FOLDER
    if frames:
        write_array_atomically(shards / f"{name}.npy", frames)
    write_json_atomically(
        shards / f"{name}.json", {"format_version": FORMAT_VERSION, "records": [r.to_json() for r in records]}
    )


def write_manifest(
    folder: Path, select: Callable[[list[tuple[str, ClipRecord]]], list[tuple[str, ClipRecord]]]
) -> None:
    """Rewrite the manifest with the committed records `select` keeps, each with its shard.

    `select` may drop records of files that changed since, and repeats. What killed writers left behind is removed.
    The folder's lock is held, so two processes finishing at once write one after the other, each from every shard
    committed so far.
    """
    with lock(folder):
        records, shards = read_records_with_sources(folder)
        entries = [{**record.to_json(), "from": source} for source, record in select(records)]
        write_json_atomically(
            folder / MANIFEST_FILE, {"format_version": FORMAT_VERSION, "shards": sorted(shards), "records": entries}
        )
        remove_leftovers(folder)


def read_records_with_sources(folder: Path) -> tuple[list[tuple[str, ClipRecord]], set[str]]:
    """Return every committed record with the shard it was committed in, oldest shard first, and the shards' names.

    The records are the manifest's, then those of shards committed since the manifest was last written.
    """
    records, shards = [], set()
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        manifest = None
    if manifest is not None and manifest.get("format_version") == FORMAT_VERSION:
        shards = set(manifest["shards"])
        records += [(entry["from"], ClipRecord.from_json(entry)) for entry in manifest["records"]]
    for record_file in (folder / SHARD_FOLDER).glob("*.json"):
        if record_file.stem in shards:
            continue
        try:
            shard = json.loads(record_file.read_text())
        except FileNotFoundError:
            continue  # removed between listing and reading
        records += [(record_file.stem, ClipRecord.from_json(entry)) for entry in shard["records"]]
        shards.add(record_file.stem)
    records.sort(key=lambda item: item[0])  # stable: a shard's records keep their order
    return records, shards


def remove_leftovers(folder: Path) -> None:
    """Remove the temporary files, and arrays whose record file never came, of writers on this host that are gone.

    Such writers were killed mid-write; a live writer's files, or another host's, are left alone.
    """
    host = _UNSAFE.sub("-", socket.gethostname())
    for path in [*folder.iterdir(), *(folder / SHARD_FOLDER).iterdir()]:
        orphan = path.suffix == ".npy" and not path.with_suffix(".json").exists()
        if not (path.name.endswith(PARTIAL_SUFFIX) or orphan):
            continue
        match = re.search(r"_(\d+)_([A-Za-z0-9.-]+)_[0-9a-f]{8}", path.name)
        if match and match.group(2) == host and not _process_alive(int(match.group(1))):
            path.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True
