"""`FrameCache`: the uint8 frames of each clip, decoded once and read back memory-mapped in every later epoch.

    cache = FrameCache("frames", processor)          # a DRLProcessor or its DRLVideoProcessor
    report = cache.fill(clips, num_workers=2)       # decodes what is missing or changed; FillReport
    frames, mask = cache.frames(clip)                # uint8 [max_frames, H, W, 3] (zero-padded), long [max_frames]
    pixels = processor.video_processor.normalize(frames.to(device), mask.to(device))

The frames are exactly those `DRLVideoProcessor.processed_frames` gives (sampled, resized, centre-cropped), stored per
processor frame settings (`frame_settings`) and per state of each file (size, times, inode, content hash: see
`FileFingerprint`), so a changed file or setting is decoded again and nothing stale is read. See `storage` for the
layout on disk and what a kill or a second filling process leaves there.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers.utils import logging

from ..video_decoding import VideoReadError
from . import storage
from .clips import Clip, as_clip
from .decoding import ClipDecoder, keep_items
from .records import ClipRecord, FileStates
from .report import FillReport
from .writer import ShardWriter

logger = logging.get_logger(__name__)

# Bytes of frames per shard: bounds a filling process's memory (one shard is buffered) and the files' count.
DEFAULT_SHARD_BYTES = 128 * 1024**2
# Shards kept mapped at once per process: each map holds a file descriptor.
_MAX_OPEN_SHARDS = 64


class ClipNotCachedError(KeyError):
    """The clip has no stored frames for its file as it is now: `FrameCache.fill` it first."""

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0])


class FrameCache:
    """Stored uint8 frames of clips for one video processor's frame settings, under `folder`.

    Args:
        folder (`str` or `os.PathLike`):
            Where the cache lives; frames of other settings live beside these in their own sub-folder.
        video_processor (`DRLVideoProcessor` or `DRLProcessor`):
            The video processor (a `DRLProcessor`'s is used); it must centre-crop, so that every clip's frames have
            one shape.
        shard_bytes (`int`, *optional*, defaults to `DEFAULT_SHARD_BYTES`):
            Frames per shard file, in bytes.

    Raises:
        ValueError: If the video processor does not centre-crop.
    """

    def __init__(self, folder: str | os.PathLike, video_processor, shard_bytes: int = DEFAULT_SHARD_BYTES):
        video_processor = getattr(video_processor, "video_processor", None) or video_processor
        if not video_processor.do_center_crop:
            raise ValueError("A frame cache needs a video processor that centre-crops (do_center_crop=True).")
        self.video_processor = video_processor
        self.settings = video_processor.frame_settings()
        self.path: Path = storage.settings_folder(folder, self.settings)
        self.max_frames = int(video_processor.max_frames)
        self.frame_shape = (video_processor.crop_size["height"], video_processor.crop_size["width"], 3)
        self.shard_bytes = int(shard_bytes)
        self._records: dict[Clip, list[ClipRecord]] | None = None
        self._resolved: dict[Clip, ClipRecord | None] = {}
        self._states = FileStates()
        self._maps: OrderedDict[str, np.ndarray] = OrderedDict()

    def __getstate__(self) -> dict:
        # Data-loader workers get their own maps (open lazily); a memory map does not pickle.
        return {**self.__dict__, "_maps": OrderedDict()}

    # Looking clips up.

    def refresh(self) -> None:
        """Forget what was read and checked.

        Shards committed since by other processes, and files changed since, are seen on the next lookup.
        """
        self._records, self._resolved = None, {}
        self._states.forget()

    def _all_records(self) -> dict[Clip, list[ClipRecord]]:
        if self._records is None:
            records, _ = storage.read_records(self.path)
            self._records = {}
            for record in records:
                self._records.setdefault(record.clip, []).append(record)
        return self._records

    def lookup(self, clip) -> ClipRecord | None:
        """Return the record that holds for `clip`'s file as it is now: stored frames, or else a failure.

        Each clip is checked once per instance (`refresh` to check again).

        Args:
            clip (`str`, `os.PathLike` or `tuple`):
                A path or a `(path, start_s, end_s)` segment.

        Returns:
            `ClipRecord` or `None`: The record, or `None` when the clip has to be decoded.
        """
        clip = as_clip(clip)
        if clip not in self._resolved:
            candidates = self._all_records().get(clip, [])[::-1]  # newest first
            current = [record for record in candidates if self._states.is_current(record)]
            stored = [record for record in current if record.failure is None]
            self._resolved[clip] = (stored or current or [None])[0]
        return self._resolved[clip]

    def __contains__(self, clip) -> bool:
        """Whether frames of `clip`'s file as it is now are stored."""
        record = self.lookup(clip)
        return record is not None and record.failure is None

    def failure(self, clip) -> str | None:
        """Why `clip` could not be decoded, if that was recorded for its file as it is now."""
        record = self.lookup(clip)
        return None if record is None else record.failure

    # Filling.

    def fill(
        self, clips: Iterable, num_workers: int = 2, show_progress: bool = True, desc: str = "Caching frames"
    ) -> FillReport:
        """Decode and store every clip of `clips` not stored yet for its file as it is now.

        Clips that failed on an earlier call, on a file unchanged since, are not tried again. Shards are committed as
        they fill, so a killed call loses at most one shard's work; processes may fill one folder at once.

        Args:
            clips (`Iterable`):
                The clips to have: paths or `(path, start_s, end_s)` segments.
            num_workers (`int`, *optional*, defaults to `2`):
                Data-loader worker processes decoding in parallel (0: decode in this process).
            show_progress (`bool`, *optional*, defaults to `True`):
                Whether to show a tqdm bar over the clips to decode.
            desc (`str`, *optional*, defaults to `"Caching frames"`):
                Label of the progress bar.

        Returns:
            `FillReport`: Clips decoded by this call, already stored, and failed with reasons.
        """
        clips = list(dict.fromkeys(as_clip(clip) for clip in clips))
        self.refresh()  # see what other processes committed, and files as they are now
        report, todo = FillReport(), []
        for clip in clips:
            record = self.lookup(clip)
            if record is None:
                todo.append(clip)
            elif record.failure is not None:
                report.failed[clip] = record.failure
            else:
                report.reused += 1
        if todo:
            self._decode(todo, report, num_workers, show_progress, desc)
        storage.write_manifest(self.path, self._current_records)
        return report

    def _decode(self, todo: list[Clip], report: FillReport, num_workers: int, show_progress: bool, desc: str) -> None:
        loader = DataLoader(
            ClipDecoder(todo, self.video_processor), batch_size=None, num_workers=num_workers, collate_fn=keep_items
        )
        writer = ShardWriter(self.path, self.shard_bytes, on_commit=self._committed)
        new_failures = []
        with tqdm(total=len(todo), desc=desc, unit="clip", disable=not show_progress) as progress:
            for item in loader:
                writer.add(item)
                if item.failure is None:
                    report.filled += 1
                else:
                    report.failed[item.clip] = item.failure
                    new_failures.append(item.clip)
                progress.update(1)
            writer.close()
        if new_failures:  # once, when they fail: an unchanged file is not decoded (nor reported) again
            logger.warning(
                "%d clip(s) could not be decoded (recorded in the frame cache), e.g. %s",
                len(new_failures),
                "; ".join(f"{clip[0]}: {report.failed[clip]}" for clip in new_failures[:3]),
            )

    def _committed(self, records: list[ClipRecord]) -> None:
        """A shard of this process was committed: its clips resolve to it from now on."""
        for record in records:
            self._all_records().setdefault(record.clip, []).append(record)
            self._resolved[record.clip] = record

    def _current_records(self, records: list[tuple[str, ClipRecord]]) -> list[tuple[str, ClipRecord]]:
        """Select what the manifest keeps: per clip and file state, the newest record of each kind.

        Only files that still hold that state keep records: records of changed files, and repeats left by two
        processes filling at once, go.
        """
        seen, kept = set(), []
        for source, record in reversed(records):
            key = (record.clip, record.fingerprint, record.failure is None)
            if key not in seen and self._states.is_current(record):
                seen.add(key)
                kept.append((source, record))
        return kept[::-1]

    # Reading.

    def _stored(self, clip) -> ClipRecord:
        record = self.lookup(clip)
        if record is None:
            raise ClipNotCachedError(f"{as_clip(clip)} has no stored frames for its file as it is now; fill it first.")
        if record.failure is not None:
            raise VideoReadError(record.clip[0], record.failure)
        return record

    def _shard(self, name: str) -> np.ndarray:
        array = self._maps.pop(name, None)
        if array is None:
            array = np.load(self.path / storage.SHARD_FOLDER / f"{name}.npy", mmap_mode="r")
            if array.dtype != np.uint8 or array.shape[1:] != self.frame_shape:
                raise ValueError(
                    f"Frame cache shard {name} holds {array.dtype} {array.shape}, not frames of this cache."
                )
            if len(self._maps) >= _MAX_OPEN_SHARDS:
                self._maps.popitem(last=False)
        self._maps[name] = array  # most recently used last
        return array

    def frames(self, clip) -> tuple[torch.Tensor, torch.Tensor]:
        """Read the stored frames of `clip` from the memory-mapped shard (nothing is decoded).

        Args:
            clip (`str`, `os.PathLike` or `tuple`):
                A path or a `(path, start_s, end_s)` segment.

        Returns:
            `tuple[torch.Tensor, torch.Tensor]`: uint8 frames `[max_frames, H, W, 3]` (zero frames after the clip's
            own) and the long `video_mask` `[max_frames]`; `video_processor.normalize(frames, mask)` gives
            `preprocess`'s `pixel_values_videos` for the clip.

        Raises:
            ClipNotCachedError: If the clip is not stored for its file as it is now (`fill` first).
            VideoReadError: If the clip could not be decoded (recorded by `fill`).
        """
        frames, masks = self.frames_batch([clip])
        return frames[0], masks[0]

    def frames_batch(self, clips: Sequence) -> tuple[torch.Tensor, torch.Tensor]:
        """Read the stored frames of several clips at once, as `frames` does for one.

        Args:
            clips (`Sequence`):
                Paths or `(path, start_s, end_s)` segments.

        Returns:
            `tuple[torch.Tensor, torch.Tensor]`: uint8 frames `[B, max_frames, H, W, 3]` and the long `video_mask`
            `[B, max_frames]`.

        Raises:
            ClipNotCachedError: If a clip is not stored for its file as it is now (`fill` first).
            VideoReadError: If a clip could not be decoded (recorded by `fill`).
        """
        frames = np.zeros((len(clips), self.max_frames, *self.frame_shape), dtype=np.uint8)
        masks = torch.zeros((len(clips), self.max_frames), dtype=torch.long)
        for position, clip in enumerate(clips):
            record = self._stored(clip)
            frames[position, : record.count] = self._shard(record.shard)[record.offset : record.offset + record.count]
            masks[position, : record.count] = 1
        return torch.from_numpy(frames), masks
