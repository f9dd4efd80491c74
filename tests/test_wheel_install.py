"""A plain `pip install .` (a wheel, not the editable install the README uses) is enough to train: the package data
(the model-card template) ships, and nothing reaches back into the repository."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wheel")
    # No build isolation: the build backend (setuptools, which torch also requires) is already installed, and an
    # isolated build would download it.
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(folder)]
    result = subprocess.run([*command, str(ROOT)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (built,) = folder.glob("modeling_tvr-*.whl")
    return built


@pytest.fixture(scope="module")
def installed_python(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment holding the wheel; the dependencies (torch, transformers, ...) come from this
    environment's site-packages through a path entry, which does not activate the editable install found there."""
    env = tmp_path_factory.mktemp("env")
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q"]
    result = subprocess.run([*install, str(wheel)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    site_packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site_packages) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def clean_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return {**env, "HF_HUB_OFFLINE": "1"}


def test_the_wheel_ships_every_subpackage_and_the_card_template(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "modeling_tvr/modeling_drl.py",
        "modeling_tvr/search/index.py",
        "modeling_tvr/conversion/state_dict.py",
        "modeling_tvr/training/model_card.py",
        "modeling_tvr/training/model_card_template.md",
        "dataset_builders/toy.py",
        "hub_scripts/handler.py",
    ):
        assert module in names, module
    assert not any(name.startswith(("tests/", "bench/")) for name in names)


def test_the_installed_package_is_the_wheel_not_the_repository(installed_python, tmp_path):
    code = "import modeling_tvr.training.model_card as card, dataset_builders; print(card.__file__, card.TEMPLATE)"
    result = subprocess.run(
        [str(installed_python), "-c", code], cwd=tmp_path, env=clean_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    module_file, template = result.stdout.split()
    environment = installed_python.parents[1]
    assert Path(module_file).is_relative_to(environment) and Path(template).is_relative_to(environment)
    assert Path(template).is_file()


@pytest.mark.slow
def test_train_py_runs_two_steps_and_writes_its_card_against_the_wheel(installed_python, tmp_path):
    # train.py is a script beside the package, not in it: run a copy outside the repository so that its folder on
    # sys.path cannot supply the package.
    shutil.copy(ROOT / "train.py", tmp_path / "train.py")
    options = ["--data_dir", str(tmp_path / "data"), "--benchmark_options", '{"num_videos": 144}']
    options += ["--num_workers", "0", "--max_steps", "2", "--batch_size", "8", "--max_frames", "4"]
    options += ["--eval_batch_size", "24", "--output_dir", str(tmp_path / "out")]
    result = subprocess.run(
        [str(installed_python), "train.py", *options],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 2 and set(metrics["metrics"]) == {"t2v", "v2t"}
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "text-video-retrieval" in card and "## Usage" in card
