"""train.py's presets (benchmarks and the lines of the authors' scripts/msrvtt.sh), --help and setup errors."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from modeling_tvr.training.arguments import DataArguments, ModelArguments, TrainArguments, resolve_presets
from modeling_tvr.training.launch import launcher_started_one_of_several
from modeling_tvr.training.presets import (
    CONFIG_DEFAULTS,
    CONFIG_OPTIONS,
    DEFAULTS,
    PRESETS,
    SCRIPT_PRESET_BASE,
    SCRIPT_PRESETS,
)

from .train_runs import TRAIN_SCRIPT, accelerate_launch_train


def resolved(**flags):
    """The three argument dataclasses with `flags` set and the rest filled from the presets."""
    model_args, data_args, train_args = ModelArguments(), DataArguments(), TrainArguments()
    for args in (model_args, data_args, train_args):
        for name, value in flags.items():
            if hasattr(args, name):
                setattr(args, name, value)
    resolve_presets(model_args, data_args, train_args)
    return model_args, data_args, train_args


def test_authors_wti_cdcr_line_sets_their_options_and_recipe():
    model_args, data_args, train_args = resolved(preset="msrvtt-wti-cdcr")
    assert (data_args.benchmark, model_args.clip) == ("msrvtt", "openai/clip-vit-base-patch32")
    assert (model_args.interaction, model_args.wti_arch, model_args.temporal_module) == ("wti", 2, "seqTransf")
    assert (model_args.cdcr, model_args.cdcr_alpha1, model_args.cdcr_alpha2) == (3, 0.14, 0.0)
    assert (train_args.recipe, train_args.authors_world_size, train_args.fp16_clip_matrices) == ("authors", 4, True)
    assert (train_args.epochs, train_args.batch_size, train_args.lr, train_args.coef_lr) == (5, 128, 1e-4, 1e-3)
    assert (data_args.max_words, data_args.max_frames, data_args.video_framerate) == (32, 12, 1)
    assert train_args.output_dir == str(Path("outputs") / "drl-msrvtt-wti-cdcr")


def test_vit_b16_lines_use_b16_and_eight_gpus():
    model_args, _, train_args = resolved(preset="msrvtt-wti-cdcr-vitb16")
    assert model_args.clip == "openai/clip-vit-base-patch16" and train_args.authors_world_size == 8
    assert model_args.cdcr_alpha1 == 0.11


def test_lines_without_cdcr_flags_take_main_py_defaults_except_ti():
    wti, _, _ = resolved(preset="msrvtt-wti")
    assert (wti.cdcr, wti.cdcr_alpha1, wti.cdcr_alpha2) == (3, 1.0, 0.06)
    ti, _, _ = resolved(preset="msrvtt-ti")
    assert ti.cdcr == 0


def test_explicit_flags_win_over_presets():
    model_args, _, train_args = resolved(preset="msrvtt-wti-cdcr", cdcr_alpha1=0.2, recipe="adamw")
    assert model_args.cdcr_alpha1 == 0.2 and train_args.recipe == "adamw"


def test_toy_default_keeps_adamw_and_every_paper_benchmark_the_authors_recipe():
    _, _, toy = resolved()
    assert (toy.recipe, toy.output_dir) == ("adamw", str(Path("outputs") / "drl-toy"))
    for benchmark in ("msrvtt", "msvd", "vatex", "lsmdc", "activitynet", "didemo"):
        _, data_args, train_args = resolved(benchmark=benchmark)
        assert (train_args.recipe, train_args.fp16_clip_matrices) == ("authors", True), benchmark
    _, data_args, _ = resolved(benchmark="didemo")
    assert (data_args.max_words, data_args.max_frames) == (64, 64)


def test_drl_options_default_to_drl_config_and_presets_hold_only_what_differs():
    from dataclasses import fields

    from modeling_tvr import DRLConfig

    config_defaults = {item.name: item.default for item in fields(DRLConfig)}
    model_args, data_args, _ = resolved(benchmark="msrvtt")
    for name in CONFIG_OPTIONS:
        value = getattr(model_args, name) if hasattr(model_args, name) else getattr(data_args, name)
        assert value == config_defaults[name], name
    defaults = {**CONFIG_DEFAULTS, **DEFAULTS}
    for benchmark, settings in PRESETS.items():
        assert [key for key, value in settings.items() if defaults.get(key) == value] == [], benchmark
    script_defaults = {**defaults, **SCRIPT_PRESET_BASE}
    for preset, settings in SCRIPT_PRESETS.items():
        assert [key for key, value in settings.items() if script_defaults.get(key) == value] == [], preset


def test_zero_shot_line_only_evaluates():
    model_args, _, train_args = resolved(preset="msrvtt-clip-zeroshot")
    assert train_args.eval_only and model_args.interaction == "dp" and model_args.temporal_module == "none"
    assert train_args.output_dir == str(Path("outputs") / "eval" / "openai--clip-vit-base-patch32-msrvtt-clip-zeroshot")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_help_describes_every_flag_and_ends_with_presets_and_a_yaml_example(tmp_path):
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0
    options = result.stdout.split("options:")[1].split("Presets (--preset NAME)")[0]
    # Each flag's entry: its first line, then any indented help lines, up to the next flag.
    entries = re.split(r"\n  (?=--)", options.strip())
    undescribed = [entry.split()[0] for entry in entries if entry.startswith("--") and not _help_text(entry)]
    assert undescribed == []
    for flag in ("--interaction", "--cdcr_alpha1", "--epochs", "--lr", "--max_frames"):
        entry = next(entry for entry in entries if entry.startswith(flag + " "))
        assert "preset" in entry, flag  # where the preset fills it, the help says so and gives the default
    # The DRL options' help is DRLConfig's own description, with DRLConfig's default.
    alpha1 = " ".join(next(entry for entry in entries if entry.startswith("--cdcr_alpha1 ")).split())
    assert "Weight of the on-diagonal term of CDCR" in alpha1 and "default 0.11" in alpha1
    epilog = result.stdout.split("Presets (--preset NAME)")[1]
    for name in ("msrvtt-wti-cdcr", "msrvtt-ti-cdcr-vitb16", "msrvtt-clip-zeroshot"):
        assert name in epilog
    assert "python train.py run.yaml" in epilog and "preset: msrvtt-wti-cdcr" in epilog
    assert "--multi_gpu --num_processes 2" in epilog


def _help_text(entry: str) -> str:
    """The help part of one argparse option entry ("--flag METAVAR   help ..." or help on the next lines)."""
    first, *rest = entry.splitlines()
    inline = re.split(r"\s{2,}", first.strip(), maxsplit=1)
    return (inline[1] if len(inline) > 1 else "") + " ".join(line.strip() for line in rest)


def simple_launcher_environment(*launch_args: str) -> dict[str, str]:
    """The environment the installed `accelerate launch` gives the script when its simple launcher runs it."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_simple_launcher_cmd_env

    args, _, _ = _validate_launch_command(launch_command_parser().parse_args([*launch_args, "train.py"]))
    _, environ = prepare_simple_launcher_cmd_env(args)
    return environ


