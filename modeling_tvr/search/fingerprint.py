"""Fingerprints of video files, so that an index notices a changed file without re-reading an unchanged one."""

import hashlib
import os
import stat
from dataclasses import asdict, dataclass

# Read in blocks: a large video never has to fit in memory to be hashed.
_BLOCK_BYTES = 4 * 1024**2


def content_hash(path: str | os.PathLike) -> str:
    """BLAKE2b (128-bit) of the file's bytes, as hex."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as file:
        while block := file.read(_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class FileFingerprint:
    """Where a file is, and what it held when it was indexed.

    `ctime_ns` and `inode` (None in indexes written before they were recorded) catch a file replaced by another of
    the same size and modification time: copying or renaming over it gives a new inode, and writing into it moves
    the change time, which no tool can set back.
    """

    path: str
    size: int
    mtime_ns: int
    blake2b: str
    ctime_ns: int | None = None
    inode: int | None = None

    @classmethod
    def of(cls, path: str | os.PathLike) -> "FileFingerprint":
        """Fingerprint of the file at `path` as it is now (absolute path, size, modification time, content hash)."""
        path = os.path.abspath(os.fspath(path))
        status = os.stat(path)
        if not stat.S_ISREG(status.st_mode):
            # Checked before reading: hashing a FIFO or /dev/zero (through a symlink) would never end.
            raise OSError(f"{path} is not a regular file (a FIFO, device or folder), so it is not a video")
        return cls(
            path=path,
            size=status.st_size,
            mtime_ns=status.st_mtime_ns,
            blake2b=content_hash(path),
            ctime_ns=status.st_ctime_ns,
            inode=status.st_ino,
        )

    def is_current(self) -> bool:
        """
        Whether the file still holds the indexed content. When size, modification time, change time and inode are all
        unchanged it does (no read); otherwise the content hash decides, so a file that was only touched or copied
        back is not re-encoded, and one replaced with the same size and time is.
        """
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return False
        if not stat.S_ISREG(status.st_mode) or status.st_size != self.size:
            return False
        now = (status.st_mtime_ns, status.st_ctime_ns, status.st_ino)
        if now == (self.mtime_ns, self.ctime_ns, self.inode):
            return True
        return content_hash(self.path) == self.blake2b

    def to_dict(self) -> dict:
        return asdict(self)
