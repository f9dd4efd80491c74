"""A torch `Dataset` over stored frames: uint8 batches in, normalisation on the model's device."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from .cache import FrameCache
from .clips import as_clip


class CachedFramesDataset(Dataset):
    """
    Item `i`: `{"video_frames": uint8 [max_frames, H, W, 3], "video_mask": long [max_frames]}` of `clips[i]`, read
    from `cache` (nothing is decoded; fill it first). The default collate stacks them; on the device,
    `video_processor.normalize(batch["video_frames"], batch["video_mask"])` gives `pixel_values_videos`, the numbers
    `preprocess` gives, with a quarter of float32's bytes over the bus.
    """

    def __init__(self, cache: FrameCache, clips: Sequence):
        self.cache, self.clips = cache, [as_clip(clip) for clip in clips]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        frames, mask = self.cache.frames(self.clips[position])
        return {"video_frames": frames, "video_mask": mask}
