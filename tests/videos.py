"""Small videos written by the tests themselves with PyAV (no media files are committed)."""

from pathlib import Path

import av
import numpy as np


def frame_pattern(index: int, height: int, width: int) -> np.ndarray:
    """Frame `index`: its red level encodes the index (7 * index mod 256), a white column moves across."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = (index * 7) % 256
    image[..., 1] = 60
    image[:, (index * 3) % width] = 255
    return image


def write_video(
    path: Path, seconds: float, fps: int = 25, width: int = 64, height: int = 48, codec: str = "libx264"
) -> Path:
    """An H.264 MP4 of `seconds * fps` frames following `frame_pattern`."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(int(round(seconds * fps))):
            frame = av.VideoFrame.from_ndarray(frame_pattern(index, height, width), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    """A WAV file: a container with no video stream."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        samples = np.zeros((1, int(8000 * seconds)), np.int16)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def red_levels(frames: np.ndarray) -> list[int]:
    """The index code of each decoded frame: the median red level (the moving column is an outlier)."""
    return [int(np.median(frame[..., 0])) for frame in frames]
