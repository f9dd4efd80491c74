"""Benchmark: start-up cost of `import modeling_tvr` and of the search CLI, this tree against a revision you name.

Each command runs in a fresh process (best of `--repeats`), for this working tree and for `--baseline` (a git
revision, checked out into a temporary worktree), alternating so both see the same machine load:

- `import modeling_tvr`;
- the search CLI given a mistyped video folder (time to the error);
- the search CLI's first query over a folder already indexed (time to the ranked list): it loads torch, the model
  and the index, and encodes the query.

    python -m bench.startup --baseline REVISION --write  # REVISION: a commit to compare with; needs train.py's model
"""

import argparse
import functools
import os
import platform
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from bench.report import write_section
from bench.timing import alternating_best

ROOT = Path(__file__).resolve().parents[1]


def run(command: list[str], source: Path, cwd: Path, expect_success: bool) -> None:
    """Runs `command` with `source` first on the Python path; fails loudly if it did not do its job."""
    env = {**os.environ, "PYTHONPATH": str(source), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if (result.returncode == 0) != expect_success:
        sys.exit(f"{' '.join(command)} with {source}: exit {result.returncode}\n{result.stderr[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="git revision to compare with")
    parser.add_argument("--model", default="outputs/drl-toy", help="a trained DRL folder (run `python train.py`)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    model = Path(args.model).resolve()
    if not (model / "config.json").is_file():
        sys.exit(f"{model} not found: train the toy model first with `python train.py`.")
    from dataset_builders import load_benchmark

    clips = sorted(set(load_benchmark("toy", split="test")["video"]))[:8]
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        baseline = work / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(baseline), args.baseline], cwd=ROOT, check=True)
        try:
            videos = work / "videos"
            videos.mkdir()
            for clip in clips:
                os.symlink(clip, videos / Path(clip).name)
            search = [sys.executable, "-m", "modeling_tvr.search", "--model", str(model), "--videos"]
            commands = {
                "import modeling_tvr": [sys.executable, "-c", "import modeling_tvr"],
                "search CLI, mistyped video folder (time to the error)": [*search, str(work / "nowhere"), "q"],
                "search CLI, first query over an indexed folder of 8 videos": [
                    *search,
                    str(videos),
                    "a red circle moves to the left",
                ],
            }
            trees = {"before": baseline, "after": ROOT}
            succeeds = {name: not name.startswith("search CLI, mistyped") for name in commands}
            query = "search CLI, first query over an indexed folder of 8 videos"
            for tree in trees.values():  # build the index once per tree, outside the timings
                run(commands[query], tree, work, expect_success=True)
            runs = {
                (name, tree_name): functools.partial(run, command, tree, work, succeeds[name])
                for name, command in commands.items()
                for tree_name, tree in trees.items()
            }
            best = alternating_best(runs, args.repeats)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT, check=False)
    rows = [
        f"| {name} | {best[name, 'before']:.2f} | {best[name, 'after']:.2f} | "
        f"{best[name, 'before'] / best[name, 'after']:.1f}x |"
        for name in commands
    ]
    text = "\n".join(
        [
            f"Fresh processes, best of {args.repeats}, alternating; before = revision `{args.baseline}`, after = this "
            f"tree; {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{date.today().isoformat()}. Command: `python -m bench.startup --baseline {args.baseline} --write`.",
            "",
            "| command | before (s) | after (s) | speed-up |",
            "| --- | --- | --- | --- |",
            *rows,
        ]
    )
    print(text)
    if args.write:
        write_section("startup", "Start-up: import and search CLI", text)


if __name__ == "__main__":
    main()
