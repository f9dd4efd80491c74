"""What a clip is to the frame cache: a video file, optionally cut to a segment, named so that equal clips match."""

from __future__ import annotations

import os

# `(absolute path, start_s or None, end_s or None)`: a whole video has `None` for both times.
Clip = tuple[str, float | None, float | None]


def as_clip(video: str | os.PathLike | tuple) -> Clip:
    """Name a video or segment as a `Clip`: the path made absolute and the times floats.

    So `"a.mp4"`, `"./a.mp4"` and `("a.mp4", None, None)` are one clip, and `(p, 2, 5)` equals `(p, 2.0, 5.0)`.

    Args:
        video (`str`, `os.PathLike` or `tuple`):
            A path or a `(path, start_s, end_s)` segment.

    Returns:
        `Clip`: `(absolute path, start_s or None, end_s or None)`.

    Raises:
        TypeError: If `video` is neither a path nor a three-item tuple or list.
    """
    if isinstance(video, (str, os.PathLike)):
        path, start, end = video, None, None
    elif isinstance(video, (tuple, list)) and len(video) == 3:
        path, start, end = video
    else:
        raise TypeError(f"A clip is a video path or a (path, start_s, end_s) tuple, got {video!r}.")
    return (
        os.path.abspath(os.fspath(path)),
        None if start is None else float(start),
        None if end is None else float(end),
    )


def processor_input(clip: Clip) -> str | Clip:
    """Return what the video processor takes for `clip`: the path for a whole video, else the segment.

    Args:
        clip (`Clip`):
            The clip, as `as_clip` gives it.

    Returns:
        `str` or `Clip`: The path, or the `(path, start_s, end_s)` segment.
    """
    path, start, end = clip
    return path if start is None and end is None else clip
