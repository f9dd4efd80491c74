"""Runs of train.py for the tests: as a subprocess (`run_train`, `accelerate_launch_train`), or in this process
through the package exactly as train.py's `main` runs (`train_in_process`), where its functions can be patched."""

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from modeling_tvr.training.command_line import build_parser, parse_arguments
from modeling_tvr.training.loop import StepCallback
from modeling_tvr.training.run import run

ROOT = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = ROOT / "train.py"


def SMALL_TOY(work: Path) -> list[str]:  # noqa: N802 - reads as a constant
    """A smaller toy benchmark (72 train, 72 validation, 72 test videos) built once per test module folder."""
    return ["--data_dir", str(work / "data"), "--benchmark_options", '{"num_videos": 144}', "--num_workers", "0"]


def accelerate_launch_train(mode: str, *train_args: str, processes: int = 2) -> list[str]:
    """`accelerate launch <mode> --num_processes N train.py ...` on this machine (`mode`: --multi_gpu or --cpu)."""
    accelerate = Path(sys.executable).with_name("accelerate")
    launch = [str(accelerate), "launch", mode, "--num_processes", str(processes), "--num_machines", "1"]
    launch += ["--mixed_precision", "no", "--dynamo_backend", "no"]
    return [*launch, str(TRAIN_SCRIPT), *train_args]


def run_train(*args: str, cwd: Path, script: Path = TRAIN_SCRIPT) -> subprocess.CompletedProcess:
    """`python train.py args` (or another `script`) in `cwd`, offline, its output captured."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_MODULES_CACHE": str(cwd / "modules")}
    return subprocess.run(
        [sys.executable, str(script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def train_in_process(monkeypatch: pytest.MonkeyPatch, *argv: str, callbacks: Sequence[StepCallback] = ()) -> None:
    """What `python train.py argv` runs, in this process: the command line parsed, then the run.

    The program's name is train.py's, so that usage errors read as the script's.
    """
    monkeypatch.setattr(sys, "argv", ["train.py", *argv])
    run(*parse_arguments(build_parser()), callbacks=callbacks)
