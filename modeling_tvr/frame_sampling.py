"""Which frames of a video the model sees: the authors' sampling, reproduced index for index."""

import numpy as np

# How to thin a clip that has more candidate frames than `max_frames` (CLIP4Clip's `slice_framepos`).
SLICE_HEAD, SLICE_TAIL, SLICE_UNIFORM = 0, 1, 2


class FrameSamplingError(ValueError):
    """The requested segment selects no frame of the video."""


def check_slice_framepos(value: object, name: str = "slice_framepos") -> None:
    """Check that `value` is one of the thinning modes.

    Args:
        value (`object`):
            The value to check.
        name (`str`, *optional*, defaults to `"slice_framepos"`):
            The option as the caller spells it, for the message.

    Raises:
        ValueError: If `value` is not 0 (head), 1 (tail) or 2 (uniform).
    """
    if value not in (SLICE_HEAD, SLICE_TAIL, SLICE_UNIFORM):
        raise ValueError(f"{name} must be 0 (head), 1 (tail) or 2 (uniform), got {value!r}.")


def thin_positions(positions: np.ndarray, max_frames: int, slice_framepos: int = SLICE_UNIFORM) -> np.ndarray:
    """Keep at most `max_frames` of `positions`, as the authors thin a clip.

    Args:
        positions (`np.ndarray`):
            The candidate frame positions.
        max_frames (`int`):
            How many to keep at most.
        slice_framepos (`int`, *optional*, defaults to `SLICE_UNIFORM`):
            The first ones (head, 0), the last ones (tail, 1), or those at `linspace(0, len - 1, max_frames)` cast
            to int (uniform, 2, the authors' default).

    Returns:
        `np.ndarray`: The kept positions, `positions` itself when it holds `max_frames` or fewer.
    """
    check_slice_framepos(slice_framepos)
    if len(positions) <= max_frames:
        return positions
    if slice_framepos == SLICE_HEAD:
        return positions[:max_frames]
    if slice_framepos == SLICE_TAIL:
        return positions[-max_frames:]
    return positions[np.linspace(0, len(positions) - 1, num=max_frames, dtype=int)]


def sample_frame_indices(
    num_frames: int,
    fps: float,
    start: float | None = None,
    end: float | None = None,
    video_framerate: float = 1.0,
    max_frames: int = 12,
    slice_framepos: int = SLICE_UNIFORM,
) -> np.ndarray:
    """Sample frame indices as the authors' code does.

    Candidates are `range(int(start * fps), min(int(end * fps), num_frames - 1) + 1, round(fps / video_framerate))`
    (the whole video when `start` / `end` are None), i.e. `video_framerate` frames per second; when there are more
    than `max_frames`, they are thinned by `thin_positions`.

    Args:
        num_frames (`int`):
            Frames in the video.
        fps (`float`):
            The video's frame rate.
        start (`float`, *optional*):
            Start of the segment in seconds; the start of the video when `None`.
        end (`float`, *optional*):
            End of the segment in seconds; the end of the video when `None`.
        video_framerate (`float`, *optional*, defaults to `1.0`):
            Frames sampled per second.
        max_frames (`int`, *optional*, defaults to `12`):
            Most frames returned.
        slice_framepos (`int`, *optional*, defaults to `SLICE_UNIFORM`):
            How to thin longer clips (see `thin_positions`).

    Returns:
        `np.ndarray`: The sampled frame indices, in increasing order.

    Raises:
        FrameSamplingError: If the video has no frames, or the segment lies outside it or is empty.
    """
    if num_frames <= 0:
        raise FrameSamplingError("the video has no frames (zero length)")
    if fps <= 0:
        raise FrameSamplingError(f"the video reports a frame rate of {fps}")
    duration = num_frames / fps
    start_s = 0.0 if start is None else float(start)
    end_s = duration if end is None else float(end)
    if start_s < 0 or end_s < start_s:
        raise FrameSamplingError(f"segment [{start_s:g} s, {end_s:g} s] is not a valid time range")
    first = int(start_s * fps)
    last = min(int(end_s * fps), num_frames - 1)
    if first > last:
        raise FrameSamplingError(
            f"segment [{start_s:g} s, {end_s:g} s] lies outside the video ({duration:.2f} s, {num_frames} frames)"
        )
    step = max(1, round(fps / video_framerate))
    return thin_positions(np.arange(first, last + 1, step), max_frames, slice_framepos)
