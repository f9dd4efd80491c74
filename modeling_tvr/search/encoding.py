"""Encoding video files into index features: decoded in DataLoader workers, sharded across processes, resumable.

Under `accelerate launch` (several processes, GPUs or nodes sharing the index folder) each process encodes its own
shard of the videos and writes its chunks (`chunks.py`); the processes then wait for each other and read every chunk
back, so each one returns the whole result. A restarted build skips the videos its chunks already hold. A video that
fails to decode becomes a `FailedVideo` (or, with `on_error="raise"`, stops the build), never a silent gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from accelerate import PartialState
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..video_decoding import VideoReadError
from .chunks import read_chunks, write_chunk
from .encoded_video import EncodedVideo, FailedVideo
from .features import PreparedSide, prepare_videos
from .fingerprint import FileFingerprint
from .signature import video_processor_of

ON_ERROR_CHOICES = ("skip", "raise")


@dataclass(frozen=True)
class EncodeOptions:
    """How videos are encoded into an index.

    Args:
        batch_size (`int`, *optional*, defaults to 16): videos per forward pass.
        num_workers (`int`, *optional*, defaults to 0): DataLoader workers decoding videos in parallel.
        save_every (`int`, *optional*, defaults to 64): write a chunk every this many batches (with an index folder).
        on_error (`str`, *optional*, defaults to `"skip"`): `"skip"` (report undecodable videos) or `"raise"`.
        storage_dtype (`torch.dtype`, *optional*, defaults to `torch.float32`): dtype of the stored frame vectors.
        show_progress (`bool`, *optional*, defaults to `True`): a tqdm bar on the local main process.
    """

    batch_size: int = 16
    num_workers: int = 0
    save_every: int = 64
    on_error: str = "skip"
    storage_dtype: torch.dtype = torch.float32
    show_progress: bool = True

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR_CHOICES:
            raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, got {self.on_error!r}")
        for name in ("batch_size", "save_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


class DecodedVideo(NamedTuple):
    """A video file read and preprocessed, not yet encoded."""

    fingerprint: FileFingerprint
    pixel_values: torch.Tensor
    video_mask: torch.Tensor


class DecodedBatch(NamedTuple):
    """The decoded videos of a batch, stacked, and the ones that failed to decode."""

    fingerprints: list[FileFingerprint]
    pixel_values: torch.Tensor | None
    video_mask: torch.Tensor | None
    failed: list[FailedVideo]


class VideoFiles(Dataset):
    """Decodes and preprocesses one video per item; a failure becomes a `FailedVideo` item instead of a crash.

    Args:
        paths (`list[str]`): the video files.
        video_processor (`DRLVideoProcessor`): what turns a file into `pixel_values_videos` and `video_mask`.
    """

    def __init__(self, paths: list[str], video_processor):
        self.paths, self.video_processor = list(paths), video_processor

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, position: int) -> DecodedVideo | FailedVideo:
        path = self.paths[position]
        try:
            fingerprint = FileFingerprint.of(path)
            batch = self.video_processor(path)
        except (VideoReadError, OSError) as error:
            return FailedVideo(path, f"{type(error).__name__}: {error}")
        return DecodedVideo(fingerprint, batch["pixel_values_videos"][0], batch["video_mask"][0])


def collate_decoded(items: list[DecodedVideo | FailedVideo]) -> DecodedBatch:
    """The DataLoader's `collate_fn` for `VideoFiles`."""
    decoded = [item for item in items if isinstance(item, DecodedVideo)]
    failed = [item for item in items if isinstance(item, FailedVideo)]
    if not decoded:
        return DecodedBatch([], None, None, failed)
    pixel_values = torch.stack([item.pixel_values for item in decoded])
    video_mask = torch.stack([item.video_mask for item in decoded])
    return DecodedBatch([item.fingerprint for item in decoded], pixel_values, video_mask, failed)


def process_state() -> PartialState:
    """The processes taking part in a build (one, unless launched with `accelerate launch` or torchrun)."""
    # Without an accelerator, Accelerate only sets up several processes (gloo) when asked for the CPU explicitly;
    # an Accelerator or PartialState the caller created first is reused as it is.
    return PartialState(cpu=not torch.accelerator.is_available())


