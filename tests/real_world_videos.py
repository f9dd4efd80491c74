"""Videos written the ways real devices and tools write them, with ffmpeg (the `imageio-ffmpeg` static binary).

Every frame shows which second of the video it belongs to: a bright cell at (row, column) = divmod(second, 10) of a
10 x 10 grid on a dark background, which survives lossy coding. `second_shown(frame)` reads it back, so a test can
check that the frame sampled for second s really is one shown during second s.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

GRID = 10


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg(*arguments: str, frames: list[np.ndarray] | None = None) -> bytes:
    """Run ffmpeg quietly, `frames` (RGB) fed to its standard input; returns its standard output. A failure shows its
    message."""
    stdin = b"".join(frame.tobytes() for frame in frames) if frames is not None else None
    command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *arguments]
    result = subprocess.run(command, input=stdin, capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.decode(errors="replace")[-2000:])
    return result.stdout


def second_frame(second: int, size: int = 80, tick: int = 0) -> np.ndarray:
    """An RGB frame marking `second` (a bright cell of the grid); `tick` adds a little motion within the second."""
    image = np.full((size, size, 3), 16, np.uint8)
    cell = size // GRID
    row, column = divmod(second % (GRID * GRID), GRID)
    image[row * cell : (row + 1) * cell, column * cell : (column + 1) * cell] = 235
    image[-2:, (tick * 3) % size] = 90  # keeps consecutive frames different
    return image


def second_shown(frame: np.ndarray) -> int:
    """The second a frame of `second_frame` marks (the brightest grid cell), whatever size it was scaled to."""
    gray = frame.astype(np.float32).mean(axis=2)
    height, width = gray.shape
    cells = gray[: height - height % GRID, : width - width % GRID]
    cells = cells.reshape(GRID, cells.shape[0] // GRID, GRID, cells.shape[1] // GRID).mean(axis=(1, 3))
    row, column = np.unravel_index(int(np.argmax(cells)), cells.shape)
    return int(row * GRID + column)


def _raw_input(frames: list[np.ndarray], fps: float) -> list[str]:
    height, width = frames[0].shape[:2]
    return ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "pipe:0"]


def write_seconds_video(
    path: Path,
    seconds: int,
    fps: float = 25,
    size: int = 80,
    extra: tuple[str, ...] = (),
    output_format: str = "",
    first_second: int = 0,
) -> Path:
    """An H.264 video of `seconds` seconds at `fps`, each frame marking its second (counted from `first_second`, for
    the later parts of a recording); `extra`: more output options."""
    frames = [second_frame(first_second + int(i / fps), size, i) for i in range(int(round(seconds * fps)))]
    encode = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", str(int(2 * fps)), *extra]
    ffmpeg(
        *_raw_input(frames, fps), *encode, *(["-f", output_format] if output_format else []), str(path), frames=frames
    )
    return path


def write_piped(source: Path, path: Path, output_format: str, codec_options: tuple[str, ...]) -> Path:
    """`source` re-encoded by ffmpeg writing to a pipe, as browsers and streaming tools do: no duration, no index."""
    path.write_bytes(ffmpeg("-i", str(source), *codec_options, "-f", output_format, "pipe:1"))
    return path


def write_variable_frame_rate(path: Path) -> Path:
    """10 s whose frame rate changes halfway: 5 s at 30 fps, then 5 s at 10 fps (timestamps say so: VFR)."""
    frames = [second_frame(i // 30, 80, i) for i in range(150)] + [second_frame(5 + i // 10, 80, i) for i in range(50)]
    timestamps = r"if(lt(N\,150)\,N/30\,5+(N-150)/10)/TB"  # commas escaped for the filter graph
    encode = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "30"]
    ffmpeg(
        *_raw_input(frames, 30), "-vf", f"setpts={timestamps}", "-fps_mode", "vfr", *encode, str(path), frames=frames
    )
    return path


def write_raw_stream(source: Path, path: Path, output_format: str) -> Path:
    """`source` as a raw elementary stream without a container, as cameras and encoders dump it (no timestamps): H.264
    copied as Annex B (`output_format` "h264"), or re-encoded to MPEG-2 video ("mpeg2video", a .m2v)."""
    if output_format == "h264":
        ffmpeg("-i", str(source), "-c", "copy", "-bsf:v", "h264_mp4toannexb", "-f", "h264", str(path))
    else:
        ffmpeg("-i", str(source), "-c:v", output_format, "-q:v", "4", "-f", output_format, str(path))
    return path


def write_joined_recording(folder: Path, seconds: int, offsets: tuple[str, str], fps: float = 25) -> Path:
    """Two MPEG-TS recordings of `seconds` seconds each (the second marking the seconds after the first) joined byte
    for byte, as `cat` joins DVR and camera segments: each part's timestamps start where its recorder put them
    (`offsets`, ffmpeg's -output_ts_offset in seconds), so at the join they restart or jump."""
    parts = [
        write_seconds_video(
            folder / f"part{number}.ts",
            seconds,
            fps=fps,
            extra=("-output_ts_offset", offset),
            output_format="mpegts",
            first_second=number * seconds,
        )
        for number, offset in enumerate(offsets)
    ]
    joined = folder / "joined.ts"
    joined.write_bytes(b"".join(part.read_bytes() for part in parts))
    return joined


def write_paused_recording(path: Path, fps: int = 25) -> Path:
    """An MPEG-TS recording paused for 2 s: seconds 0-3, then seconds 6-9 with timestamps 2 s past the pause, so
    the last frame before it stays on screen (a still frame, not a restart of the timestamps)."""
    frames = [second_frame(i // fps, 80, i) for i in range(4 * fps)] + [
        second_frame(6 + i // fps, 80, i) for i in range(4 * fps)
    ]
    timestamps = rf"if(lt(N\,{4 * fps})\,N/{fps}\,2+N/{fps})/TB"  # commas escaped for the filter graph
    encode = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", str(fps), "-f", "mpegts"]
    ffmpeg(
        *_raw_input(frames, fps), "-vf", f"setpts={timestamps}", "-fps_mode", "vfr", *encode, str(path), frames=frames
    )
    return path


def write_rotated(source: Path, path: Path, degrees: int) -> Path:
    """`source` with a display matrix asking players to rotate it by `degrees` (as phones store portrait clips)."""
    ffmpeg("-display_rotation", str(degrees), "-i", str(source), "-c", "copy", str(path))
    return path


def decode_with_ffmpeg(path: Path, width: int, height: int) -> np.ndarray:
    """Every frame as ffmpeg's own command line shows it (display rotation applied), `[F, H, W, 3]` uint8."""
    command = [
        ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-i",
        str(path),
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "pipe:1",
    ]
    data = subprocess.run(command, capture_output=True, check=True).stdout
    return np.frombuffer(data, np.uint8).reshape(-1, height, width, 3)


def write_lavfi_clip(
    path: Path,
    seconds: float,
    size: str = "320x240",
    fps: int = 30,
    source: str = "testsrc2",
    extra: tuple[str, ...] = (),
) -> Path:
    """A clip of an ffmpeg test source (`testsrc2`, `mandelbrot`, ...) encoded with libx264's defaults (B-frames, a
    key frame at most every 250 frames) as cameras and web uploads are, unless `extra` says otherwise."""
    encode = ["-c:v", "libx264", "-pix_fmt", "yuv420p", *extra]
    ffmpeg("-f", "lavfi", "-i", f"{source}=size={size}:rate={fps}", "-t", str(seconds), *encode, str(path))
    return path
