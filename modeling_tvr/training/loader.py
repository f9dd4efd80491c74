"""The training batches: (caption, video) pairs in an order fixed by (seed, epoch), each process taking its share of
a batch, decoded in the loader's workers or read from a frame cache."""

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, Dataset, Sampler

from .. import DRLProcessor
from ..frame_cache import FrameCache
from .arguments import DataArguments, TrainArguments
from .cached_frames import CachedTrainingPairs

__all__ = ["CaptionedVideos", "EpochShuffle", "train_loader"]


class EpochShuffle(Sampler[int]):
    """A permutation fixed by (seed, epoch), so a resumed run sees exactly the batches it would have seen.

    The epoch is set with `use_epoch`, not `set_epoch`: Accelerate's loaders call `set_epoch` with their own
    iteration count, which restarts at 0 in a resumed run.

    Args:
        size (`int`): The number of training pairs.
        seed (`int`): The run's seed.
    """

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def use_epoch(self, epoch: int) -> None:
        """Makes the next iteration the order of `epoch`."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


class CaptionedVideos(Dataset):
    """(caption, video) pairs; videos are paths or (path, start, end) segments decoded in the loader workers.

    Args:
        rows (`Sequence[dict]`): Rows of the shared schema (`caption`, `video`, `start`, `end`).
    """

    def __init__(self, rows: Sequence[dict]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[str, Any]:
        row = self.rows[index]
        video = row["video"] if row["start"] is None else (row["video"], row["start"], row["end"])
        return row["caption"], video


def train_loader(
    processor: DRLProcessor,
    train_rows: Sequence[dict],
    accelerator: Accelerator,
    data_args: DataArguments,
    train_args: TrainArguments,
    frames: FrameCache | None = None,
) -> DataLoader:
    """Batches of the training pairs in an order fixed by (seed, epoch), each process taking its share of a batch.

    Args:
        processor (`DRLProcessor`): Makes the model's inputs of captions and videos.
        train_rows (`Sequence[dict]`): The training rows; incomplete batches are dropped.
        accelerator (`Accelerator`): The run's; its process count divides the global batch.
        data_args (`DataArguments`): `num_workers`.
        train_args (`TrainArguments`): `batch_size` (global) and `seed`.
        frames (`FrameCache`, *optional*):
            A filled frame cache; its batches then carry uint8 `video_frames` for `model_inputs` to normalise on the
            device, in place of `pixel_values_videos` made in the loader.
    """

    def collate(batch):
        captions, videos = zip(*batch, strict=True)
        return processor(text=list(captions), videos=list(videos))

    if frames is not None:
        pairs = CachedTrainingPairs(train_rows, frames)
        dataset, collate = pairs, pairs.collate(lambda captions: processor(text=captions))
    else:
        dataset = CaptionedVideos(train_rows)
    return DataLoader(
        dataset,
        batch_size=train_args.batch_size // accelerator.num_processes,
        sampler=EpochShuffle(len(train_rows), train_args.seed),
        drop_last=True,
        collate_fn=collate,
        num_workers=data_args.num_workers,
        persistent_workers=data_args.num_workers > 0,
    )
