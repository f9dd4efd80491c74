"""Benchmark: reading the sampled frames by presentation time (this tree) against the reader of a revision you name.

`modeling_tvr/video_decoding.py` (and its `frame_sampling.py`) at the git revision given as `--baseline` is taken
from git and loaded beside this tree's; both read the same generated clips (12 frames at 1 fps, a key frame every 50
frames), alternating, best of `--repeat`. Only what both handle is timed: the baseline BENCHMARKS.md records (a reader
that does not find frames by presentation time) returns wrong frames from MPEG-TS when seeking and refuses WebM
written to a pipe, so MPEG-TS is timed decoding straight through.

    python -m bench.video_decoding_paths --baseline REVISION --write
"""

import argparse
import importlib.util
import platform
import sys
import tempfile
from datetime import date
from pathlib import Path

import av

from bench.report import git_show, write_section
from bench.timing import best_time, child_peak_rss_mib
from modeling_tvr.video_decoding import read_video_frames
from tests.real_world_videos import ffmpeg, write_piped, write_seconds_video

ROOT = Path(__file__).resolve().parents[1]


def load_baseline_reader(revision: str, folder: Path):
    """`read_video_frames` of `revision`, loaded as a package of its own from the files git stores."""
    package = folder / "baseline_decoding"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("video_decoding.py", "frame_sampling.py"):
        (package / name).write_text(git_show(revision, f"modeling_tvr/{name}"))
    spec = importlib.util.spec_from_file_location("baseline_decoding", package / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline_decoding"] = module
    spec.loader.exec_module(module)
    return importlib.import_module("baseline_decoding.video_decoding").read_video_frames


def peak_rss_mb(folder: Path, code: str) -> float:
    """Peak resident memory (MB) of a fresh Python process running `code` (the baseline package importable)."""
    return child_peak_rss_mib(code, [folder, ROOT])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="git revision to compare with (its reader)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    before = load_baseline_reader(args.baseline, folder)
    clips = {
        "10 s mp4, 25 fps, 240x240": write_seconds_video(folder / "short.mp4", 10, fps=25, size=240),
        "60 s mp4, 25 fps, 240x240": write_seconds_video(folder / "long.mp4", 60, fps=25, size=240),
    }
    clips["60 s MPEG-TS (same stream)"] = folder / "long.ts"
    ffmpeg("-i", str(clips["60 s mp4, 25 fps, 240x240"]), "-c", "copy", str(folder / "long.ts"))
    rows = ["| clip | strategy | before (ms) | after (ms) | after / before |", "| --- | --- | --- | --- | --- |"]
    for name, path in clips.items():
        strategies = ("decode",) if path.suffix == ".ts" else ("decode", "seek")
        for strategy in strategies:
            old = best_time(lambda p=path, s=strategy: before(p, strategy=s), args.repeat)
            new = best_time(lambda p=path, s=strategy: read_video_frames(p, strategy=s), args.repeat)
            rows.append(f"| {name} | {strategy} | {old * 1e3:.1f} | {new * 1e3:.1f} | {new / old:.2f} |")
            print(rows[-1], flush=True)
    webm = write_piped(clips["10 s mp4, 25 fps, 240x240"], folder / "piped.webm", "webm", ("-c:v", "libvpx"))
    webm_time = best_time(lambda: read_video_frames(webm), args.repeat)
    # Each reader in a process of its own: a process's peak never goes down, so the first reader's would hide the
    # second's.
    huge = write_seconds_video(folder / "huge.mp4", 2, fps=1, size=8192, extra=("-preset", "ultrafast"))
    peak_before = peak_rss_mb(
        folder, f"from baseline_decoding.video_decoding import read_video_frames as read\nread({str(huge)!r})"
    )
    peak_after = peak_rss_mb(
        folder,
        "from modeling_tvr.video_decoding import read_video_frames as read\n"
        f"read({str(huge)!r}, max_pixels=8192 * 8192, reduce_to_shortest_edge=224)",
    )
    text = "\n".join(
        [
            f"Clips written with ffmpeg, 12 frames sampled at 1 fps, best of {args.repeat}, alternating; before = "
            f"`modeling_tvr/video_decoding.py` at `{args.baseline}`, after = this tree; {platform.machine()}, PyAV "
            f"{av.__version__}, {date.today().isoformat()}. Command: "
            f"`python -m bench.video_decoding_paths --baseline {args.baseline} --write`.",
            "",
            *rows,
            "",
            "This tree's reader reads every packet's timestamp first (no decoding) so that it can find frames by "
            "time; that pass is the extra cost above. A 10 s WebM written to a pipe, which the baseline's reader "
            f"refuses, reads in {webm_time * 1e3:.1f} ms.",
            "",
            f"Peak memory of a process reading a {huge.stat().st_size / 1e3:.0f} kB clip of 8192x8192 frames: "
            f"{peak_before:.0f} MB before (decoded and converted at full size), {peak_after:.0f} MB after (one decoder "
            "thread, frames reduced in FFmpeg's scaler; refused unless `max_pixels` is raised).",
        ]
    )
    print(text)
    if args.write:
        write_section("video_decoding_paths", "Video decoding by presentation time, before and after", text)


if __name__ == "__main__":
    main()
