"""Fine-tune and evaluate DRL with Accelerate.

    python train.py                                  # the embedded toy benchmark, tiny CLIP from scratch, on CPU
    accelerate launch train.py --benchmark toy       # the same on every process / GPU Accelerate is configured for
    python train.py --eval_only --init outputs/drl-toy   # results go to outputs/eval/drl-toy-toy, not the model
    python train.py --preset msrvtt-wti-cdcr --data_dir data/msrvtt   # one line of the authors' scripts/msrvtt.sh
    python train.py run.yaml                         # every option from a JSON / YAML file
    python train.py --benchmark videofolder --data_dir my_videos --clip openai/clip-vit-base-patch32   # your videos
    python train.py --dataset_name me/my-clips --video_dir my_videos --clip openai/clip-vit-base-patch32

Your own videos: a folder with a metadata.csv (file_name,caption; several rows of one video are several captions;
optional split, start, end columns, or train/ validation/ test/ folders each with its own metadata file), or any
dataset `datasets` loads (Hub id, parquet / csv / json) with a video and a caption column. Without a test split, 10%
of the videos (--test_fraction) are held out as test; the run prints which split is used for what.

Without `--clip` or `--init` the model is a tiny CLIP trained from scratch, with a BPE vocabulary learned from
the training captions (no Hub access needed); otherwise the model starts from a pretrained transformers CLIP
(Hub id or local folder) or a saved DRL folder and uses its tokenizer.
"""

import argparse
import contextlib
import difflib
import importlib.util
import inspect
import json
import logging
import math
import os
import re
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import set_seed
from datasets import DatasetDict
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm
from transformers import HfArgumentParser
from transformers.hf_argparser import HfArg

from modeling_tvr import (
    DRLCLIPTokenizer,
    DRLConfig,
    DRLModel,
    DRLProcessor,
    clip_tokenizer_from_bpe,
)
from modeling_tvr.configuration_drl import CDCR_MODES, INTERACTIONS, TEMPORAL_MODULES, WTI_ARCHS
from modeling_tvr.conversion.checkpoint_files import CheckpointLoadError
from modeling_tvr.conversion.state_dict import OfficialStateDictError
from modeling_tvr.frame_cache import CachedFramesDataset, FrameCache, collate_frames
from modeling_tvr.training.bpe_vocabulary import train_clip_bpe
from modeling_tvr.training.cached_frames import (
    CachedTrainingPairs,
    fill_for_rows,
    model_inputs,
    without_undecodable,
)
from modeling_tvr.training.checkpoints import (
    CheckpointError,
    TrainingPosition,
    complete_checkpoints,
    load_best_weights,
    resume_from_folder,
    save_best_weights,
    save_checkpoint,
)
from modeling_tvr.training.data import (
    OWN_VIDEOS,
    DataSource,
    dataset_label,
    format_split_uses,
    label_slug,
    load_splits,
    split_uses,
)
from modeling_tvr.training.finite import NonFiniteError, NonFiniteGuard, describe_tensors, nonfinite_tensors
from modeling_tvr.training.metrics import dual_softmax, format_metrics_table, retrieval_metrics, retrieval_ranks
from modeling_tvr.training.model_card import write_model_card
from modeling_tvr.training.optimization import (
    RECIPES,
    build_optimizer,
    pre_gather_parameters,
    scale_pre_gather_gradients,
)
from modeling_tvr.training.plots import save_recall_curve

logger = logging.getLogger("train")

# Errors that mean the user's input is wrong, reported as one line before anything trains.
SETUP_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, OfficialStateDictError, CheckpointLoadError)

# The DRLConfig fields that are flags. DRLConfig holds their defaults and descriptions; presets override them.
CONFIG_OPTIONS = (
    "interaction",
    "wti_arch",
    "temporal_module",
    "temporal_layers",
    "cdcr",
    "cdcr_alpha1",
    "cdcr_alpha2",
    "cdcr_lambda",
    "max_words",
    "max_frames",
)
CONFIG_DEFAULTS = {item.name: item.default for item in fields(DRLConfig) if item.name in CONFIG_OPTIONS}
_CONFIG_CHOICES = {
    "interaction": INTERACTIONS,
    "wti_arch": WTI_ARCHS,
    "temporal_module": TEMPORAL_MODULES,
    "cdcr": CDCR_MODES,
}

# The authors' recipe (their main.py and scripts/msrvtt.sh) for what DRLConfig does not hold. With CONFIG_DEFAULTS
# it is what every benchmark and preset starts from.
DEFAULTS = {
    "epochs": 5,
    "batch_size": 128,
    "lr": 1e-4,
    "coef_lr": 1e-3,
    "weight_decay": 0.2,
    "video_framerate": 1,
    "image_size": 224,
    "validate_every_epochs": 1,
    "recipe": "authors",
    "authors_world_size": 4,
    "fp16_clip_matrices": True,
}
# What each benchmark sets beyond the defaults; explicit flags override them.
PRESETS = {
    # A tiny CLIP trained from scratch, where plain AdamW at a high rate is what works.
    "toy": {
        "epochs": 12,
        "batch_size": 32,
        "lr": 2e-3,
        "coef_lr": 1.0,
        "weight_decay": 0.01,
        "max_words": 16,
        "max_frames": 8,
        "video_framerate": 4,
        "image_size": 32,
        "validate_every_epochs": 4,
        "recipe": "adamw",
        "authors_world_size": 1,
        "fp16_clip_matrices": False,
    },
    # The paper's sentence-to-video benchmarks train with the defaults.
    "msrvtt": {},
    "msvd": {},
    "vatex": {},
    "lsmdc": {},
    # Paragraph-to-video benchmarks use 64 words and 64 frames in the field's recipes.
    "activitynet": {"max_words": 64, "max_frames": 64},
    "didemo": {"max_words": 64, "max_frames": 64},
    # Your own videos (and --dataset_name): the paper's recipe, as for msrvtt, when the model starts from a
    # pretrained CLIP (--clip, --init, a --preset); from scratch the toy's (FROM_SCRATCH_PRESETS).
    OWN_VIDEOS: {},
}
# A tiny CLIP trained from scratch learns only with the toy's recipe (small frames, AdamW at a high rate); on one's own
# videos that checks that the data flows through, it does not make a useful model.
FROM_SCRATCH_PRESETS = {OWN_VIDEOS: PRESETS["toy"]}
# main.py's CDCR weights, which apply to the script lines that pass no --cdcr (main.py's cdcr 3 is the default too).
_MAIN_PY_CDCR = {"cdcr_alpha1": 1.0, "cdcr_alpha2": 0.06}
_VIT_B_16 = {"clip": "openai/clip-vit-base-patch16", "authors_world_size": 8}
# One preset per line of the authors' scripts/msrvtt.sh (their cross-transformer `xti` lines aside: not implemented
# here), each holding what its line sets beyond the defaults.
SCRIPT_PRESETS = {
    "msrvtt-clip-zeroshot": {"interaction": "dp", "temporal_module": "none", "eval_only": True, "cdcr": 0},
    "msrvtt-dp": {"interaction": "dp", "temporal_module": "none", **_MAIN_PY_CDCR},
    "msrvtt-dp-seqtransf": {"interaction": "dp", **_MAIN_PY_CDCR},
    # Their TI lines pass no --cdcr either, but main.py's default cdcr 3 needs WTI weights and stops with an error
    # for TI, so the only TI run their script can make is without CDCR.
    "msrvtt-ti": {"interaction": "ti", "cdcr": 0},
    "msrvtt-wti": {**_MAIN_PY_CDCR},
    "msrvtt-dp-cdcr": {"interaction": "dp", "cdcr": 1, "cdcr_alpha1": 0.14},
    "msrvtt-ti-cdcr": {"interaction": "ti", "cdcr": 2, "cdcr_alpha1": 0.16},
    "msrvtt-wti-cdcr": {"cdcr_alpha1": 0.14},
    "msrvtt-ti-vitb16": {"interaction": "ti", "cdcr": 0, **_VIT_B_16},
    "msrvtt-ti-cdcr-vitb16": {"interaction": "ti", "cdcr": 2, "cdcr_alpha1": 0.16, **_VIT_B_16},
    "msrvtt-wti-vitb16": {**_MAIN_PY_CDCR, **_VIT_B_16},
    "msrvtt-wti-cdcr-vitb16": {**_VIT_B_16},
}
_SCRIPT_PRESET_BASE = {"benchmark": "msrvtt", "clip": "openai/clip-vit-base-patch32"}


