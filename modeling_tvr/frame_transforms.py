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


def resize_and_crop(
    frame: np.ndarray, shortest_edge: int | None, crop_height: int | None, crop_width: int | None, resample: int
) -> np.ndarray:
    """One `[H, W, 3]` uint8 frame resized (shortest side, `resample` PIL filter) then centre-cropped."""
    image = Image.fromarray(frame)
    if shortest_edge is not None:
        size = shortest_edge_size(image.width, image.height, shortest_edge)
        if size != image.size:
            image = image.resize(size, resample=resample)
    if crop_height is not None and crop_width is not None:
        if image.width < crop_width or image.height < crop_height:
            raise ValueError(
                f"a {image.width}x{image.height} frame is smaller than the {crop_width}x{crop_height} crop; "
                "enable resizing or lower crop_size"
            )
        # torchvision's CenterCrop rounds the offsets (Python's round), which differs from floor on odd margins.
        top = int(round((image.height - crop_height) / 2.0))
        left = int(round((image.width - crop_width) / 2.0))
        image = image.crop((left, top, left + crop_width, top + crop_height))
    return np.asarray(image)


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
