"""Decoding clips for the cache inside data-loader workers: one clip per item, a failure an item rather than a crash."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch.utils.data import Dataset

from ..search.fingerprint import FileFingerprint
from ..video_decoding import VideoReadError
from .clips import Clip, processor_input


@dataclass
class DecodedClip:
    """A clip's uint8 frames `[F, H, W, 3]`, or why there are none.

    `fingerprint` is its file just before decoding, so a file rewritten while it was decoded does not match it, and is
    decoded again next time.
    """

    clip: Clip
    fingerprint: FileFingerprint | None
    frames: np.ndarray | None
    failure: str | None


class ClipDecoder(Dataset):
    """`processor.processed_frames` of each clip, with the file's fingerprint taken first."""

    def __init__(self, clips: list[Clip], video_processor):
        self.clips, self.video_processor = clips, video_processor

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, position: int) -> DecodedClip:
        clip = self.clips[position]
        try:
            fingerprint = FileFingerprint.of(clip[0])
        except OSError as error:  # missing, unreadable, or not a regular file
            return DecodedClip(clip, None, None, f"{type(error).__name__}: {error}")
        try:
            frames = self.video_processor.processed_frames(processor_input(clip))
        except (VideoReadError, ValueError, OSError) as error:
            return DecodedClip(clip, fingerprint, None, f"{type(error).__name__}: {error}")
        return DecodedClip(clip, fingerprint, np.ascontiguousarray(frames, dtype=np.uint8), None)


def keep_items(item: DecodedClip) -> DecodedClip:
    """The data loader's collate function: items pass unchanged (no batching, no conversion to tensors)."""
    return item
