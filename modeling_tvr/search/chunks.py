"""The chunk files of a build in progress (`<index>/chunks/`): what each process has encoded so far.

A restarted build skips what the chunks hold, and after a build in several processes the main process reads every
process's chunks back to merge them. A chunk is one safetensors file per flush and process rank, holding the features
of its encoded videos and, in its metadata, their fingerprints, the videos that failed and the model signature.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from .encoded_video import EncodedVideo, FailedVideo, stack_features
from .fingerprint import FileFingerprint
from .signature import IndexMismatchError
from .storage import IndexSpaceError, is_out_of_space, save_tensors, tensor_bytes

CHUNK_DIR = "chunks"


def write_chunk(videos: Sequence[EncodedVideo | FailedVideo], chunk_dir: Path, rank: int, signature: dict) -> None:
    """Writes `videos` as the next chunk of process `rank` (nothing when there are none).

    Args:
        videos (`Sequence[EncodedVideo | FailedVideo]`): what the process encoded since its last chunk.
        chunk_dir (`Path`): the build's chunk folder (created if missing).
        rank (`int`): the process's index among those building.
        signature (`dict`): `index_signature` of the model and processor that encoded them.
    """
    if not videos:
        return
    chunk_dir.mkdir(parents=True, exist_ok=True)
    number = len(list(chunk_dir.glob(f"rank{rank:05d}-*.safetensors")))
    encoded = [video for video in videos if isinstance(video, EncodedVideo)]
    metadata = {
        "model": signature,
        "videos": [video.fingerprint.to_dict() for video in encoded],
        "failed": {video.path: video.reason for video in videos if isinstance(video, FailedVideo)},
    }
    if encoded:
        features = stack_features(encoded)
        tensors = {"vectors": features.vectors, "weights": features.weights, "summary": features.summary}
    else:
        tensors = {"vectors": torch.zeros(0), "weights": torch.zeros(0), "summary": torch.zeros(0)}
    write_atomically(tensors, metadata, chunk_dir / f"rank{rank:05d}-{number:06d}.safetensors")


def read_chunks(chunk_dir: Path, signature: dict) -> dict[str, EncodedVideo | FailedVideo]:
    """Every video the chunks in `chunk_dir` hold, by path (a later chunk's outcome replaces an earlier one's).

    Args:
        chunk_dir (`Path`): the build's chunk folder.
        signature (`dict`): the `index_signature` the chunks must have been written with.

    Raises:
        IndexMismatchError: a chunk was written by another model or video processor.
    """
    videos: dict[str, EncodedVideo | FailedVideo] = {}
    for chunk in sorted(chunk_dir.glob("*.safetensors")):
        with safe_open(chunk, framework="pt") as file:
            metadata = json.loads(file.metadata()["json"])
        if metadata["model"] != signature:
            raise IndexMismatchError(
                f"{chunk} was written by another model than the one given; delete {chunk_dir} to start over."
            )
        tensors = load_file(chunk)
        for row, entry in enumerate(metadata["videos"]):
            fingerprint = FileFingerprint(**entry)
            videos[fingerprint.path] = EncodedVideo(
                fingerprint, tensors["vectors"][row], tensors["weights"][row], tensors["summary"][row]
            )
        for path, reason in metadata["failed"].items():
            videos[path] = FailedVideo(path, reason)
    return videos


def remove_chunks(index_dir: Path) -> None:
    """Deletes the chunk folder of the index at `index_dir`, once its videos are committed."""
    chunk_dir = index_dir / CHUNK_DIR
    if chunk_dir.is_dir():
        for chunk in chunk_dir.glob("*.safetensors"):
            chunk.unlink()
        chunk_dir.rmdir()


def write_atomically(tensors: dict[str, torch.Tensor], metadata: dict, target: Path) -> None:
    """Writes a safetensors file with `metadata` (as JSON) so that a killed process leaves at most a stray temporary
    file, never a truncated chunk.

    Args:
        tensors (`dict[str, torch.Tensor]`): the file's tensors.
        metadata (`dict`): stored under the `json` metadata key.
        target (`Path`): the file to write.

    Raises:
        IndexSpaceError: the disk is full; nothing is left at `target`.
    """
    partial = target.with_name(target.name + ".partial")
    try:
        save_tensors({k: v.contiguous() for k, v in tensors.items()}, partial, metadata={"json": json.dumps(metadata)})
        os.replace(partial, target)
    except (OSError, SafetensorError) as error:
        partial.unlink(missing_ok=True)
        if is_out_of_space(error):
            raise IndexSpaceError(target.parent, tensor_bytes(tensors)) from None
        raise
