"""A frame cache: the sampled, resized and cropped uint8 frames of each clip, decoded once.

The frames are memory-mapped in every later epoch, keyed on each file's state and the video processor's frame settings.
The cache is an application of the core model code and never travels with a saved model.
"""

from .cache import DEFAULT_SHARD_BYTES, ClipNotCachedError, FrameCache
from .clips import Clip, as_clip
from .dataset import CachedFramesDataset, collate_frames
from .report import FillReport

__all__ = [
    "DEFAULT_SHARD_BYTES",
    "CachedFramesDataset",
    "Clip",
    "ClipNotCachedError",
    "FillReport",
    "FrameCache",
    "as_clip",
    "collate_frames",
]
