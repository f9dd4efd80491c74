"""Video processor for DRL: decodes with PyAV, samples frames as the authors do, applies CLIP's preprocessing.

It needs neither torchvision nor torchcodec (transformers' `BaseVideoProcessor` needs both to resize and decode),
so it builds on `VideoProcessorMixin` and does its own decoding (`video_decoding.py`) and transforms
(`frame_transforms.py`).
"""

import functools
import json
import os
from collections.abc import Sequence

import numpy as np
import torch
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import VideosKwargs
from transformers.video_processing_utils import VideoProcessorMixin

from .frame_sampling import SLICE_UNIFORM, check_slice_framepos, thin_positions
from .frame_transforms import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, resize_and_crop
from .video_decoding import DEFAULT_MAX_PIXELS, VideoReadError, check_decode_strategy, read_video_frames

# PIL's BICUBIC filter id, the authors' resize filter.
BICUBIC = 3
# Version of the rules that turn a file into uint8 frames (timestamps, sampling, decoder-side reduction, resize, crop).
# Stored frames (a frame cache) are keyed on it: bump it whenever a change to video_decoding, frame_sampling or the
# geometry of frame_transforms can change the pixels a clip gives, so that nothing stored by the old rules is read.
FRAME_RULES_VERSION = 1
# The processor settings that change the uint8 frames of a clip (rescale and normalisation come after them).
# `decode_strategy` is not one: seeking lands on the same frames as decoding through (video_decoding checks it).
# `max_pixels` changes which files are refused, so a recorded failure depends on it.
FRAME_SETTINGS = (
    "max_frames",
    "video_framerate",
    "slice_framepos",
    "do_resize",
    "size",
    "resample",
    "do_center_crop",
    "crop_size",
    "max_pixels",
)


class DRLVideosKwargs(VideosKwargs, total=False):
    """Keyword arguments a call may override, beyond transformers' usual video ones."""

    max_frames: int
    video_framerate: int | float
    slice_framepos: int
    decode_strategy: str
    max_pixels: int


@functools.lru_cache(maxsize=32)
def _normalization_table(
    device: str, rescale_factor: float | None, mean: tuple[float, ...] | None, std: tuple[float, ...] | None
) -> torch.Tensor:
    """Return the `[3 * 256]` float32 table whose entry `256 * c + v` is what channel `c`'s uint8 value `v` becomes.

    Built on the CPU with the arithmetic of torchvision's `ToTensor` + `Normalize` (division by 255, which rounds
    differently from multiplying by 1/255), then only looked up, so every device gives the CPU's numbers bit for bit (a
    GPU would turn division by a scalar into multiplication by its reciprocal).
    """
    values = torch.arange(256, dtype=torch.float32).view(256, 1, 1).repeat(1, 3, 1).view(256, 3, 1, 1)
    return _normalize_arithmetic(values, rescale_factor, mean, std).view(256, 3).T.reshape(-1).to(device)


def _normalize_arithmetic(
    pixels: torch.Tensor, rescale_factor: float | None, mean: tuple[float, ...] | None, std: tuple[float, ...] | None
) -> torch.Tensor:
    """Rescale and normalise float32 `[..., 3, H, W]` on the CPU, in place.

    `x / 255` (or `x * rescale_factor`), then `(x - mean) / std`.
    """
    if rescale_factor is not None:
        # Division by 255 (as ToTensor does) rounds differently from multiplying by 1/255.
        pixels = pixels.div_(255.0) if rescale_factor == 1 / 255 else pixels.mul_(rescale_factor)
    if mean is not None and std is not None:
        pixels.sub_(torch.tensor(mean).view(3, 1, 1)).div_(torch.tensor(std).view(3, 1, 1))
    return pixels


def _is_segment(video) -> bool:
    return (
        isinstance(video, tuple)
        and len(video) == 3
        and isinstance(video[0], (str, os.PathLike))
        and all(isinstance(t, (int, float)) or t is None for t in video[1:])
    )


def _is_single_video(videos) -> bool:
    if isinstance(videos, (str, os.PathLike)) or _is_segment(videos):
        return True
    return isinstance(videos, (np.ndarray, torch.Tensor)) and videos.ndim == 4


