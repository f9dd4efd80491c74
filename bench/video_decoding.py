"""Benchmark: decode + preprocess throughput of DRLVideoProcessor on generated videos, seek vs decode-through,
and the same work spread over DataLoader workers.

    python -m bench.video_decoding --write
"""

import argparse
import platform
import tempfile
from datetime import date
from pathlib import Path

import av
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from bench.report import write_section
from bench.timing import best_time
from modeling_tvr.video_decoding import read_video_frames
from modeling_tvr.video_processing_drl import DRLVideoProcessor


def write_video(path: Path, seconds: int, fps: int, width: int, height: int, gop: int | None = None) -> Path:
    """H.264 with moving content; a key frame every `gop` frames (libx264's default: at most every 250)."""
    rng = np.random.default_rng(0)
    background = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if gop:
            stream.codec_context.gop_size = gop
        for index in range(seconds * fps):
            image = np.roll(background, index * 4, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


class VideoFiles(Dataset):
    def __init__(self, paths, processor):
        self.paths, self.processor = paths, processor

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return self.processor(str(self.paths[index]))["pixel_values_videos"][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--loader-videos", type=int, default=16)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one decoding process per core, as DataLoader workers would run
    folder = Path(tempfile.mkdtemp())
    rows = [
        "| video | key frames | strategy | decode (ms) | decode + preprocess (ms) | sampled frames / s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for seconds, gop in ((10, None), (60, None), (60, 2 * args.fps)):
        path = write_video(folder / f"v{seconds}_{gop}.mp4", seconds, args.fps, args.width, args.height, gop)
        key_frames = f"every {gop} frames" if gop else "libx264 default (250)"
        for strategy in ("decode", "seek"):
            processor = DRLVideoProcessor(decode_strategy=strategy)
            frames = len(read_video_frames(path, strategy=strategy).indices)
            decode = best_time(lambda p=path, s=strategy: read_video_frames(p, strategy=s), args.repeat)
            total = best_time(lambda p=path, v=processor: v(str(p)), args.repeat)
            rows.append(
                f"| {seconds} s, {args.width}x{args.height}, {args.fps} fps | {key_frames} | {strategy} | "
                f"{decode * 1e3:.1f} | {total * 1e3:.1f} | {frames / total:.0f} |"
            )
            print(rows[-1], flush=True)
    paths = [folder / "v10_None.mp4"] * args.loader_videos
    processor = DRLVideoProcessor()
    loader_rows = ["| DataLoader workers | videos / s (10 s clips, decode + preprocess) |", "| --- | --- |"]
    for workers in (0, 2):
        loader = DataLoader(VideoFiles(paths, processor), batch_size=4, num_workers=workers)
        seconds = best_time(lambda ld=loader: [batch for batch in ld], 1)
        loader_rows.append(f"| {workers} | {len(paths) / seconds:.1f} |")
        print(loader_rows[-1], flush=True)
    text = "\n".join(
        [
            f"Generated H.264 videos, default processor (12 frames at 1 fps, 224 px), best of {args.repeat}, one "
            f"thread per process; {platform.machine()}, PyAV {av.__version__}, {date.today().isoformat()}. "
            "Command: `python -m bench.video_decoding --write`.",
            "",
            *rows,
            "",
            *loader_rows,
            "",
            "Seeking reads the key-frame positions from the packets and jumps only over groups of pictures that hold "
            "no sampled frame, so it never decodes more than decoding straight through; its gain grows with the "
            'distance between sampled frames and the density of key frames. `decode_strategy="auto"` seeks when '
            "the sampled frames lie more than 50 frames apart on average and otherwise decodes straight through "
            "(saving the packet scan on short clips).",
        ]
    )
    print(text)
    if args.write:
        write_section("video_decoding", "Video decoding and preprocessing", text)


if __name__ == "__main__":
    main()
