"""CLIP's frame preprocessing as the authors apply it: shortest-side bicubic resize, centre crop, rescale, normalise.

Geometry follows torchvision's PIL path (the authors' `Resize` / `CenterCrop`), arithmetic its `ToTensor` /
`Normalize`, without needing torchvision.
"""

import numpy as np
import torch
from PIL import Image

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def shortest_edge_size(width: int, height: int, shortest_edge: int) -> tuple[int, int]:
    """Return the size that a shortest-side resize to `shortest_edge` gives.

    Args:
        width (`int`):
            Width of the frame.
        height (`int`):
            Height of the frame.
        shortest_edge (`int`):
            Length the shorter side is resized to.

    Returns:
        `tuple[int, int]`: `(width, height)`, the longer side truncated as torchvision truncates it.
    """
    if width <= height:
        return shortest_edge, int(shortest_edge * height / width)
    return int(shortest_edge * width / height), shortest_edge


# PIL filters that `Image.resize` applies as two separable passes, horizontal then vertical, through a uint8 image (all
# but NEAREST): resizing one axis at a time gives the same pixels, so the crop can come between the passes and the
# vertical pass computes only the columns kept (a quarter less work on 4:3 landscape frames).
_SEPARABLE_FILTERS = (
    Image.Resampling.BOX,
    Image.Resampling.BILINEAR,
    Image.Resampling.HAMMING,
    Image.Resampling.BICUBIC,
    Image.Resampling.LANCZOS,
)


def centre_crop_box(width: int, height: int, crop_height: int, crop_width: int) -> tuple[int, int, int, int]:
    """Return the box of the centre crop of a `width` x `height` frame.

    Args:
        width (`int`):
            Width of the frame.
        height (`int`):
            Height of the frame.
        crop_height (`int`):
            Height of the crop.
        crop_width (`int`):
            Width of the crop.

    Returns:
        `tuple[int, int, int, int]`: `(left, top, right, bottom)`, the offsets rounded as torchvision's `CenterCrop`
        rounds them (Python's round, which differs from floor on odd margins).
    """
    top = int(round((height - crop_height) / 2.0))
    left = int(round((width - crop_width) / 2.0))
    return left, top, left + crop_width, top + crop_height


def _resize_between_passes(image: Image.Image, size: tuple[int, int], box: tuple[int, int, int, int], resample: int):
    """Compute `image.resize(size).crop(box)` with the crop's columns taken between PIL's two passes.

    The horizontal pass runs on whole rows, then the crop's columns are kept, then the vertical pass runs: the same
    passes and uint8 intermediate as PIL's one call, on fewer columns.
    """
    width, height = size
    if width != image.width:
        image = image.resize((width, image.height), resample=resample)
    image = image.crop((box[0], 0, box[2], image.height))
    if height != image.height:
        image = image.resize((image.width, height), resample=resample)
    return image.crop((0, box[1], image.width, box[3]))


def resize_and_crop(
    frame: np.ndarray, shortest_edge: int | None, crop_height: int | None, crop_width: int | None, resample: int
) -> np.ndarray:
    """Resize one frame by its shortest side, then centre-crop it.

    Args:
        frame (`np.ndarray`):
            One uint8 frame `[H, W, 3]`.
        shortest_edge (`int`, *optional*):
            Length the shorter side is resized to; no resize when `None`.
        crop_height (`int`, *optional*):
            Height of the centre crop; no crop when it or `crop_width` is `None`.
        crop_width (`int`, *optional*):
            Width of the centre crop.
        resample (`int`):
            The PIL filter of the resize.

    Returns:
        `np.ndarray`: The uint8 frame `[crop_height, crop_width, 3]` (or the resized size without a crop).

    Raises:
        ValueError: If the resized frame is smaller than the crop.
    """
    height, width = frame.shape[:2]
    size = (width, height) if shortest_edge is None else shortest_edge_size(width, height, shortest_edge)
    if crop_height is None or crop_width is None:
        image = Image.fromarray(frame)
        return np.asarray(image.resize(size, resample=resample) if size != image.size else image)
    if size[0] < crop_width or size[1] < crop_height:
        raise ValueError(
            f"a {size[0]}x{size[1]} frame is smaller than the {crop_width}x{crop_height} crop; "
            "enable resizing or lower crop_size"
        )
    left, top, right, bottom = box = centre_crop_box(size[0], size[1], crop_height, crop_width)
    if size == (width, height) and frame.dtype == np.uint8:  # already at size (the authors' re-encodes): crop alone
        return np.ascontiguousarray(frame[top:bottom, left:right])
    image = Image.fromarray(frame)
    if resample in _SEPARABLE_FILTERS and image.mode == "RGB":
        return np.asarray(_resize_between_passes(image, size, box, resample))
    return np.asarray(image.resize(size, resample=resample).crop(box))


def normalize_frames(
    frames: np.ndarray,
    rescale_factor: float | None,
    mean: tuple[float, ...] | None,
    std: tuple[float, ...] | None,
) -> torch.Tensor:
    """Rescale and normalise uint8 frames: `x * rescale_factor`, then `(x - mean) / std` per channel.

    Args:
        frames (`np.ndarray`):
            uint8 frames `[F, H, W, 3]`.
        rescale_factor (`float`, *optional*):
            Factor of the rescale (1/255 divides by 255, as `ToTensor` does); no rescale when `None`.
        mean (`tuple[float, ...]`, *optional*):
            Per-channel mean; no normalisation when it or `std` is `None`.
        std (`tuple[float, ...]`, *optional*):
            Per-channel standard deviation.

    Returns:
        `torch.Tensor`: float32 frames `[F, 3, H, W]`.
    """
    pixels = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    if rescale_factor is not None:
        # Division by 255 (as ToTensor does) rounds differently from multiplying by 1/255.
        pixels = pixels / 255.0 if rescale_factor == 1 / 255 else pixels * rescale_factor
    if mean is not None and std is not None:
        pixels = (pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    return pixels
