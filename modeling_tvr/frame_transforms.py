"""CLIP's frame preprocessing as the authors apply it: bicubic resize of the shortest side, centre crop, rescale,
normalise. Geometry follows torchvision's PIL path (the authors' `Resize` / `CenterCrop`), arithmetic its
`ToTensor` / `Normalize`, without needing torchvision."""

import numpy as np
import torch
from PIL import Image

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def shortest_edge_size(width: int, height: int, shortest_edge: int) -> tuple[int, int]:
    """`(width, height)` with the shorter side equal to `shortest_edge` and the longer one truncated as torchvision."""
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
    """`(left, top, right, bottom)` of the centre crop; offsets rounded as torchvision's `CenterCrop` (Python's round,
    which differs from floor on odd margins)."""
    top = int(round((height - crop_height) / 2.0))
    left = int(round((width - crop_width) / 2.0))
    return left, top, left + crop_width, top + crop_height


def _resize_between_passes(image: Image.Image, size: tuple[int, int], box: tuple[int, int, int, int], resample: int):
    """`image.resize(size).crop(box)`, the horizontal pass on whole rows, then the crop's columns, then the vertical
    pass: the same passes and uint8 intermediate as PIL's one call, on fewer columns."""
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
    """One `[H, W, 3]` uint8 frame resized (shortest side, `resample` PIL filter) then centre-cropped."""
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
    """`[F, H, W, 3]` uint8 to `[F, 3, H, W]` float32: `x * rescale_factor`, then `(x - mean) / std` per channel."""
    pixels = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    if rescale_factor is not None:
        # Division by 255 (as ToTensor does) rounds differently from multiplying by 1/255.
        pixels = pixels / 255.0 if rescale_factor == 1 / 255 else pixels * rescale_factor
    if mean is not None and std is not None:
        pixels = (pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    return pixels