def preset_settings(benchmark: str | None, preset: str | None, pretrained: bool = False) -> dict:
    """Every setting a run takes unless a flag gives it: the defaults, then the benchmark's, then the named preset's.

    `pretrained`: the model starts from a pretrained CLIP or a saved DRL folder (--clip, --init), which decides the
    recipe of one's own videos (`FROM_SCRATCH_PRESETS`).
    """
    if preset is not None and preset not in SCRIPT_PRESETS:
        raise ValueError(f"Unknown --preset {preset!r}; choose from {', '.join(SCRIPT_PRESETS)}.")
    named = {**_SCRIPT_PRESET_BASE, **SCRIPT_PRESETS[preset]} if preset else {}
    benchmark = benchmark or named.get("benchmark", "toy")
    from_scratch = not (pretrained or named.get("clip"))
    own = FROM_SCRATCH_PRESETS[benchmark] if from_scratch and benchmark in FROM_SCRATCH_PRESETS else {}
    return {**CONFIG_DEFAULTS, **DEFAULTS, **PRESETS.get(benchmark, {}), **own, **named, "benchmark": benchmark}


def _settings_line(name: str, settings: dict) -> str:
    shown = ", ".join(f"{key}={value}" for key, value in settings.items()) or "the defaults"
    return textwrap.fill(shown, width=116, initial_indent=f"  {name:24} ", subsequent_indent=" " * 27)


def _presets_help() -> str:
    # authors_world_size follows from the clip a line sets; listing it would only repeat that.
    lines = ["Presets (--preset NAME), one per line of the authors' scripts/msrvtt.sh, and what each sets:"]
    for name, settings in SCRIPT_PRESETS.items():
        lines.append(
            _settings_line(name, {key: value for key, value in settings.items() if key != "authors_world_size"})
        )
    lines.append("Benchmarks (--benchmark; default toy) and what each sets:")
    lines += [_settings_line(name, settings) for name, settings in PRESETS.items() if name != OWN_VIDEOS]
    lines += [
        f"  {OWN_VIDEOS:24} your own videos (--data_dir DIR with a metadata.csv), and any --dataset_name: with",
        f"  {'':24} --clip or --init the defaults (msrvtt's recipe); without, a tiny CLIP from scratch with the toy's",
        f"  {'':24} settings (it checks that the data flows through; it does not make a useful model)",
    ]
    lines += [
        "Anything not set: the authors' recipe and DRLConfig's defaults (each flag's help gives its default).",
        "",
        "Every option also reads from a YAML or JSON file, `python train.py run.yaml`, for example:",
        "  preset: msrvtt-wti-cdcr",
        "  data_dir: data/msrvtt",
        "  video_dir: data/msrvtt/videos",
        "  output_dir: outputs/drl-msrvtt-b32",
        "  mixed_precision: bf16",
        "Several CPU processes: accelerate launch --multi_gpu --num_processes 2 train.py (or torchrun "
        "--nproc_per_node 2 train.py); `accelerate launch --cpu --num_processes 2` starts only one.",
    ]
    return "\n".join(lines)


def _config_descriptions() -> dict[str, str]:
    """Each DRLConfig field's description from the `Args:` section of its docstring, on one line."""
    entries = re.finditer(
        r"^    (\w+) \(.*\):\n((?:        .+\n?)+)", inspect.cleandoc(DRLConfig.__doc__), re.MULTILINE
    )
    return {entry.group(1): " ".join(entry.group(2).split()) for entry in entries}


_CONFIG_DESCRIPTIONS = _config_descriptions()


def config_flag(name: str) -> Any:
    """The flag of DRLConfig field `name`: unset unless given, so the preset or else DRLConfig's default applies."""
    description = _CONFIG_DESCRIPTIONS[name].replace("%", "%%")
    metadata = {"choices": _CONFIG_CHOICES[name]} if name in _CONFIG_CHOICES else None
    return HfArg(default=None, help=f"{description} (preset; default {CONFIG_DEFAULTS[name]})", metadata=metadata)


def preset_flag(name: str, help: str) -> Any:
    """A flag that the preset fills when unset, with the default of the authors' recipe in its help."""
    return HfArg(default=None, help=f"{help} (preset; default {DEFAULTS[name]})")


def processes_asked_of_launcher(launcher_argv: list[str]) -> int | None:
    """The process count an `accelerate launch ... --num_processes N` command line asked for, if it is one."""
    if "launch" not in launcher_argv:
        return None
    for index, argument in enumerate(launcher_argv):
        for flag in ("--num_processes", "--num-processes"):
            if argument == flag and index + 1 < len(launcher_argv) and launcher_argv[index + 1].isdigit():
                return int(launcher_argv[index + 1])
            if argument.startswith(flag + "=") and argument.split("=", 1)[1].isdigit():
                return int(argument.split("=", 1)[1])
    return None


def parent_command_line() -> list[str]:
    """The command line of the process that started this one (Linux; empty elsewhere)."""
    try:
        raw = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


@dataclass
class ModelArguments:
    """The model to start from and the DRL options."""

    clip: str | None = field(
        default=None,
        metadata={
            "help": "pretrained CLIP: Hub id, local transformers folder or OpenAI .pt (with --bpe); "
            "default: a tiny CLIP from scratch (the script presets set OpenAI's ViT-B/32 or B/16)"
        },
    )
    init: str | None = field(default=None, metadata={"help": "a saved DRL folder (model + processor) to start from"})
    bpe: str | None = field(default=None, metadata={"help": "OpenAI's bpe_simple_vocab_16e6.txt.gz for the tokenizer"})
    interaction: str | None = config_flag("interaction")
    wti_arch: int | None = config_flag("wti_arch")
    temporal_module: str | None = config_flag("temporal_module")
    temporal_layers: int | None = config_flag("temporal_layers")
    cdcr: int | None = config_flag("cdcr")
    cdcr_alpha1: float | None = config_flag("cdcr_alpha1")
    cdcr_alpha2: float | None = config_flag("cdcr_alpha2")
    cdcr_lambda: float | None = config_flag("cdcr_lambda")
    image_size: int | None = preset_flag("image_size", "frame size of a from-scratch model")
    patch_size: int | None = field(default=None, metadata={"help": "ViT patch of a from-scratch model (image / 4)"})