def test_a_cpu_launch_that_started_one_of_several_processes_is_told_by_the_launchers_environment(monkeypatch):
    for name in ("ACCELERATE_USE_CPU", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "PMI_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    common = ["--cpu", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    assert launcher_started_one_of_several(1, simple_launcher_environment(*common, "--num_processes", "2"))
    assert not launcher_started_one_of_several(1, simple_launcher_environment(*common, "--num_processes", "1"))
    # torchrun, as `accelerate launch --multi_gpu` runs it: every process knows the group's size.
    torchrun = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500", "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}
    assert not launcher_started_one_of_several(2, torchrun)
    assert not launcher_started_one_of_several(1, {})  # python train.py


@pytest.mark.slow
def test_cpu_launch_asked_for_two_processes_warns_that_one_started(tmp_path):
    options = ["--data_dir", str(tmp_path / "data"), "--benchmark_options", '{"num_videos": 144}', "--num_workers", "0"]
    options += ["--max_steps", "1", "--batch_size", "8", "--max_frames", "2", "--do_eval", "false"]
    command = accelerate_launch_train("--cpu", "--output_dir", str(tmp_path / "out"), *options)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "asked for several processes but 1 started" in result.stderr
    assert "--multi_gpu --num_processes N" in result.stderr


@pytest.mark.slow
def test_unknown_preset_and_bad_bpe_file_are_one_line_errors(tmp_path):
    result = run("--preset", "msrvtt-nope", cwd=tmp_path)
    assert result.returncode != 0 and "msrvtt-wti-cdcr" in result.stderr and "Traceback" not in result.stderr
    bad = tmp_path / "vocab.txt"
    bad.write_text('{"not": "a merges file"}\n')
    options = [
        "--data_dir",
        str(tmp_path / "data"),
        "--benchmark_options",
        '{"num_videos": 72, "num_validation_videos": 0}',
    ]
    result = run("--clip", str(tmp_path / "ViT-B-32.pt"), "--bpe", str(bad), *options, cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "vocab.txt" in result.stderr
