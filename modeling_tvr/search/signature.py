"""What identifies the model and video processor that encoded an index, so that it is never searched with others."""

from __future__ import annotations

import hashlib
import json

import torch

from ..video_processing_drl import FRAME_SETTINGS

# The video processor settings that change what a video is encoded to: an index built with others cannot take new
# videos (another frame count) or mixes two samplings.
# `max_pixels` only decides which files are refused, not what an indexed video is encoded to.
VIDEO_SETTINGS = (
    *(name for name in FRAME_SETTINGS if name != "max_pixels"),
    *("do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std"),
)


class IndexMismatchError(ValueError):
    """An index (or a partial build) was made with another model than the one given."""


def model_signature(model) -> dict:
    """What must match between the model that built an index and the one that searches it.

    The interaction, the feature width, and a digest of every weight. The weights are hashed as fp16 values, so the
    same checkpoint loaded in fp32 or fp16 has one signature, while any change that survives fp16 rounding gives
    another.

    Args:
        model (`DRLModel`): the model.
    """
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        values = tensor.detach()
        values = values.to(torch.float16) if values.is_floating_point() else values
        digest.update(values.cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return {
        "interaction": model.config.interaction,
        "projection_dim": int(model.config.projection_dim),
        "weights_digest": digest.hexdigest(),
    }


def index_signature(model, processor) -> dict:
    """`model_signature` plus the video processor's sampling and preprocessing settings.

    Args:
        model (`DRLModel`): the model.
        processor (`DRLProcessor` or `DRLVideoProcessor`): its processor, or the video processor alone.
    """
    settings = video_processor_of(processor).to_dict()
    video = json.loads(json.dumps({key: settings.get(key) for key in VIDEO_SETTINGS}))  # as the manifest stores it
    return {**model_signature(model), "video_processor": video}


def check_signature(recorded: dict, model, processor=None) -> None:
    """Raises `IndexMismatchError` unless `model` (and `processor`, if given) are the ones `recorded` describes.

    Args:
        recorded (`dict`): the `index_signature` an index or chunk was written with.
        model (`DRLModel`): the model about to encode or search with it.
        processor (`DRLProcessor`, *optional*): its processor; without it only the model is compared.
    """
    signature = index_signature(model, processor) if processor is not None else model_signature(model)
    if any(recorded.get(key) != value for key, value in signature.items()):
        raise IndexMismatchError(
            f"This index was built with another model or video processor ({recorded}) than the one given "
            f"({signature}); rebuild it with the model you search with (delete the index folder or pass a new path)."
        )


def video_processor_of(processor):
    """The video processor of a `DRLProcessor`, or `processor` itself when it is one."""
    return getattr(processor, "video_processor", None) or processor
