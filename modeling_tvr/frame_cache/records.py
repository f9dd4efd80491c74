"""What the cache knows about one clip, and whether the file it comes from is still in the state it had.

A record says where the clip's frames are stored, or why it could not be decoded, and from which state of its file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..search.fingerprint import FileFingerprint
from .clips import Clip


@dataclass(frozen=True)
class ClipRecord:
    """One decoding of a clip, as committed in a shard.

    Args:
        clip (`Clip`):
            The clip.
        fingerprint (`FileFingerprint`, *optional*):
            The file as it was just before decoding; `None` when the file could not even be read (missing, or not a
            regular file).
        shard (`str`, *optional*):
            The shard holding the frames, when the clip decoded.
        offset (`int`, *optional*, defaults to `0`):
            First row of the frames in the shard's array.
        count (`int`, *optional*, defaults to `0`):
            Number of frames (rows `offset:offset + count`).
        failure (`str`, *optional*):
            Why the clip could not be decoded, when it could not.
    """

    clip: Clip
    fingerprint: FileFingerprint | None
    shard: str | None = None
    offset: int = 0
    count: int = 0
    failure: str | None = None

    def to_json(self) -> dict:
        entry = {
            "clip": list(self.clip),
            "fingerprint": None if self.fingerprint is None else self.fingerprint.to_dict(),
        }
        if self.failure is not None:
            entry["failure"] = self.failure
        else:
            entry.update(shard=self.shard, offset=self.offset, count=self.count)
        return entry

    @classmethod
    def from_json(cls, entry: dict) -> ClipRecord:
        path, start, end = entry["clip"]
        fingerprint = entry.get("fingerprint")
        return cls(
            clip=(path, start, end),
            fingerprint=None if fingerprint is None else FileFingerprint(**fingerprint),
            shard=entry.get("shard"),
            offset=int(entry.get("offset", 0)),
            count=int(entry.get("count", 0)),
            failure=entry.get("failure"),
        )


class FileStates:
    """Answers "does the file still hold what this record saw?", each distinct question once per instance.

    A collection's many clips of one file (ActivityNet's segments) cost one `stat`, and a changed file one hash.
    """

    def __init__(self):
        self._verdicts: dict[tuple[str, FileFingerprint | None], bool] = {}

    def is_current(self, record: ClipRecord) -> bool:
        key = (record.clip[0], record.fingerprint)
        if key not in self._verdicts:
            if record.fingerprint is None:
                # Recorded as unreadable (missing, a FIFO): still so while no regular file is there.
                self._verdicts[key] = not os.path.isfile(record.clip[0])
            else:
                self._verdicts[key] = record.fingerprint.is_current()
        return self._verdicts[key]

    def forget(self) -> None:
        """Drop the answers (files may have changed since)."""
        self._verdicts.clear()
