"""A torch `Dataset` over stored frames: uint8 batches in, normalisation on the model's device."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset, default_collate

from .cache import FrameCache
from .clips import as_clip


class _ReadBatch(list):
    """The items of one batch (views), carrying the batch they were read into, so `collate_frames` need not copy."""

    def __init__(self, items: list[dict[str, torch.Tensor]], batch: dict[str, torch.Tensor]):
        super().__init__(items)
        self.batch = batch


class CachedFramesDataset(Dataset):
    """A torch `Dataset` of the stored frames of `clips`, read from `cache` (nothing is decoded; fill it first).

    Item `i` is `{"video_frames": uint8 [max_frames, H, W, 3], "video_mask": long [max_frames]}` of `clips[i]`. On the
    device, `video_processor.normalize(batch["video_frames"], batch["video_mask"])` gives `pixel_values_videos`, the
    numbers `preprocess` gives, with a quarter of float32's bytes over the bus.

    A data loader asks for a whole batch at once (`__getitems__`): it is read straight into one array, and
    `collate_frames` hands that array on (the default collate works too, but stacking costs a second copy, and
    `torch.stack` of large uint8 tensors measures at a tenth of the read's speed).

    Args:
        cache (`FrameCache`):
            The filled frame cache.
        clips (`Sequence`):
            Paths or `(path, start_s, end_s)` segments.
    """

    def __init__(self, cache: FrameCache, clips: Sequence):
        self.cache, self.clips = cache, [as_clip(clip) for clip in clips]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        frames, mask = self.cache.frames(self.clips[position])
        return {"video_frames": frames, "video_mask": mask}

    def __getitems__(self, positions: Sequence[int]) -> _ReadBatch:
        frames, masks = self.cache.frames_batch([self.clips[position] for position in positions])
        items = [{"video_frames": f, "video_mask": m} for f, m in zip(frames, masks, strict=True)]
        return _ReadBatch(items, {"video_frames": frames, "video_mask": masks})


def collate_frames(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The data loader's `collate_fn` for `CachedFramesDataset`.

    Args:
        items (`list[dict[str, torch.Tensor]]`):
            The batch's items, as `CachedFramesDataset` gives them.

    Returns:
        `dict[str, torch.Tensor]`: The batch as read (no copy), or else the items stacked.
    """
    return items.batch if isinstance(items, _ReadBatch) else default_collate(items)