class DRLVideoProcessor(VideoProcessorMixin):
    """Video processor of DRL: decodes and samples videos, then applies CLIP's preprocessing.

    It turns videos into `pixel_values_videos` `[batch, max_frames, 3, crop_height, crop_width]` (zeros on padded
    frames) and `video_mask` `[batch, max_frames]`. With no arguments it uses the paper's settings: 12 frames sampled
    at 1 fps (uniformly thinned when longer), shortest side resized to 224 (bicubic), centre crop 224, CLIP's mean and
    std.

    A video is a file path, a `(path, start_s, end_s)` segment, or a uint8 array `[frames, height, width, 3]`
    (already decoded frames, all candidates for sampling); a batch may mix them.

    Args:
        do_resize (`bool`, *optional*, defaults to `True`):
            Whether to resize so that the shortest side is `size["shortest_edge"]`.
        size (`dict[str, int]`, *optional*, defaults to `{"shortest_edge": 224}`):
            Size of the resize.
        resample (`int`, *optional*, defaults to `3`):
            PIL filter of the resize (3, bicubic).
        do_center_crop (`bool`, *optional*, defaults to `True`):
            Whether to centre-crop to `crop_size["height"] x crop_size["width"]`.
        crop_size (`dict[str, int]`, *optional*, defaults to `{"height": 224, "width": 224}`):
            Size of the centre crop.
        do_rescale (`bool`, *optional*, defaults to `True`):
            Whether to multiply by `rescale_factor`.
        rescale_factor (`float`, *optional*, defaults to `1/255`):
            Factor of the rescale.
        do_normalize (`bool`, *optional*, defaults to `True`):
            Whether to normalise per channel with `image_mean` and `image_std`.
        image_mean (`Sequence[float]`, *optional*, defaults to `OPENAI_CLIP_MEAN`):
            Per-channel mean.
        image_std (`Sequence[float]`, *optional*, defaults to `OPENAI_CLIP_STD`):
            Per-channel standard deviation.
        max_frames (`int`, *optional*, defaults to `12`):
            Frames per video (the padded length).
        video_framerate (`float`, *optional*, defaults to `1`):
            Frames sampled per second of video.
        slice_framepos (`int`, *optional*, defaults to `SLICE_UNIFORM`):
            How to thin longer videos: 0 head, 1 tail, 2 uniform.
        decode_strategy (`str`, *optional*, defaults to `"auto"`):
            `"auto"`, `"decode"` or `"seek"` (see `video_decoding.read_video_frames`).
        max_pixels (`int`, *optional*, defaults to `DEFAULT_MAX_PIXELS`):
            Largest frame (width x height) decoded, 8192 x 4320 by default; a larger video raises `VideoReadError`
            before anything is decoded (a tiny file can hold huge frames). Frames at least 8 times the resize size are
            reduced in FFmpeg's scaler first, so large videos cost memory for one frame.
    """

    valid_kwargs = DRLVideosKwargs
    model_input_names = ["pixel_values_videos", "video_mask"]

    def __init__(
        self,
        do_resize: bool = True,
        size: dict[str, int] | None = None,
        resample: int = BICUBIC,
        do_center_crop: bool = True,
        crop_size: dict[str, int] | None = None,
        do_rescale: bool = True,
        rescale_factor: float = 1 / 255,
        do_normalize: bool = True,
        image_mean: Sequence[float] | None = None,
        image_std: Sequence[float] | None = None,
        max_frames: int = 12,
        video_framerate: float = 1,
        slice_framepos: int = SLICE_UNIFORM,
        decode_strategy: str = "auto",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.do_resize = do_resize
        self.size = dict(size) if size is not None else {"shortest_edge": 224}
        self.resample = int(resample)
        self.do_center_crop = do_center_crop
        self.crop_size = dict(crop_size) if crop_size is not None else {"height": 224, "width": 224}
        self.do_rescale = do_rescale
        self.rescale_factor = rescale_factor
        self.do_normalize = do_normalize
        self.image_mean = list(image_mean) if image_mean is not None else list(OPENAI_CLIP_MEAN)
        self.image_std = list(image_std) if image_std is not None else list(OPENAI_CLIP_STD)
        self.max_frames = int(max_frames)
        self.video_framerate = video_framerate
        self.slice_framepos = int(slice_framepos)
        self.decode_strategy = decode_strategy
        self.max_pixels = int(max_pixels)
        self._validate()

    def _validate(self) -> None:
        if self.max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {self.max_frames}.")
        if self.video_framerate <= 0:
            raise ValueError(f"video_framerate must be positive, got {self.video_framerate}.")
        check_slice_framepos(self.slice_framepos)
        check_decode_strategy(self.decode_strategy, "decode_strategy")
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be at least 1, got {self.max_pixels}.")
        if "shortest_edge" not in self.size:
            raise ValueError(f"size must be {{'shortest_edge': int}}, got {self.size}.")

    def __call__(self, videos, return_tensors: str | None = "pt", **kwargs) -> BatchFeature:
        """See `preprocess`."""
        return self.preprocess(videos, return_tensors=return_tensors, **kwargs)

    def load_frames(self, video) -> np.ndarray:
        """Decode and sample the frames of one video.

        Args:
            video (`str`, `os.PathLike`, `tuple` or `np.ndarray`):
                A path, a `(path, start_s, end_s)` segment, or uint8 frames `[frames, height, width, 3]`.

        Returns:
            `np.ndarray`: The sampled uint8 frames `[F, H, W, 3]`.

        Raises:
            VideoReadError: If the video cannot be read or sampled.
            TypeError: If `video` is none of the above.
        """
        if isinstance(video, (str, os.PathLike)):
            return self._read(video, None, None)
        if _is_segment(video):
            return self._read(*video)
        if isinstance(video, torch.Tensor):
            video = video.detach().cpu().numpy()
        if isinstance(video, np.ndarray):
            if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
                raise VideoReadError(
                    "array input",
                    f"expected uint8 frames [frames, height, width, 3], got {video.dtype} {tuple(video.shape)}",
                )
            if len(video) == 0:
                raise VideoReadError("array input", "the video has no frames (zero length)")
            return video[thin_positions(np.arange(len(video)), self.max_frames, self.slice_framepos)]
        raise TypeError(
            f"A video must be a path, a (path, start_s, end_s) segment or a uint8 array, got {type(video).__name__}."
        )

    def _read(self, path, start, end) -> np.ndarray:
        return read_video_frames(
            path,
            start=start,
            end=end,
            max_frames=self.max_frames,
            video_framerate=self.video_framerate,
            slice_framepos=self.slice_framepos,
            strategy=self.decode_strategy,
            max_pixels=self.max_pixels,
            reduce_to_shortest_edge=self.size["shortest_edge"] if self.do_resize else None,
        ).frames

    def frame_settings(self) -> dict:
        """Return the settings that change the uint8 frames `processed_frames` gives, with `FRAME_RULES_VERSION`.

        Equal dictionaries mean equal frames for the same file, so stored frames can be keyed on them.

        Returns:
            `dict`: The settings, as plain JSON values.
        """
        settings = {name: getattr(self, name) for name in FRAME_SETTINGS}
        settings["frame_rules_version"] = FRAME_RULES_VERSION
        return json.loads(json.dumps(settings, sort_keys=True))

    def resize_and_crop_frames(self, frames: np.ndarray) -> np.ndarray:
        """Resize (shortest side, `resample`) and centre-crop frames as this processor's settings say.

        Args:
            frames (`np.ndarray`):
                uint8 frames `[F, H, W, 3]`.

        Returns:
            `np.ndarray`: The resized and cropped frames, still uint8.
        """
        shortest = self.size["shortest_edge"] if self.do_resize else None
        crop_h, crop_w = (self.crop_size["height"], self.crop_size["width"]) if self.do_center_crop else (None, None)
        return np.stack([resize_and_crop(frame, shortest, crop_h, crop_w, self.resample) for frame in frames])

    def processed_frames(self, video) -> np.ndarray:
        """Return the frames of one video exactly as `preprocess` sees them before rescaling and normalisation.

        `normalize` turns them (padded, batched) into `pixel_values_videos`.

        Args:
            video (`str`, `os.PathLike`, `tuple` or `np.ndarray`):
                A path, a `(path, start_s, end_s)` segment, or uint8 frames (see `load_frames`).

        Returns:
            `np.ndarray`: Sampled, resized and centre-cropped uint8 frames `[F, crop_height, crop_width, 3]` with
            `F <= max_frames` (no padding).

        Raises:
            VideoReadError: If the video cannot be read or sampled.
        """
        return self.resize_and_crop_frames(self.load_frames(video))

    def normalize(self, frames: torch.Tensor, video_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Rescale and normalise uint8 frames on their own device.

        This is the one place where `preprocess` and stored frames (a frame cache, uint8 over the bus) become
        `pixel_values_videos`, so both give the same numbers bit for bit.

        Args:
            frames (`torch.Tensor`):
                uint8 `[..., F, H, W, 3]` (channels last, as decoded and as `processed_frames` gives them).
            video_mask (`torch.Tensor`, *optional*):
                `[..., F]`; frames where it is 0 become zeros, as `preprocess` pads.

        Returns:
            `torch.Tensor`: float32 `[..., F, 3, H, W]` on `frames.device`.

        Raises:
            TypeError: If `frames` is not a uint8 tensor with at least 4 dimensions.
            ValueError: If `frames` is not channels last.
        """
        if not isinstance(frames, torch.Tensor) or frames.dtype != torch.uint8 or frames.ndim < 4:
            raise TypeError("normalize expects a uint8 torch tensor [..., frames, height, width, 3].")
        if frames.shape[-1] != 3:
            raise ValueError(
                f"normalize expects channels last [..., frames, height, width, 3], got {tuple(frames.shape)}."
            )
        rescale_factor = self.rescale_factor if self.do_rescale else None
        mean = tuple(self.image_mean) if self.do_normalize else None
        std = tuple(self.image_std) if self.do_normalize else None
        channels_first = frames.movedim(-1, -3).contiguous()
        if frames.device.type == "cpu":
            # The table's own arithmetic, in place: the same numbers (pinned by a test over every value) without the
            # int32 index tensor and gather the lookup needs (bench/data_path.py measures the gain).
            pixels = _normalize_arithmetic(channels_first.float(), rescale_factor, mean, std)
        else:
            # A gather rather than arithmetic: one lookup per value, int32 indices (4 bytes) instead of int64.
            table = _normalization_table(str(frames.device), rescale_factor, mean, std)
            offsets = torch.arange(0, 3 * 256, 256, dtype=torch.int32, device=frames.device).view(3, 1, 1)
            indices = channels_first.to(torch.int32) + offsets
            pixels = table.index_select(0, indices.view(-1)).view(channels_first.shape)
        if video_mask is not None:
            padded = (video_mask.to(frames.device) == 0)[..., None, None, None]
            pixels = pixels.masked_fill_(padded, 0.0)
        return pixels

    def frames_to_pixels(self, frames: np.ndarray) -> torch.Tensor:
        """Apply CLIP's preprocessing to uint8 frames `[F, H, W, 3]`.

        Args:
            frames (`np.ndarray`):
                uint8 frames `[F, H, W, 3]`.

        Returns:
            `torch.Tensor`: float32 `[F, 3, crop_height, crop_width]`.
        """
        return self.normalize(torch.from_numpy(self.resize_and_crop_frames(frames)))

    def preprocess(self, videos, return_tensors: str | None = "pt", **kwargs) -> BatchFeature:
        """Turn one video or a batch of videos into `pixel_values_videos` and `video_mask`.

        Args:
            videos (`str`, `os.PathLike`, `tuple`, `np.ndarray` or a list of them):
                One video or a list of videos (paths, `(path, start_s, end_s)` segments, uint8 arrays).
            return_tensors (`str`, *optional*, defaults to `"pt"`):
                `"pt"` for torch tensors.
            **kwargs:
                Per-call overrides of this processor's settings (e.g. `max_frames=8`).

        Returns:
            `BatchFeature`: With `pixel_values_videos` and `video_mask`.

        Raises:
            VideoReadError: Naming the failing video, its position in the batch and the reason.
            TypeError: If a keyword argument is not a setting of this processor.
            ValueError: If no video is given.
        """
        if kwargs:
            unknown = set(kwargs) - set(self.to_dict())
            if unknown:
                raise TypeError(f"Unknown video processor options: {sorted(unknown)}.")
            processor = self.__class__(**{**self.to_dict(), **kwargs})
            return processor.preprocess(videos, return_tensors=return_tensors)
        if _is_single_video(videos):
            videos = [videos]
        videos = list(videos)
        if not videos:
            raise ValueError("No videos given.")
        pixels, masks = [], []
        for position, video in enumerate(videos):
            try:
                clip = self.processed_frames(video)
            except VideoReadError as error:
                raise error.at(position) from error
            except ValueError as error:
                raise VideoReadError(str(video)[:200], str(error), position) from error
            # Padded and masked as uint8, then normalised by the same call a frame cache's batches go through.
            padded = np.zeros((self.max_frames, *clip.shape[1:]), dtype=np.uint8)
            padded[: len(clip)] = clip
            pixels.append(torch.from_numpy(padded))
            mask = torch.zeros(self.max_frames, dtype=torch.long)
            mask[: len(clip)] = 1
            masks.append(mask)
        video_mask = torch.stack(masks)
        data = {"pixel_values_videos": self.normalize(torch.stack(pixels), video_mask), "video_mask": video_mask}
        return BatchFeature(data=data, tensor_type=return_tensors)


__all__ = ["FRAME_RULES_VERSION", "DRLVideoProcessor"]
