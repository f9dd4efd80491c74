"""Video processor for DRL: decodes with PyAV, samples frames as the authors do, applies CLIP's preprocessing.

It needs neither torchvision nor torchcodec (transformers' `BaseVideoProcessor` needs both to resize and decode),
so it builds on `VideoProcessorMixin` and does its own decoding (`video_decoding.py`) and transforms
(`frame_transforms.py`).
"""

import os
from collections.abc import Sequence

import numpy as np
import torch
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import VideosKwargs
from transformers.video_processing_utils import VideoProcessorMixin

from .frame_sampling import SLICE_UNIFORM, check_slice_framepos, thin_positions
from .frame_transforms import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, normalize_frames, resize_and_crop
from .video_decoding import DEFAULT_MAX_PIXELS, VideoReadError, check_decode_strategy, read_video_frames

# PIL's BICUBIC filter id, the authors' resize filter.
BICUBIC = 3


class DRLVideosKwargs(VideosKwargs, total=False):
    """Keyword arguments a call may override, beyond transformers' usual video ones."""

    max_frames: int
    video_framerate: int | float
    slice_framepos: int
    decode_strategy: str
    max_pixels: int


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
    r"""
    Turns videos into `pixel_values_videos` `[batch, max_frames, 3, crop_height, crop_width]` (zeros on padded
    frames) and `video_mask` `[batch, max_frames]`. With no arguments it uses the paper's settings: 12 frames
    sampled at 1 fps (uniformly thinned when longer), shortest side resized to 224 (bicubic), centre crop 224,
    CLIP's mean and std.

    A video is a file path, a `(path, start_s, end_s)` segment, or a uint8 array `[frames, height, width, 3]`
    (already decoded frames, all candidates for sampling); a batch may mix them.

    Args:
        do_resize, size: resize so that the shortest side is `size["shortest_edge"]`.
        resample: PIL filter of the resize (3, bicubic).
        do_center_crop, crop_size: centre crop to `crop_size["height"] x crop_size["width"]`.
        do_rescale, rescale_factor: multiply by `rescale_factor` (1/255).
        do_normalize, image_mean, image_std: per-channel normalisation.
        max_frames: frames per video (the padded length).
        video_framerate: frames sampled per second of video.
        slice_framepos: how to thin longer videos: 0 head, 1 tail, 2 uniform.
        decode_strategy: "auto", "decode" or "seek" (see `video_decoding.read_video_frames`).
        max_pixels: largest frame (width x height) decoded, 8192 x 4320 by default; a larger video raises
            `VideoReadError` before anything is decoded (a tiny file can hold huge frames). Frames at least 8 times the
            resize size are reduced in FFmpeg's scaler first, so large videos cost memory for one frame.
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
        """The sampled frames `[F, H, W, 3]` uint8 of one video (path, segment or array)."""
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

    def frames_to_pixels(self, frames: np.ndarray) -> torch.Tensor:
        """CLIP preprocessing of `[F, H, W, 3]` uint8 frames to `[F, 3, crop_height, crop_width]` float32."""
        shortest = self.size["shortest_edge"] if self.do_resize else None
        crop_h, crop_w = (self.crop_size["height"], self.crop_size["width"]) if self.do_center_crop else (None, None)
        transformed = np.stack([resize_and_crop(frame, shortest, crop_h, crop_w, self.resample) for frame in frames])
        return normalize_frames(
            transformed,
            self.rescale_factor if self.do_rescale else None,
            self.image_mean if self.do_normalize else None,
            self.image_std if self.do_normalize else None,
        )

    def preprocess(self, videos, return_tensors: str | None = "pt", **kwargs) -> BatchFeature:
        """
        Args:
            videos: one video or a list of videos (paths, `(path, start_s, end_s)` segments, uint8 arrays).
            return_tensors: "pt" (the default) for torch tensors.
            kwargs: per-call overrides of this processor's settings (e.g. `max_frames=8`).

        Returns:
            `BatchFeature` with `pixel_values_videos` and `video_mask`.

        Raises:
            VideoReadError: naming the failing video, its position in the batch and the reason.
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
                clip = self.frames_to_pixels(self.load_frames(video))
            except VideoReadError as error:
                raise error.at(position) from error
            except ValueError as error:
                raise VideoReadError(str(video)[:200], str(error), position) from error
            padded = clip.new_zeros((self.max_frames, *clip.shape[1:]))
            padded[: len(clip)] = clip
            pixels.append(padded)
            mask = torch.zeros(self.max_frames, dtype=torch.long)
            mask[: len(clip)] = 1
            masks.append(mask)
        data = {"pixel_values_videos": torch.stack(pixels), "video_mask": torch.stack(masks)}
        return BatchFeature(data=data, tensor_type=return_tensors)


__all__ = ["DRLVideoProcessor"]
