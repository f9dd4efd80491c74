"""train.py end to end on the toy benchmark: a few steps, evaluation, save; then --eval_only from the saved folder."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_MODULES_CACHE": str(cwd / "modules")}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp("train")
    common = ["--data_dir", str(work / "data"), "--num_workers", "0", "--eval_batch_size", "16"]
    result = run_train(
        "--output_dir",
        str(work / "out"),
        "--max_steps",
        "3",
        "--batch_size",
        "8",
        "--max_frames",
        "4",
        *common,
        cwd=work,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return work, common, result


def test_training_prints_the_metrics_table_and_saves_everything(trained):
    work, _, result = trained
    assert "| t2v |" in result.stdout and "| v2t |" in result.stdout
    out = work / "out"
    for name in ("model.safetensors", "config.json", "processor_config.json", "tokenizer.json", "metrics.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["num_texts"] == 72 and metrics["num_videos"] == 72
    assert metrics["selection"] == "last step"
    assert 0 <= metrics["metrics"]["t2v"]["R@1"] <= 100


def test_eval_only_from_the_saved_folder_reproduces_the_metrics(trained):
    work, common, _ = trained
    out = work / "out"
    first = json.loads((out / "metrics.json").read_text())["metrics"]
    result = run_train("--eval_only", "--init", str(out), "--output_dir", str(work / "eval"), *common, cwd=work)
    assert result.returncode == 0, result.stderr[-4000:]
    again = json.loads((work / "eval" / "metrics.json").read_text())["metrics"]
    for direction in ("t2v", "v2t"):
        assert again[direction] == pytest.approx(first[direction])
