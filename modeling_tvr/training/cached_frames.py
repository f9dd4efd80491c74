"""train.py's side of the frame cache (`--frame_cache DIR`): fill it with every clip the run reads, apply
`--missing_videos` to clips that cannot be decoded, and read training pairs from it as uint8 frames that become pixel
values on the model's device.

The frames stored are exactly what the video processor's `processed_frames` gives, and both paths turn them into
`pixel_values_videos` with the one `DRLVideoProcessor.normalize`, so a cached run gives the numbers of an uncached one;
only a quarter of the bytes (uint8, not float32) travel to the device.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from transformers import BatchFeature

from ..frame_cache import Clip, FillReport, FrameCache, as_clip
from .data import DataError

__all__ = [
    "CachedPairs",
    "CachedTrainingPairs",
    "UndecodableVideosError",
    "fill_for_rows",
    "model_inputs",
    "row_clip",
    "without_undecodable",
]

logger = logging.getLogger("train")

# What the loaders of a cached run yield in place of `pixel_values_videos`: uint8 `[B, F, H, W, 3]`.
FRAMES_KEY = "video_frames"
# How many undecodable files the one-line error names.
_NAMED_FAILURES = 3


class UndecodableVideosError(DataError):
    """Clips of the run could not be decoded (recorded in the frame cache) and `--missing_videos` is not `skip`."""


def row_clip(row: Mapping[str, Any]) -> Clip:
    """The clip of a row of the shared schema: its video file, cut to (start, end) when the row has them."""
    return as_clip(row["video"] if row["start"] is None else (row["video"], row["start"], row["end"]))


@contextlib.contextmanager
def random_state_kept() -> Iterator[None]:
    """Leaves torch's CPU, numpy's and Python's global random state as they were: a fill that decodes draws a data
    loader seed from torch's, and a cold cache must not give another training run than a warm one."""
    states = torch.random.get_rng_state(), np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        torch.random.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])


def fill_for_rows(
    cache: FrameCache, row_lists: Sequence[Sequence[Mapping]], accelerator, num_workers: int
) -> FillReport:
    """Fills `cache` with every clip of `row_lists`: the main process decodes what is missing while the others wait,
    then each of them finds it stored (fills are safe to run at once, so a rank that still finds a clip missing, a
    file changed meanwhile, decodes it itself). Every process gets the same failures, so all drop the same rows."""
    clips = [row_clip(row) for rows in row_lists for row in rows]
    with accelerator.main_process_first(), random_state_kept():
        return cache.fill(clips, num_workers=num_workers, show_progress=accelerator.is_main_process)


def _failure_listing(failed: Mapping[Clip, str]) -> str:
    named = [f"{path} ({reason})" for (path, _, _), reason in list(failed.items())[:_NAMED_FAILURES]]
    more = f" and {len(failed) - _NAMED_FAILURES} more" if len(failed) > _NAMED_FAILURES else ""
    return "; ".join(named) + more


def without_undecodable(
    row_lists: Sequence[list], failed: Mapping[Clip, str], missing_videos: str | None, skip_allowed: bool = True
) -> list[list]:
    """`row_lists` without the rows of clips that could not be decoded, as `--missing_videos skip` asks.

    Raises:
        UndecodableVideosError: some clip failed and `missing_videos` is not `skip`: one line naming how many failed
            and the first files.
    """
    if not failed:
        return [list(rows) for rows in row_lists]
    if missing_videos != "skip":
        fix = "; pass --missing_videos skip to drop their rows" if skip_allowed else ""
        raise UndecodableVideosError(
            f"{len(failed)} video clip(s) could not be decoded (recorded in the frame cache, not tried again until "
            f"the file changes): {_failure_listing(failed)}{fix}"
        )
    kept = [[row for row in rows if row_clip(row) not in failed] for rows in row_lists]
    dropped = sum(len(rows) for rows in row_lists) - sum(len(rows) for rows in kept)
    logger.warning(
        "%d video clip(s) could not be decoded; skipping their %d caption row(s): %s",
        len(failed),
        dropped,
        _failure_listing(failed),
    )
    return kept


@dataclass
class CachedPairs:
    """The captions of a batch of pairs and their clips' frames, read at once (`CachedTrainingPairs.__getitems__`)."""

    captions: list[str]
    frames: torch.Tensor
    video_mask: torch.Tensor


class CachedTrainingPairs(Dataset):
    """(caption, clip) pairs of training rows, with the clip's uint8 frames and mask read from `cache` (nothing is
    decoded). A data loader asks for a whole batch at once (`__getitems__`), read straight into one array."""

    def __init__(self, rows: Sequence[Mapping], cache: FrameCache):
        self.captions = [row["caption"] for row in rows]
        self.clips = [row_clip(row) for row in rows]
        self.cache = cache

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, position: int) -> CachedPairs:
        return self.__getitems__([position])

    def __getitems__(self, positions: Sequence[int]) -> CachedPairs:
        frames, masks = self.cache.frames_batch([self.clips[position] for position in positions])
        return CachedPairs([self.captions[position] for position in positions], frames, masks)

    def collate(self, tokenize: Callable[[list[str]], Mapping]) -> Callable[[Any], BatchFeature]:
        """The loader's `collate_fn`: captions tokenized by `tokenize` (the processor's text path), frames as read."""

        def collate(batch: CachedPairs | list[CachedPairs]) -> BatchFeature:
            if not isinstance(batch, CachedPairs):  # item by item (a loader that does not use `__getitems__`)
                batch = CachedPairs(
                    [caption for pairs in batch for caption in pairs.captions],
                    torch.cat([pairs.frames for pairs in batch]),
                    torch.cat([pairs.video_mask for pairs in batch]),
                )
            text = tokenize(batch.captions)
            return BatchFeature({**text, FRAMES_KEY: batch.frames, "video_mask": batch.video_mask})

        return collate


def model_inputs(batch: Mapping[str, torch.Tensor], video_processor) -> Mapping[str, torch.Tensor]:
    """The model's inputs of a loader batch: uint8 frames (a cached run's, already on the device) become
    `pixel_values_videos` there, with the processor's own `normalize`; any other batch is returned as it is."""
    if FRAMES_KEY not in batch:
        return batch
    inputs = {key: value for key, value in batch.items() if key != FRAMES_KEY}
    inputs["pixel_values_videos"] = video_processor.normalize(batch[FRAMES_KEY], batch["video_mask"])
    return inputs
