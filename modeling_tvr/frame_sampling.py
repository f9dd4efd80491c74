"""Which frames of a video the model sees: the authors' sampling, reproduced index for index."""

import numpy as np

# How to thin a clip that has more candidate frames than `max_frames` (CLIP4Clip's `slice_framepos`).
SLICE_HEAD, SLICE_TAIL, SLICE_UNIFORM = 0, 1, 2


class FrameSamplingError(ValueError):
    """The requested segment selects no frame of the video."""


def check_slice_framepos(value: object, name: str = "slice_framepos") -> None:
    """Raises `ValueError` unless `value` is one of the thinning modes; `name` is the option as the caller spells it."""
    if value not in (SLICE_HEAD, SLICE_TAIL, SLICE_UNIFORM):
        raise ValueError(f"{name} must be 0 (head), 1 (tail) or 2 (uniform), got {value!r}.")


def thin_positions(positions: np.ndarray, max_frames: int, slice_framepos: int = SLICE_UNIFORM) -> np.ndarray:
    """
    Keeps at most `max_frames` of `positions`: the first ones (head, 0), the last ones (tail, 1), or those at
    `linspace(0, len - 1, max_frames)` cast to int (uniform, 2, the authors' default).
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
    """
    Frame indices sampled as in the authors' code.

    Candidates are `range(int(start * fps), min(int(end * fps), num_frames - 1) + 1, round(fps / video_framerate))`
    (the whole video when `start` / `end` are None), i.e. `video_framerate` frames per second; when there are more
    than `max_frames`, they are thinned by `thin_positions`.

    Raises:
        FrameSamplingError: the video has no frames, or the segment lies outside it or is empty.
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