@dataclass
class DataArguments:
    """The benchmark or your own videos, where their files are, and how captions and videos are sampled."""

    benchmark: str | None = field(default=None, metadata={"help": f"{', '.join(PRESETS)} (default toy)"})
    preset: str | None = field(
        default=None, metadata={"help": "a line of the authors' scripts/msrvtt.sh by name (list below)"}
    )
    benchmark_options: str | None = field(
        default=None, metadata={"help": "JSON of builder options, e.g. '{\"num_videos\": 720}' for the toy benchmark"}
    )
    data_dir: str | None = field(
        default=None,
        metadata={
            "help": f"the benchmark's annotation folder (toy: a cache; {OWN_VIDEOS}: the folder of metadata.csv)"
        },
    )
    video_dir: str | None = field(
        default=None,
        metadata={
            "help": "where the videos are, at any depth (default data_dir); with --dataset_name the folder its "
            "relative video paths start from"
        },
    )
    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "instead of --benchmark: any dataset `datasets` loads with a video and a caption column (a Hub "
            "id, a parquet / csv / json file or a folder of them)"
        },
    )
    dataset_config: str | None = field(default=None, metadata={"help": "with --dataset_name: its configuration"})
    video_column: str | None = field(
        default=None, metadata={"help": "your own videos: the column of video paths (default: video, file_name, ...)"}
    )
    caption_column: str | None = field(
        default=None, metadata={"help": "your own videos: the column of captions (default: caption, text, ...)"}
    )
    test_fraction: float | None = field(
        default=None,
        metadata={
            "help": "your own videos without a test split: the share of the videos held out as test, chosen by video "
            "and the same on every run (default 0.1, at least one video; 0: none)"
        },
    )
    missing_videos: str | None = field(
        default=None,
        metadata={
            "help": "videos the annotations name but that are not there: error (default) or skip (drop their rows "
            "with a warning)",
            "choices": ["error", "skip"],
        },
    )
    max_words: int | None = config_flag("max_words")
    max_frames: int | None = config_flag("max_frames")
    video_framerate: float | None = preset_flag("video_framerate", "frames sampled per second")
    num_workers: int = field(default=2, metadata={"help": "DataLoader workers that decode videos (default 2)"})
    frame_cache: str | None = field(
        default=None,
        metadata={
            "help": "a frame cache folder: every clip the run reads is decoded once into it (what is missing, on first "
            "use; a changed file or frame setting is decoded again), then training and evaluation read its uint8 "
            "frames, normalised on the model's device; a clip that cannot be decoded follows --missing_videos "
            "(`python -m dataset_builders BENCHMARK --cache-frames DIR` fills it ahead of time)"
        },
    )


@dataclass
class TrainArguments:
    """The optimisation, checkpoints, evaluation and outputs of the run."""

    output_dir: str | None = field(
        default=None,
        metadata={
            "help": "where the model, metrics and card go; default outputs/drl-<preset or benchmark>, and for "
            "--eval_only outputs/eval/<init name>-<benchmark> (never the evaluated model's own folder)"
        },
    )
    recipe: str | None = preset_flag(
        "recipe", f"optimiser recipe, one of {RECIPES}: the authors' BertAdam (paper benchmarks) or AdamW (toy)"
    )
    authors_world_size: int | None = preset_flag(
        "authors_world_size",
        "with --recipe authors: the GPU count of the authors' run whose gradient mix to reproduce (8 for ViT-B/16; "
        "1 turns it off)",
    )
    fp16_clip_matrices: bool | None = preset_flag(
        "fp16_clip_matrices",
        "with --recipe authors: hold and update CLIP's matrices in fp16 as the authors' GPU runs do",
    )
    epochs: int | None = preset_flag("epochs", "training epochs")
    max_steps: int = field(default=-1, metadata={"help": "stop after N optimiser steps (-1: the epochs decide)"})
    batch_size: int | None = preset_flag("batch_size", "global batch over all processes")
    eval_batch_size: int = field(default=64, metadata={"help": "batch per process when encoding for evaluation"})
    lr: float | None = preset_flag("lr", "learning rate of the new modules")
    coef_lr: float | None = preset_flag("coef_lr", "learning-rate factor of the CLIP parameters")
    weight_decay: float | None = preset_flag("weight_decay", "weight decay")
    warmup_ratio: float = field(default=0.1, metadata={"help": "share of the run spent warming up (default 0.1)"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "global gradient-norm clip (default 1.0)"})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "micro-batches per optimiser step"})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "recompute activations to save memory"})
    mixed_precision: str = field(default="no", metadata={"help": "no (default), fp16 or bf16"})
    seed: int = field(default=42, metadata={"help": "seed of weights, data order and sampling (default 42)"})
    checkpointing_steps: int = field(default=0, metadata={"help": "save a resumable checkpoint every N steps (0: off)"})
    resume: bool = field(default=False, metadata={"help": "continue from output_dir/checkpoints/latest"})
    push_to_hub: str | None = field(default=None, metadata={"help": "Hub repo id to push the final folder to"})
    log_every: int = field(default=10, metadata={"help": "log loss and throughput every N steps"})
    validate_every_epochs: int | None = preset_flag(
        "validate_every_epochs", "evaluate on the validation split (if any) every N epochs to pick the best"
    )
    do_eval: bool = field(default=True, metadata={"help": "evaluate on the test split after training"})
    eval_only: bool = field(default=False, metadata={"help": "only evaluate --init (or --clip): no training"})
    dsl: bool = field(default=False, metadata={"help": "also report dual-softmax re-normalised metrics"})


def resolve_presets(model_args: ModelArguments, data_args: DataArguments, train_args: TrainArguments) -> None:
    """Fills every option left unset with the named preset, then the benchmark's, then the defaults."""
    check_data_options(data_args)
    pretrained = bool(model_args.clip or model_args.init)
    preset = preset_settings(
        OWN_VIDEOS if data_args.dataset_name else data_args.benchmark, data_args.preset, pretrained
    )
    if data_args.dataset_name:
        del preset["benchmark"]  # a --dataset_name run has no benchmark; it takes the recipe of one's own videos
    for args in (model_args, data_args, train_args):
        for item in fields(args):
            if getattr(args, item.name) is None and item.name in preset:
                setattr(args, item.name, preset[item.name])
    train_args.eval_only = train_args.eval_only or bool(preset.get("eval_only"))
    if train_args.recipe not in RECIPES:
        raise ValueError(f"--recipe must be one of {RECIPES}, got {train_args.recipe!r}.")
    if train_args.output_dir is None:
        train_args.output_dir = default_output_dir(model_args, data_args, train_args)


# The flags of one's own videos, passed to the loader as the options of the same names when given.
OWN_DATA_FLAGS = ("video_column", "caption_column", "test_fraction")


def check_data_options(data_args: DataArguments) -> None:
    """Refuses (ValueError: a usage error) data options that contradict each other or do not apply to the data."""
    if data_args.dataset_name and data_args.benchmark:
        raise ValueError("--dataset_name and --benchmark both name the data; pass one of them.")
    if data_args.dataset_config and not data_args.dataset_name:
        raise ValueError("--dataset_config applies only with --dataset_name.")
    if data_args.benchmark == OWN_VIDEOS and not data_args.data_dir:
        raise ValueError(
            f"--benchmark {OWN_VIDEOS} needs --data_dir DIR: the folder of your videos and their metadata.csv."
        )
    own = data_args.dataset_name or data_args.benchmark == OWN_VIDEOS
    given = [f"--{flag}" for flag in OWN_DATA_FLAGS if getattr(data_args, flag) is not None]
    if given and not own:
        verb = "applies" if len(given) == 1 else "apply"
        raise ValueError(
            f"{', '.join(given)} {verb} only to your own videos (--benchmark {OWN_VIDEOS} or --dataset_name)."
        )
    if data_args.missing_videos and (data_args.benchmark or "toy") == "toy" and not data_args.dataset_name:
        raise ValueError("--missing_videos does not apply to the toy benchmark (its videos are generated).")


def data_source(data_args: DataArguments) -> DataSource:
    """Where the run's data comes from: `--benchmark_options` (JSON) and the own-data flags as builder options."""
    options = json.loads(data_args.benchmark_options) if data_args.benchmark_options else {}
    if not isinstance(options, dict):
        raise ValueError(f"--benchmark_options must be a JSON object, got {data_args.benchmark_options!r}")
    for flag in (*OWN_DATA_FLAGS, "missing_videos"):
        if getattr(data_args, flag) is not None:
            options[flag] = getattr(data_args, flag)
    return DataSource(
        benchmark=data_args.benchmark,
        data_dir=data_args.data_dir,
        video_dir=data_args.video_dir,
        dataset_name=data_args.dataset_name,
        dataset_config=data_args.dataset_config,
        options=options,
    )


