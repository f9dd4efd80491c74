"""Collects decoded clips into shards and commits each one as it fills."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import storage
from .decoding import DecodedClip
from .records import ClipRecord


class ShardWriter:
    """Buffers decoded clips (at most `shard_bytes` of frames, plus one clip) and commits them as one shard.

    Failures ride along in the shard's records.

    Args:
        folder (`Path`):
            The settings folder of the cache.
        shard_bytes (`int`):
            Bytes of frames that fill a shard.
        on_commit (`Callable[[list[ClipRecord]], None]`):
            Called with the shard's records after each commit.
    """

    def __init__(self, folder: Path, shard_bytes: int, on_commit: Callable[[list[ClipRecord]], None]):
        self.folder, self.shard_bytes, self.on_commit = folder, shard_bytes, on_commit
        self._start()

    def _start(self) -> None:
        self.name = storage.new_shard_name()
        self.frames: list[np.ndarray] = []
        self.records: list[ClipRecord] = []
        self.rows = 0
        self.bytes = 0

    def add(self, item: DecodedClip) -> None:
        """Adds one decoded clip (or its failure); commits the shard once it holds `shard_bytes` of frames."""
        if item.failure is not None:
            self.records.append(ClipRecord(item.clip, item.fingerprint, failure=item.failure))
            return
        count = len(item.frames)
        self.records.append(ClipRecord(item.clip, item.fingerprint, self.name, self.rows, count))
        self.frames.append(item.frames)
        self.rows += count
        self.bytes += item.frames.nbytes
        if self.bytes >= self.shard_bytes:
            self.commit()

    def commit(self) -> None:
        """Commits what is buffered (if anything) and starts a new shard."""
        if self.records:
            storage.commit_shard(self.folder, self.name, self.frames, self.records)
            self.on_commit(self.records)
        self._start()

    def close(self) -> None:
        self.commit()
