"""Benchmark: train.py's samples/s with a warm frame cache (`--frame_cache DIR`) against decoding every clip every
epoch, same settings, runs interleaved.

Two kinds of clips, each trained from scratch with the toy-size model (a tiny CLIP, the toy's recipe: 8 frames of
32 px at 4 fps):

- realistic: a videofolder of generated 320x240, 30 fps, 15 s H.264 clips (libx264 defaults), as MSR-VTT's are;
- toy: the toy benchmark's own 64x64, 3 s, 8 fps clips (cheap to decode: the least the cache can win).

Each round runs train.py without the cache, then with it (warmed by one run first, not counted), as subprocesses;
samples/s is what train.py records in metrics.json (the training loop only: no set-up, no evaluation). The machine may
be shared, so the table gives medians of the rounds and the load average before and after; the ratio is of the medians
of this one run.

    python -m bench.train_frame_cache                       # both kinds, 5 rounds
    python -m bench.train_frame_cache --clips realistic --rounds 5 --num_workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.data_path import write_realistic_clips

ROOT = Path(__file__).resolve().parents[1]

COLOURS = ("red", "green", "blue", "yellow", "white", "purple", "orange", "grey")


def write_realistic_folder(folder: Path, count: int) -> Path:
    """A videofolder of `count` realistic clips with two captions each (metadata.csv, all of it training data)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["file_name,caption"]
    for number, path in enumerate(write_realistic_clips(folder, count)):
        colour = COLOURS[number % len(COLOURS)]
        lines += [f"{path.name},a {colour} pattern number {number}", f"{path.name},clip {number} moves in {colour}"]
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n")
    return folder


def data_arguments(kind: str, work: Path, clips: int) -> list[str]:
    """train.py's data flags for `kind`; every row is training data (nothing held out, no validation)."""
    if kind == "realistic":
        folder = write_realistic_folder(work / "videos", clips)
        return ["--benchmark", "videofolder", "--data_dir", str(folder), "--test_fraction", "0"]
    options = json.dumps({"num_videos": 72 + clips, "num_validation_videos": 0})
    return ["--benchmark", "toy", "--data_dir", str(work / "toy"), "--benchmark_options", options]


def train(arguments: list[str], output_dir: Path, cwd: Path) -> float:
    """One train.py run; its training samples/s."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(cwd / "hf")}
    command = [sys.executable, str(ROOT / "train.py"), *arguments, "--output_dir", str(output_dir)]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads((output_dir / "metrics.json").read_text())["samples_per_s"]


def measure(kind: str, args: argparse.Namespace, work: Path) -> dict[str, list[float]]:
    """samples/s of each path over `args.rounds` interleaved rounds."""
    work.mkdir(parents=True, exist_ok=True)
    common = data_arguments(kind, work, args.clips_per_kind)
    common += ["--epochs", str(args.epochs), "--batch_size", str(args.batch_size), "--do_eval", "false"]
    common += ["--num_workers", str(args.num_workers)]
    cached = [*common, "--frame_cache", str(work / "frames")]
    train(cached, work / "warm-up", work)  # fills the cache (and builds the toy's videos): not counted
    rates: dict[str, list[float]] = {"decode every epoch": [], "warm frame cache": []}
    for round_number in range(args.rounds):
        rates["decode every epoch"].append(train(common, work / f"plain-{round_number}", work))
        rates["warm frame cache"].append(train(cached, work / f"cached-{round_number}", work))
        print(f"{kind} round {round_number + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rates.items()))
    return rates


def table(results: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> list[str]:
    lines = [
        "| clips | path | samples/s (median) | runs | ratio (median / uncached median) |",
        "| --- | --- | ---: | --- | ---: |",
    ]
    for kind, rates in results.items():
        baseline = statistics.median(rates["decode every epoch"])
        for path, values in rates.items():
            runs = ", ".join(f"{value:.1f}" for value in values)
            ratio = statistics.median(values) / baseline
            lines.append(f"| {kind} | {path} | {statistics.median(values):.1f} | {runs} | {ratio:.2f}x |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", nargs="+", choices=["realistic", "toy"], default=["realistic", "toy"])
    parser.add_argument("--clips_per_kind", type=int, default=16, help="training videos (two captions each)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--num_workers", type=int, default=0, help="train.py's --num_workers (0: in the process)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        results = {kind: measure(kind, args, Path(folder) / kind) for kind in args.clips}
    load_after = os.getloadavg()
    print()
    print(
        f"train.py, toy-size model from scratch, {args.clips_per_kind} videos x 2 captions, {args.epochs} epochs, "
        f"batch {args.batch_size}, --num_workers {args.num_workers}; {os.cpu_count()} CPU(s); load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after ({args.rounds} interleaved rounds)"
    )
    print()
    print("\n".join(table(results, args)))


if __name__ == "__main__":
    main()