def empty_features(model, processor, storage_dtype: torch.dtype) -> PreparedSide:
    """The features of no video, shaped as `model` and `processor` encode one: `[0, frames, width]` frame vectors.

    Args:
        model (`DRLModel`): the model.
        processor (`DRLProcessor`): its processor (the frame count is its video processor's `max_frames`).
        storage_dtype (`torch.dtype`): dtype of the frame vectors.
    """
    frames, width = video_processor_of(processor).max_frames, model.config.projection_dim
    return PreparedSide(
        torch.zeros(0, frames, width, dtype=storage_dtype), torch.zeros(0, frames), torch.zeros(0, width)
    )


def encode_videos(
    model,
    processor,
    paths: list[str],
    signature: dict,
    options: EncodeOptions,
    chunk_dir: Path | None = None,
) -> dict[str, EncodedVideo | FailedVideo]:
    """Encodes `paths`, sharded across the processes, resuming from (and writing) the chunks in `chunk_dir`.

    Every process returns the outcome of every path it could find: its own shard without `chunk_dir`, else what all
    processes' chunks hold (including those of earlier, interrupted builds).

    Args:
        model (`DRLModel`): the model that encodes.
        processor (`DRLProcessor`): its processor.
        paths (`list[str]`): absolute paths of the videos, without duplicates.
        signature (`dict`): `index_signature(model, processor)`, recorded in the chunks.
        options (`EncodeOptions`): batch size, workers, flush interval, error handling, dtype, progress bar.
        chunk_dir (`Path`, *optional*): the build's chunk folder; needed when several processes build.

    Raises:
        VideoReadError: a video failed to decode and `options.on_error` is `"raise"`.
        IndexMismatchError: `chunk_dir` holds chunks of another model.
    """
    state = process_state()
    if state.num_processes > 1 and chunk_dir is None:
        raise ValueError("Building an index in several processes needs a shared `path` to collect their work.")
    done = read_chunks(chunk_dir, signature) if chunk_dir is not None and chunk_dir.is_dir() else {}
    # Videos that failed before are tried again: the file may have been fixed since.
    todo = [path for path in paths if not _still_encoded(done.get(path))]
    shard = todo[state.process_index :: state.num_processes]
    encoded = _encode_shard(model, processor, shard, signature, options, chunk_dir)
    if chunk_dir is None:
        return encoded
    state.wait_for_everyone()  # every shard is on disk: read all of them back
    wanted = set(paths)
    encoded = {path: video for path, video in read_chunks(chunk_dir, signature).items() if path in wanted}
    state.wait_for_everyone()  # nobody reads chunks any more: the main process may now merge and delete them
    return encoded


def _still_encoded(video: EncodedVideo | FailedVideo | None) -> bool:
    return isinstance(video, EncodedVideo) and video.fingerprint.is_current()


def _encode_shard(
    model, processor, paths: list[str], signature: dict, options: EncodeOptions, chunk_dir: Path | None
) -> dict[str, EncodedVideo | FailedVideo]:
    """This process's share: returned by path without `chunk_dir`, else written to chunks (and `{}` returned)."""
    loader = DataLoader(
        VideoFiles(paths, video_processor_of(processor)),
        batch_size=options.batch_size,
        num_workers=options.num_workers,
        collate_fn=collate_decoded,
    )
    device = next(model.parameters()).device
    state = process_state()
    pending: list[EncodedVideo | FailedVideo] = []
    show = options.show_progress and state.is_local_main_process
    progress = tqdm(total=len(paths), desc="Indexing videos", unit="video", disable=not show)
    for batch_number, batch in enumerate(loader, start=1):
        for failure in batch.failed:
            if options.on_error == "raise":
                raise VideoReadError(failure.path, failure.reason)
            pending.append(failure)
        if batch.fingerprints:
            with torch.inference_mode():
                masks = batch.video_mask.to(device)
                embeds = model.get_video_features(batch.pixel_values.to(device), masks).video_embeds
                prepared = prepare_videos(model, embeds, masks)
            vectors = prepared.vectors.to("cpu", options.storage_dtype)
            weights, summary = prepared.weights.cpu().float(), prepared.summary.cpu().float()
            for row, fingerprint in enumerate(batch.fingerprints):
                pending.append(EncodedVideo(fingerprint, vectors[row], weights[row], summary[row]))
        progress.update(len(batch.fingerprints) + len(batch.failed))
        if chunk_dir is not None and batch_number % options.save_every == 0:
            write_chunk(pending, chunk_dir, state.process_index, signature)
            pending = []
    progress.close()
    if chunk_dir is not None:
        write_chunk(pending, chunk_dir, state.process_index, signature)
        return {}  # the caller reads every process's chunks back
    return {video.path: video for video in pending}