def build_parser() -> HfArgumentParser:
    """The command line: every option spelled out (no abbreviations), `--no_X` flags with help of their own."""
    parser = HfArgumentParser(
        (ModelArguments, DataArguments, TrainArguments),
        description=__doc__,
        epilog=_presets_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # argparse would take `--epoch` for `--epochs`; a typo must be an error, not a different option.
        allow_abbrev=False,
    )
    for action in parser._actions:
        # HfArgumentParser gives `--no_X` the help of `--X`, which then reads as if both did the same.
        negative = next((option for option in action.option_strings if option.startswith("--no_")), None)
        if negative and negative == f"--no_{action.dest}":
            action.help = f"the opposite of --{action.dest}: the same as --{action.dest} false"
    return parser


def _did_you_mean(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def parse_command_line(parser: HfArgumentParser, argv: list[str]) -> tuple:
    """The dataclasses of `argv`; an unknown option is a usage error (exit 2) suggesting the closest known one."""
    *parsed, unknown = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    if unknown:
        # The underscore spellings only: a hyphen spelling would otherwise tie with its twin.
        options = [option for action in parser._actions for option in action.option_strings if "-" not in option[2:]]
        flag = next((argument.split("=")[0] for argument in unknown if argument.startswith("-")), "")
        parser.error(f"unrecognized arguments: {' '.join(unknown)}{_did_you_mean(flag, options) if flag else ''}")
    return tuple(parsed)


def parse_settings_file(parser: HfArgumentParser, path: str) -> tuple:
    """The dataclasses of a JSON / YAML settings file; an unreadable file or an unknown key is a usage error."""
    try:
        text = Path(path).read_text()
        settings = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        parser.error(f"cannot read {path}: {error}")
    if not isinstance(settings, dict):
        parser.error(f"{path} must hold option: value pairs, not {type(settings).__name__}")
    known = [item.name for dataclass in parser.dataclass_types for item in fields(dataclass)]
    for key in settings:
        if key not in known:
            parser.error(f"unknown option {key!r} in {path}{_did_you_mean(str(key), known)}")
    return parser.parse_dict(settings)


def parse_arguments(
    parser: HfArgumentParser, argv: list[str] | None = None
) -> tuple[ModelArguments, DataArguments, TrainArguments]:
    """The command line's arguments, or a JSON / YAML file's when it is the only argument, presets resolved."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith((".json", ".yaml", ".yml")):
        parsed = parse_settings_file(parser, argv[0])
    else:
        parsed = parse_command_line(parser, argv)
    model_args, data_args, train_args = parsed
    try:
        resolve_presets(model_args, data_args, train_args)
    except ValueError as error:
        parser.error(str(error))
    return model_args, data_args, train_args


def default_output_dir(model_args: ModelArguments, data_args: DataArguments, train_args: TrainArguments) -> str:
    """outputs/drl-<preset or data>; an evaluation goes to outputs/eval/<model>-<preset or data>, never into the
    evaluated model's folder or another run's. The data is the benchmark's name, or for one's own videos the folder's
    name or the dataset's (`dataset_label`), so that two folders of videos do not share one output folder."""
    data = data_args.preset or label_slug(data_label(data_args))
    if train_args.eval_only:
        source = model_args.init or model_args.clip or "model"
        name = Path(source).name if Path(source).exists() else source.replace("/", "--")
        return str(Path("outputs") / "eval" / f"{name}-{data}")
    return str(Path("outputs") / f"drl-{data}")


def data_label(data_args: DataArguments) -> str:
    """The name of the run's data in its outputs (`dataset_label`); from the names alone, so never fails on options."""
    names = DataSource(data_args.benchmark, data_args.data_dir, None, data_args.dataset_name, data_args.dataset_config)
    return dataset_label(names)


class EpochShuffle(Sampler[int]):
    """A permutation fixed by (seed, epoch), so a resumed run sees exactly the batches it would have seen.

    The epoch is set with `use_epoch`, not `set_epoch`: Accelerate's loaders call `set_epoch` with their own
    iteration count, which restarts at 0 in a resumed run.
    """

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def use_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


class CaptionedVideos(Dataset):
    """(caption, video) pairs; videos are paths or (path, start, end) segments decoded in the loader workers."""

    def __init__(self, rows):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        row = self.rows[index]
        video = row["video"] if row["start"] is None else (row["video"], row["start"], row["end"])
        return row["caption"], video


# The vocabulary a from-scratch model learns from the training captions, written into the output folder.
VOCABULARY_FILE = "bpe_vocab.txt.gz"


def build_tokenizer(model_args: ModelArguments, train_rows, output_dir: Path):
    """OpenAI's BPE file if given, else the CLIP's own tokenizer, else a vocabulary learned from the captions."""
    if model_args.bpe:
        return clip_tokenizer_from_bpe(model_args.bpe)
    if model_args.clip:
        # CLIP's own vocabulary, with OpenAI's text clean-up that transformers' CLIPTokenizer skips.
        return DRLCLIPTokenizer.from_pretrained(model_args.clip)
    # From scratch: a small vocabulary in CLIP's format learned from the training captions.
    return train_clip_bpe((row["caption"] for row in train_rows), output_dir / VOCABULARY_FILE, num_merges=2000)


def model_options(model_args: ModelArguments, data_args: DataArguments) -> dict:
    """The DRLConfig options that flags set."""
    flags = {**asdict(model_args), **asdict(data_args)}
    return {name: flags[name] for name in CONFIG_OPTIONS}


def build_model(model_args: ModelArguments, data_args: DataArguments, tokenizer) -> DRLModel:
    """DRL on the pretrained transformers CLIP `--clip`, or on a tiny CLIP to train from scratch."""
    options = model_options(model_args, data_args)
    if model_args.clip:
        return DRLModel.from_clip(model_args.clip, **options)
    width = 128
    text_config = {
        "vocab_size": len(tokenizer),
        "hidden_size": width,
        "intermediate_size": 4 * width,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": max(data_args.max_words, data_args.max_frames),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": 0,
    }
    vision_config = {
        "hidden_size": width,
        "intermediate_size": 4 * width,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": model_args.image_size,
        "patch_size": model_args.patch_size or max(1, model_args.image_size // 4),
    }
    config = DRLConfig(text_config=text_config, vision_config=vision_config, projection_dim=width, **options)
    return DRLModel(config)


@torch.no_grad()
def evaluate(
    model,
    processor,
    rows,
    accelerator: Accelerator,
    args: TrainArguments,
    num_workers: int,
    frames: FrameCache | None = None,
) -> dict:
    """Encodes each test caption and each distinct video once, scores them in chunks, computes the metrics.

    `frames`: a filled frame cache to read the videos' uint8 frames from (normalised on the device) instead of
    decoding them.
    """
    model.eval()
    unwrapped = accelerator.unwrap_model(model)
    videos, video_index, text_to_video = [], {}, []
    for row in rows:
        key = (row["video"], row["start"], row["end"])
        if key not in video_index:
            video_index[key] = len(videos)
            videos.append(row["video"] if row["start"] is None else key)
        text_to_video.append(video_index[key])
    captions = [row["caption"] for row in rows]

    def encode(items, collate, encoder):
        loader = DataLoader(items, batch_size=args.eval_batch_size, collate_fn=collate, num_workers=num_workers)
        features, masks = [], []
        for batch in tqdm(accelerator.prepare(loader), disable=not accelerator.is_main_process, leave=False):
            feats, mask = encoder(batch)
            features.append(accelerator.gather_for_metrics(feats))
            masks.append(accelerator.gather_for_metrics(mask))
        return torch.cat(features), torch.cat(masks)

    text, text_mask = encode(
        captions,
        lambda batch: processor(text=batch),
        lambda b: (
            unwrapped.get_text_features(b["input_ids"], b["attention_mask"]).text_embeds,
            b["attention_mask"],
        ),
    )
    if frames is not None:
        video_items, video_collate = CachedFramesDataset(frames, videos), collate_frames
    else:
        video_items, video_collate = videos, lambda batch: processor.video_processor(batch)

    def encode_videos(batch):
        inputs = model_inputs(batch, processor.video_processor)
        features = unwrapped.get_video_features(inputs["pixel_values_videos"], inputs["video_mask"]).video_embeds
        return features, inputs["video_mask"]

    video, video_mask = encode(video_items, video_collate, encode_videos)
    similarity = unwrapped.similarity(text, text_mask, video, video_mask).float().cpu()
    results = {
        "metrics": retrieval_metrics(similarity, text_to_video),
        "ranks": retrieval_ranks(similarity, text_to_video),
    }
    if args.dsl:
        results["metrics_dsl"] = retrieval_metrics(dual_softmax(similarity), text_to_video)
    results.update({"num_texts": len(captions), "num_videos": len(videos)})
    return results


def load_openai_clip(path: str) -> dict[str, torch.Tensor]:
    """
    The state dict of an OpenAI CLIP file (TorchScript archive or plain state dict), read without running code from
    it: see `modeling_tvr.conversion.checkpoint_files` (shared with `hub_scripts/convert_official_checkpoint.py`).
    """
    from modeling_tvr.conversion.checkpoint_files import load_official_state_dict

    return load_official_state_dict(path)


def build_model_and_processor(model_args, data_args, train_rows, output_dir: Path, accelerator: Accelerator):
    """The model to train or evaluate and its processor: from `--init`, an OpenAI CLIP file, or `build_model`."""
    if model_args.init:
        try:
            return DRLModel.from_pretrained(model_args.init), DRLProcessor.from_pretrained(model_args.init)
        except OSError as error:  # transformers' "not a folder, not reachable on the Hub": a wrong --init
            reason = str(error).splitlines()[0]
            raise ValueError(
                f"--init {model_args.init} is not a saved DRL folder or a reachable Hub repo: {reason}"
            ) from error
    is_openai_file = bool(model_args.clip) and Path(model_args.clip).suffix in (".pt", ".pth", ".bin")
    if is_openai_file and not model_args.bpe:
        raise ValueError("--clip with an OpenAI .pt file needs --bpe bpe_simple_vocab_16e6.txt.gz for the tokenizer.")
    with accelerator.main_process_first():
        tokenizer = build_tokenizer(model_args, train_rows, output_dir) if not is_openai_file else None
    if is_openai_file:
        tokenizer = clip_tokenizer_from_bpe(model_args.bpe)
        model = DRLModel.from_official_state_dict(
            load_openai_clip(model_args.clip), **model_options(model_args, data_args)
        )
    else:
        model = build_model(model_args, data_args, tokenizer)
    return model, DRLProcessor.for_model(model.config, tokenizer, video_framerate=data_args.video_framerate)


StepCallback = Callable[[TrainingPosition], None]


LossObserver = Callable[[torch.Tensor, torch.Tensor | None], None]


def training_step(
    model,
    batch,
    optimizer,
    scheduler,
    accelerator: Accelerator,
    args: TrainArguments,
    pre_gather,
    observe: LossObserver | None = None,
):
    """One (micro-)batch: loss, backward, clipping and, when gradients are synchronised, the optimizer step.

    `pre_gather`: with the authors' recipe and `authors_world_size` N > 1, the parameters whose gradients are scaled by
    1/N before the global clip (see `prepare_training`); otherwise empty.
    `observe`: given the loss and the total gradient norm the clip computed (None on a micro-batch without a step,
    and under fp16's GradScaler, which expects non-finite gradients while it tunes its scale and skips those steps
    itself); the training loop's `NonFiniteGuard` watches them.
    """
    grad_norm = None
    with accelerator.accumulate(model):
        out = model(**batch, return_loss=True)
        accelerator.backward(out.loss)
        if accelerator.sync_gradients:
            if pre_gather:
                scale_pre_gather_gradients(pre_gather, 1.0 / args.authors_world_size)
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        if scheduler is not None and accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
            scheduler.step()
        optimizer.zero_grad()
    if accelerator.sync_gradients:
        with torch.no_grad():  # the authors clamp the temperature after every step (no lower bound)
            accelerator.unwrap_model(model).logit_scale.clamp_(max=math.log(100))
    if observe is not None:
        observe(out.loss, grad_norm if getattr(accelerator, "scaler", None) is None else None)
    return out


def restore_position(accelerator: Accelerator, checkpoints: Path, resume: bool, scheduler=None) -> TrainingPosition:
    """The position to start from: the latest loadable checkpoint's with `resume`, else the beginning.

    Without `resume`, checkpoints of an earlier run are left for this run's saves to replace, with a warning, so that
    forgetting `--resume` does not go unnoticed.
    """
    if not resume:
        earlier = complete_checkpoints(checkpoints)
        if earlier:
            logger.warning(
                "%s holds checkpoints of an earlier run (up to %s); this run replaces them as it saves its own. Pass "
                "--resume true to continue that run instead.",
                checkpoints,
                earlier[-1].name,
            )
        return TrainingPosition()
    try:
        resumed = resume_from_folder(accelerator, checkpoints, scheduler)
    except CheckpointError as error:
        raise SystemExit(f"error: {error}") from None
    if resumed is None:
        logger.info("No checkpoint in %s: starting from scratch.", checkpoints)
        return TrainingPosition()
    position, checkpoint = resumed
    logger.info("Resumed from %s at step %d.", checkpoint, position.step)
    return position


def diverged(what: str, args: TrainArguments) -> str:
    """The one-line error of a diverged run: what was found, what happened to the outputs, and what to change."""
    return (
        f"{what}: training diverged and was stopped; no checkpoint, best or final model holds a non-finite weight. "
        f"Lower --lr (now {args.lr:g}), e.g. ten times, and rerun."
    )


class TrainingLoop:
    """The epochs of one run over a prepared model, optimiser and loader: steps, logging, checkpoints and the choice
    of the best epoch on the validation split. Everything a resumed run needs to continue exactly is in
    `self.position` (saved with each checkpoint) or on disk.

    Args:
        validate: scores the model on the validation split (higher is better); None when there is none.
        learning_rates: the learning rates of the next step, for the logs.
        callbacks: called with the position after every optimiser step, once its checkpoint (if one is due) is
            written; a callback that raises or ends the process stops the run there.
        to_model_inputs: turns a loader batch (on the device) into the model's inputs: a frame cache's uint8 frames
            into pixel values (`model_inputs`); None: batches are the inputs.
    """

    def __init__(
        self,
        model,
        optimizer,
        scheduler,
        loader: DataLoader,
        sampler: EpochShuffle,
        accelerator: Accelerator,
        args: TrainArguments,
        *,
        total_steps: int,
        pre_gather: list,
        validate: Callable[[], float] | None,
        learning_rates: Callable[[], list[float]],
        callbacks: Sequence[StepCallback] = (),
        to_model_inputs: Callable[[Any], Any] | None = None,
    ):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.to_model_inputs = to_model_inputs
        self.loader, self.sampler = loader, sampler
        self.accelerator, self.args, self.total_steps, self.pre_gather = accelerator, args, total_steps, pre_gather
        self.validate, self.learning_rates, self.callbacks = validate, learning_rates, callbacks
        self.checkpoints = Path(args.output_dir) / "checkpoints"
        self.position = TrainingPosition()
        self.samples = 0
        self.guard = NonFiniteGuard()

    def run(self) -> dict:
        """Trains from `self.position` to the step budget; returns what metrics.json records about training.

        Raises:
            NonFiniteError: the loss, a gradient or the weights stopped being finite (nothing non-finite was saved).
        """
        self.progress = tqdm(
            total=self.total_steps, initial=self.position.step, disable=not self.accelerator.is_main_process
        )
        self.started = time.perf_counter()
        try:
            while self.position.step < self.total_steps:
                if self.train_epoch():
                    self.end_epoch()
        finally:
            self.progress.close()
        return self.finish()

    def train_epoch(self) -> bool:
        """Trains on the rest of the current epoch, or until the step budget is spent; True if the epoch ended."""
        self.sampler.use_epoch(self.position.epoch)
        self.model.train()
        done = self.position.batch_in_epoch
        for batch in self.accelerator.skip_first_batches(self.loader, done) if done else self.loader:
            self.position.batch_in_epoch += 1
            if self.to_model_inputs is not None:
                batch = self.to_model_inputs(batch)
            out = training_step(
                self.model,
                batch,
                self.optimizer,
                self.scheduler,
                self.accelerator,
                self.args,
                self.pre_gather,
                observe=self.observe,
            )
            self.samples += batch["input_ids"].shape[0] * self.accelerator.num_processes
            if self.accelerator.sync_gradients:
                self.end_step(out)
                if self.position.step >= self.total_steps:
                    break
        return self.position.batch_in_epoch >= len(self.loader)

    def observe(self, loss: torch.Tensor, grad_norm: torch.Tensor | None) -> None:
        """Hands the loss and gradient norm of the step in progress to the guard (no device sync)."""
        self.guard.observe(self.position.step + 1, loss, grad_norm)

    def stop_if_diverged(self) -> None:
        """Stops the run if a step so far had a non-finite loss or gradient norm (one device sync)."""
        step = self.guard.first_bad_step()
        if step is not None:
            raise NonFiniteError(
                diverged(
                    f"the loss or gradient norm was NaN or infinite at step {step} of {self.total_steps}", self.args
                )
            )

    def ensure_finite(self) -> None:
        """Stops the run before anything is saved, validated or selected if the loss, a gradient or a weight is not
        finite; the weights are checked too because an update can overflow with finite gradients (fp16 matrices)."""
        self.stop_if_diverged()
        bad = nonfinite_tensors(self.accelerator.unwrap_model(self.model).state_dict())
        if bad:
            what = f"the weights hold NaN or infinite values after step {self.position.step} ({describe_tensors(bad)})"
            raise NonFiniteError(diverged(what, self.args))

    def end_step(self, out) -> None:
        """After an optimiser step: progress, logs, the periodic checkpoint, then the callbacks."""
        self.position.step += 1
        self.progress.update(1)
        if self.position.step % self.args.log_every == 0 or self.position.step == self.total_steps:
            self.log(out)
        if self.args.checkpointing_steps and self.position.step % self.args.checkpointing_steps == 0:
            self.save_checkpoint()
        for callback in self.callbacks:
            callback(self.position)

    def save_checkpoint(self) -> None:
        """A resumable checkpoint of finite weights only, so that `latest` never names a diverged state."""
        self.ensure_finite()
        save_checkpoint(self.accelerator, self.checkpoints, self.position, scheduler=self.scheduler)

    def log(self, out) -> None:
        """The step's loss, CDCR loss, learning rate and throughput, to the progress bar and the trackers; stops a
        diverged run first (logging reads the loss from the device anyway, so the guard's read costs no extra wait)."""
        self.stop_if_diverged()
        throughput = self.samples / (time.perf_counter() - self.started)
        self.progress.set_postfix(loss=f"{out.loss.item():.3f}", samples_per_s=f"{throughput:.1f}")
        self.accelerator.log(
            {
                "loss": out.loss.item(),
                "cdcr_loss": out.cdcr_loss.item(),
                "lr": max(self.learning_rates()),
                "samples_per_s": throughput,
            },
            step=self.position.step,
        )

    def end_epoch(self) -> None:
        """After a complete epoch: validation and model selection when due, and a checkpoint at the epoch boundary."""
        self.position.epoch += 1
        self.position.batch_in_epoch = 0
        if self.validate is not None and self.position.epoch % self.args.validate_every_epochs == 0:
            self.ensure_finite()  # a diverged model is neither scored nor kept as the best
            self.select(self.validate())
        if self.args.checkpointing_steps:
            self.save_checkpoint()

    def select(self, score: float) -> None:
        """Keeps the model as the best so far if `score` beats every earlier validation (the first one always does).

        The best weights go to disk and their score and epoch into the position, so they cost no memory and a
        resumed run ends with the same choice.
        """
        logger.info("epoch %d: validation t2v R@1 %.1f", self.position.epoch, score)
        if self.position.best_score is None or score > self.position.best_score:
            save_best_weights(self.accelerator, self.checkpoints, self.model)
            self.position.best_score, self.position.best_epoch = score, self.position.epoch

    def finish(self) -> dict:
        """Loads the best epoch's weights, if a validation chose one, and summarises the run."""
        self.ensure_finite()  # a run that diverged after its best epoch still stops: its recipe needs changing
        elapsed = time.perf_counter() - self.started
        summary = {
            "steps": self.position.step,
            "train_seconds": round(elapsed, 1),
            "samples_per_s": round(self.samples / elapsed, 1),
        }
        if self.position.best_epoch is not None:
            load_best_weights(self.accelerator, self.checkpoints, self.model)
            summary["selection"] = (
                f"best epoch on validation t2v R@1: epoch {self.position.best_epoch} ({self.position.best_score:.1f})"
            )
        else:
            summary["selection"] = "last step (no validation split)"
        logger.info("Trained %d steps in %.0f s (%.1f samples/s).", self.position.step, elapsed, self.samples / elapsed)
        return summary


def train_loader(
    processor: DRLProcessor,
    train_rows,
    accelerator: Accelerator,
    data_args,
    train_args,
    frames: FrameCache | None = None,
) -> DataLoader:
    """Batches of the training pairs in an order fixed by (seed, epoch), each process taking its share of a batch.

    `frames`: a filled frame cache; its batches then carry uint8 `video_frames` for `model_inputs` to normalise on the
    device, in place of `pixel_values_videos` made in the loader.
    """

    def collate(batch):
        captions, videos = zip(*batch, strict=True)
        return processor(text=list(captions), videos=list(videos))

    if frames is not None:
        pairs = CachedTrainingPairs(train_rows, frames)
        dataset, collate = pairs, pairs.collate(lambda captions: processor(text=captions))
    else:
        dataset = CaptionedVideos(train_rows)
    return DataLoader(
        dataset,
        batch_size=train_args.batch_size // accelerator.num_processes,
        sampler=EpochShuffle(len(train_rows), train_args.seed),
        drop_last=True,
        collate_fn=collate,
        num_workers=data_args.num_workers,
        persistent_workers=data_args.num_workers > 0,
    )


def prepare_training(
    model,
    processor: DRLProcessor,
    train_rows,
    validation_rows,
    accelerator: Accelerator,
    data_args: DataArguments,
    train_args: TrainArguments,
    callbacks: Sequence[StepCallback] = (),
    frames: FrameCache | None = None,
) -> TrainingLoop:
    """Builds the loader and optimiser, hands them to Accelerate, and restores the position when resuming.

    `frames`: a filled frame cache that training and validation read instead of decoding.
    """
    loader = train_loader(processor, train_rows, accelerator, data_args, train_args, frames)
    sampler = loader.sampler  # still the one Accelerate's loader draws from, to set each epoch's order
    # Accelerate deals the batches out between the processes: an epoch is the prepared loader's length, whereas the
    # loader as built counts every process's batches (N processes would otherwise train N times the epochs).
    loader = accelerator.prepare(loader)
    steps_per_epoch = math.ceil(len(loader) / train_args.gradient_accumulation_steps)
    total_steps = train_args.max_steps if train_args.max_steps > 0 else train_args.epochs * steps_per_epoch
    optimizer, scheduler = build_optimizer(
        model,
        lr=train_args.lr,
        coef_lr=train_args.coef_lr,
        weight_decay=train_args.weight_decay,
        warmup_proportion=train_args.warmup_ratio,
        total_steps=total_steps,
        recipe=train_args.recipe,
        fp16_clip_matrices=train_args.recipe == "authors" and bool(train_args.fp16_clip_matrices),
    )
    # The authors' N processes each compute the loss of the gathered batch, but back-propagate only their own slice
    # of the gathered features, and DistributedDataParallel averages: the towers and the temporal module (before the
    # gather) get the full-batch gradient / N, the WTI heads and logit_scale (after it) the full-batch gradient. Adam
    # barely sees a scale, but the global clip at 1.0 acts on that mix, so it is reproduced here whatever number of
    # processes runs (this package's gather gives every process the full-batch gradient).
    scale_gradients = train_args.recipe == "authors" and train_args.authors_world_size > 1
    pre_gather = pre_gather_parameters(model) if scale_gradients else []
    # Bound before `prepare` wraps them: Accelerate's optimizer wrapper does not forward BertAdam's `current_lrs`.
    learning_rates = scheduler.get_last_lr if scheduler is not None else optimizer.current_lrs
    # The schedule counts this run's optimiser steps, and `training_step` steps it once per optimiser step, as
    # transformers' Trainer does; Accelerate's scheduler wrapper would step it once per process, for a schedule
    # counted in single-process steps. The checkpoints save and restore it (`save_checkpoint(..., scheduler)`).
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.init_trackers("drl", config={k: v for k, v in asdict(train_args).items() if v is not None})

    def validate() -> float:
        validation = evaluate(model, processor, validation_rows, accelerator, train_args, data_args.num_workers, frames)
        return validation["metrics"]["t2v"]["R@1"]

    loop = TrainingLoop(
        model,
        optimizer,
        scheduler,
        loader,
        sampler,
        accelerator,
        train_args,
        total_steps=total_steps,
        pre_gather=pre_gather,
        validate=validate if validation_rows else None,
        learning_rates=learning_rates,
        callbacks=callbacks,
        to_model_inputs=None if frames is None else lambda batch: model_inputs(batch, processor.video_processor),
    )
    loop.position = restore_position(accelerator, loop.checkpoints, train_args.resume, scheduler)
    logger.info(
        "Training on %d pairs: %d steps, batch %d, %d process(es).",
        len(train_rows),
        total_steps,
        train_args.batch_size,
        accelerator.num_processes,
    )
    return loop


def make_accelerator(train_args: TrainArguments) -> Accelerator:
    """The Accelerator of the run, with logging set up and a warning when a CPU launch started fewer processes."""
    trackers = "tensorboard" if importlib.util.find_spec("tensorboard") else None
    # On a machine without accelerator Accelerate only treats several processes (torchrun, `accelerate launch
    # --multi_gpu`) as distributed when told it runs on CPU; otherwise every process would think it is alone.
    accelerator = Accelerator(
        cpu=not torch.accelerator.is_available(),
        mixed_precision=train_args.mixed_precision,
        gradient_accumulation_steps=train_args.gradient_accumulation_steps,
        log_with=trackers,
        project_dir=str(Path(train_args.output_dir)),
    )
    logging.basicConfig(level=logging.INFO if accelerator.is_main_process else logging.WARNING, format="%(message)s")
    asked = processes_asked_of_launcher(parent_command_line())
    if asked and asked > accelerator.num_processes:
        logger.warning(
            "accelerate launch was asked for %d processes but %d started: with --cpu (or no GPU) it starts one. "
            "For several CPU processes use `accelerate launch --multi_gpu --num_processes %d train.py` (gloo) or "
            "`torchrun --nproc_per_node %d train.py`.",
            asked,
            accelerator.num_processes,
            asked,
            asked,
        )
    return accelerator


def load_data(data_args: DataArguments, accelerator: Accelerator) -> tuple[DatasetDict, str]:
    """The data's splits, built or cached by one process while the others wait, and the split to report.

    Raises:
        ValueError: the data or its options are wrong (`modeling_tvr.training.data.DataError`: one line).
        FileNotFoundError: a folder or file that is not there.
    """
    source = data_source(data_args)
    with accelerator.main_process_first():
        data = load_splits(source)
    return data, "test" if "test" in data else next(iter(data))


def open_frame_cache(
    processor: DRLProcessor, row_lists: list[list], accelerator: Accelerator, data_args: DataArguments
) -> tuple[FrameCache, list[list]]:
    """The frame cache `--frame_cache` for this run's processor, filled with the clips of `row_lists` (the rows the
    run reads), and those rows without the clips that cannot be decoded when `--missing_videos skip` asks so.

    Raises:
        ValueError: a clip cannot be decoded and --missing_videos is not skip (one line naming the first files).
    """
    cache = FrameCache(data_args.frame_cache, processor)
    report = fill_for_rows(cache, row_lists, accelerator, data_args.num_workers)
    logger.info("Frame cache %s: %s.", cache.path, report)
    # The toy's videos are generated, so --missing_videos is refused for it and the error suggests nothing.
    skip_allowed = bool(data_args.dataset_name) or (data_args.benchmark or "toy") != "toy"
    return cache, without_undecodable(row_lists, report.failed, data_args.missing_videos, skip_allowed)


def check_batches(train_rows: list, train_args: TrainArguments) -> None:
    """Refuses a run that could never take a step: the loader drops incomplete batches, so a training set smaller
    than one batch (or none, with --max_steps) would loop over empty epochs. A run without a train split and without
    --max_steps stays allowed: it takes no step and evaluates, as before."""
    if not train_rows and train_args.max_steps > 0:
        raise ValueError("the data has no train split to train on; give one, or pass --eval_only to only evaluate")
    if 0 < len(train_rows) < train_args.batch_size:
        raise ValueError(
            f"{len(train_rows)} training pair(s), fewer than one batch (--batch_size {train_args.batch_size}); pass "
            f"--batch_size {len(train_rows)} or less, or add captions"
        )


def announce_splits(data: DatasetDict, eval_split: str, data_args: DataArguments, train_args: TrainArguments) -> dict:
    """Prints which split is used for what and where each came from; returns it for metrics.json."""
    training = not train_args.eval_only
    evaluating = train_args.do_eval or train_args.eval_only
    uses = split_uses(data, eval_split, train=training, evaluate=evaluating)
    logger.info("%s", format_split_uses(data_label(data_args), uses, training))
    return uses


def report_test_metrics(
    model,
    processor,
    rows,
    split: str,
    accelerator: Accelerator,
    data_args: DataArguments,
    train_args: TrainArguments,
    frames: FrameCache | None = None,
) -> dict:
    """Evaluates on `rows` (read from the frame cache `frames` if given), prints the metrics table and saves the recall
    curve; returns the metrics.json entries."""
    test = evaluate(model, processor, rows, accelerator, train_args, data_args.num_workers, frames)
    ranks = test.pop("ranks")
    if accelerator.is_main_process:
        output_dir = Path(train_args.output_dir)
        label = data_label(data_args)
        save_recall_curve(*ranks, output_dir / "recall_curve.png", title=f"{label} {split}")
        print(f"\n{label} {split}: {test['num_texts']} captions, {test['num_videos']} videos")
        print(format_metrics_table(test["metrics"]))
        if "metrics_dsl" in test:
            print("\nwith dual softmax (DSL):\n" + format_metrics_table(test["metrics_dsl"]))
    return test


def save_outputs(
    model, processor, results: dict, accelerator: Accelerator, model_args, data_args, train_args: TrainArguments
) -> None:
    """Writes metrics.json and the model card, and after training the model and processor; pushes if asked.

    Raises:
        NonFiniteError: the trained model holds a NaN or infinite weight; then nothing is written or pushed.
    """
    output_dir = Path(train_args.output_dir)
    if not train_args.eval_only:
        bad = nonfinite_tensors(accelerator.unwrap_model(model).state_dict())
        if bad:
            raise NonFiniteError(
                diverged(f"the trained weights hold NaN or infinite values ({describe_tensors(bad)})", train_args)
            )
    results["arguments"] = {**asdict(model_args), **asdict(data_args), **asdict(train_args)}
    (output_dir / "metrics.json").write_text(json.dumps(results, indent=2))
    if not train_args.eval_only:
        accelerator.unwrap_model(model).save_pretrained(output_dir)
        processor.save_pretrained(output_dir)
    write_model_card(
        output_dir,
        accelerator.unwrap_model(model).config,
        results.get("metrics"),
        results["dataset"],
        results["split"],
        results["selection"],
        processor.video_processor,
        repo_id=train_args.push_to_hub,
        base_model=model_args.clip if model_args.clip and not Path(model_args.clip).exists() else None,
    )
    logger.info("Saved %s to %s", "metrics and card" if train_args.eval_only else "model, processor, card", output_dir)
    if not train_args.eval_only and train_args.push_to_hub:
        push_folder(output_dir, train_args.push_to_hub)


@contextlib.contextmanager
def removed_if_left_empty(folder: Path) -> Iterator[None]:
    """Creates `folder` (and its missing parents) for the run; if the run fails, removes those of them it created that
    are still empty, so a failed run leaves no empty output folder. A folder that existed before, or that holds
    anything, stays (`rmdir` removes only empty folders)."""
    created = [path for path in (folder, *folder.parents) if not path.exists()]  # deepest first
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for path in created:
            with contextlib.suppress(OSError):
                path.rmdir()
        raise


def main(callbacks: Sequence[StepCallback] = ()) -> None:
    """Trains and / or evaluates as the command line says; `callbacks` go to the training loop (see `TrainingLoop`)."""
    model_args, data_args, train_args = parse_arguments(build_parser())
    accelerator = make_accelerator(train_args)
    set_seed(train_args.seed)
    with removed_if_left_empty(Path(train_args.output_dir)):
        try:
            train_and_evaluate(model_args, data_args, train_args, accelerator, callbacks)
        except NonFiniteError as error:
            # A diverged run: one line naming the step and what to change; nothing non-finite was saved or pushed.
            raise SystemExit(f"error: {error}") from None


@dataclass
class RunInputs:
    """What a run works on once set up: the data, the rows of each use, the model, its processor and the frame cache
    (None without --frame_cache)."""

    data: DatasetDict
    eval_split: str
    train_rows: list
    validation_rows: list
    test_rows: list
    model: DRLModel
    processor: DRLProcessor
    frames: FrameCache | None = None


def set_up_run(
    model_args: ModelArguments,
    data_args: DataArguments,
    train_args: TrainArguments,
    accelerator: Accelerator,
    evaluating: bool,
) -> RunInputs:
    """Loads the data, builds the model and processor and, with --frame_cache, fills the cache.

    Raises:
        One of `SETUP_ERRORS`: the input is wrong (one line for the user).
    """
    data, eval_split = load_data(data_args, accelerator)
    train_rows = list(data["train"]) if "train" in data else []
    validation_rows = list(data["validation"]) if "validation" in data and not train_args.eval_only else []
    test_rows = list(data[eval_split]) if evaluating else []
    if not train_args.eval_only:  # before the model: a from-scratch vocabulary would be written in output_dir
        check_batches(train_rows, train_args)
    vocabulary = Path(train_args.output_dir) / VOCABULARY_FILE
    earlier_vocabulary = vocabulary.exists()
    model, processor = build_model_and_processor(
        model_args, data_args, train_rows, Path(train_args.output_dir), accelerator
    )
    run = RunInputs(data, eval_split, train_rows, validation_rows, test_rows, model, processor)
    if data_args.frame_cache:
        used = [[] if train_args.eval_only else train_rows, validation_rows, test_rows]
        try:
            run.frames, kept = open_frame_cache(processor, used, accelerator, data_args)
            _, run.validation_rows, run.test_rows = kept
            if not train_args.eval_only:  # rows of clips that cannot be decoded may have been skipped
                run.train_rows = kept[0]
                check_batches(run.train_rows, train_args)
        except SETUP_ERRORS:
            # The frame settings come from the model, so its from-scratch vocabulary is already written; a run refused
            # for a clip that cannot be decoded leaves no output, as one refused for a missing file does.
            if not earlier_vocabulary:
                vocabulary.unlink(missing_ok=True)
            raise
    return run


def train_and_evaluate(
    model_args: ModelArguments,
    data_args: DataArguments,
    train_args: TrainArguments,
    accelerator: Accelerator,
    callbacks: Sequence[StepCallback] = (),
) -> None:
    """The run itself, once the arguments are parsed and the output folder exists."""
    evaluating = train_args.do_eval or train_args.eval_only
    try:
        run = set_up_run(model_args, data_args, train_args, accelerator, evaluating)
    except SETUP_ERRORS as error:
        # Bad input (a path, a file that is not what its option says, an option out of range, a clip that cannot be
        # decoded): one line, no traceback. Errors once training runs keep their traceback.
        raise SystemExit(f"error: {error}") from None
    model, processor = run.model, run.processor
    if train_args.gradient_checkpointing:
        model.activation_checkpointing_enable()

    results = {
        "benchmark": data_args.benchmark,
        "dataset": data_label(data_args),
        "split": run.eval_split,
        "splits": announce_splits(run.data, run.eval_split, data_args, train_args),
    }
    if train_args.eval_only:
        results["selection"] = f"evaluation of {model_args.init or model_args.clip or 'a randomly initialised model'}"
    else:
        loop = prepare_training(
            model,
            processor,
            run.train_rows,
            run.validation_rows,
            accelerator,
            data_args,
            train_args,
            callbacks,
            run.frames,
        )
        results.update(loop.run())
    if evaluating:
        test = report_test_metrics(
            model, processor, run.test_rows, run.eval_split, accelerator, data_args, train_args, run.frames
        )
        results.update(test)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_outputs(model, processor, results, accelerator, model_args, data_args, train_args)
    accelerator.end_training()


def push_folder(folder: Path, repo_id: str) -> None:
    """Uploads the final folder (weights, config, code, processor, card, metrics) to a Hub model repo; a failed
    upload, or weights that are not finite, end the run with one line (the trained folder stays as it is)."""
    from hub_scripts.push_to_hub import CheckpointFolderError, HubUploadError, upload_checkpoint

    # The card was just written for this repo id; `hub_scripts/push_to_hub.py` also checks and re-cards a folder.
    try:
        upload_checkpoint(folder, repo_id)
    except CheckpointFolderError as error:  # weights that are not finite: never uploaded
        raise SystemExit(f"error: {error}") from None
    except HubUploadError as error:
        raise SystemExit(
            f"error: {error}. The model is saved in {folder}; push it later with "
            f"`python hub_scripts/push_to_hub.py {folder} --repo_id {repo_id}`."
        ) from None
    logger.info("Pushed %s to https://huggingface.co/%s", folder, repo_id)


if __name__ == "__main__":
    main()
