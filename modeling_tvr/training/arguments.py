"""The options of a training run, as the three dataclasses `train.py`'s flags fill (`ModelArguments`, `DataArguments`,
`TrainArguments`), and how the options left unset are filled from the presets (`resolve_presets`)."""

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from transformers.hf_argparser import HfArg

from ..configuration_drl import CDCR_MODES, INTERACTIONS, TEMPORAL_MODULES, WTI_ARCHS
from .data import OWN_VIDEOS, DataSource, dataset_label, label_slug
from .optimization import RECIPES
from .presets import CONFIG_DEFAULTS, DEFAULTS, PRESETS, preset_settings

__all__ = [
    "OWN_DATA_FLAGS",
    "DataArguments",
    "ModelArguments",
    "TrainArguments",
    "check_data_options",
    "data_label",
    "data_source",
    "default_output_dir",
    "resolve_presets",
]

_CONFIG_CHOICES = {
    "interaction": INTERACTIONS,
    "wti_arch": WTI_ARCHS,
    "temporal_module": TEMPORAL_MODULES,
    "cdcr": CDCR_MODES,
}


def config_flag(name: str, help: str) -> Any:
    """The flag of DRLConfig field `name`: unset unless given, so the preset or else DRLConfig's default applies.

    Args:
        name (`str`):
            The DRLConfig field, one of `CONFIG_OPTIONS`; its default goes into the help.
        help (`str`):
            What the option does (the words of DRLConfig's description of the field).
    """
    metadata = {"choices": _CONFIG_CHOICES[name]} if name in _CONFIG_CHOICES else None
    return HfArg(default=None, help=f"{help} (preset; default {CONFIG_DEFAULTS[name]})", metadata=metadata)


def preset_flag(name: str, help: str) -> Any:
    """A flag that the preset fills when unset, with the default of the authors' recipe in its help.

    Args:
        name (`str`):
            The setting, a key of `DEFAULTS`.
        help (`str`):
            What the option does.
    """
    return HfArg(default=None, help=f"{help} (preset; default {DEFAULTS[name]})")


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
    interaction: str | None = config_flag(
        "interaction",
        '`"wti"` (weighted token-wise), `"ti"` (token-wise, uniform weights) or `"dp"` (dot product of the '
        "end-of-text feature with the mean-pooled video).",
    )
    wti_arch: int | None = config_flag(
        "wti_arch",
        "Depth of the WTI weight heads: 1 (`Linear(D,1)`), 2 (`Linear(D,D)-ReLU-Linear(D,1)`, the paper's) or 3 (two "
        "hidden layers).",
    )
    temporal_module: str | None = config_flag(
        "temporal_module", '`"seqTransf"` (a transformer over frame features with a residual) or `"none"`.'
    )
    temporal_layers: int | None = config_flag("temporal_layers", "Number of residual attention blocks of `seqTransf`.")
    cdcr: int | None = config_flag(
        "cdcr",
        "Channel decorrelation regularisation: 0 off, 1 one random token per sample, 2 best-matching token pairs, 3 "
        "best-matching pairs weighted by the WTI weights (the paper's).",
    )
    cdcr_alpha1: float | None = config_flag(
        "cdcr_alpha1",
        "Weight of the on-diagonal term of CDCR. The default is the value of the authors' main result (and of their "
        "ViT-B/16 WTI + CDCR script line); their ViT-B/32 WTI + CDCR line uses 0.14.",
    )
    cdcr_alpha2: float | None = config_flag("cdcr_alpha2", "Weight of the off-diagonal term of CDCR.")
    cdcr_lambda: float | None = config_flag("cdcr_lambda", "Weight of CDCR in the total loss.")
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
    max_words: int | None = config_flag(
        "max_words", "Tokens per caption (start and end tokens included) used by the processor."
    )
    max_frames: int | None = config_flag("max_frames", "Frames sampled per video by the processor.")
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
    """Fills every option left unset with the named preset, then the benchmark's, then the defaults.

    Args:
        model_args (`ModelArguments`): The model options, filled in place.
        data_args (`DataArguments`): The data options, filled in place.
        train_args (`TrainArguments`): The training options, filled in place.

    Raises:
        ValueError: options that contradict each other, an unknown preset or recipe (a usage error).
    """
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
    """Refuses data options that contradict each other or do not apply to the data.

    Args:
        data_args (`DataArguments`): The data options as given.

    Raises:
        ValueError: the options do not fit (a usage error).
    """
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
    """Where the run's data comes from: `--benchmark_options` (JSON) and the own-data flags as builder options.

    Args:
        data_args (`DataArguments`): The data options, presets resolved.

    Raises:
        ValueError: `--benchmark_options` is not a JSON object.
    """
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


def default_output_dir(model_args: ModelArguments, data_args: DataArguments, train_args: TrainArguments) -> str:
    """outputs/drl-<preset or data>; an evaluation goes to outputs/eval/<model>-<preset or data>, never into the
    evaluated model's folder or another run's.

    The data is the benchmark's name, or for one's own videos the folder's name or the dataset's (`dataset_label`),
    so that two folders of videos do not share one output folder.

    Args:
        model_args (`ModelArguments`): The model options (`--init`, `--clip` name an evaluation's folder).
        data_args (`DataArguments`): The data options.
        train_args (`TrainArguments`): The training options (`--eval_only`).
    """
    data = data_args.preset or label_slug(data_label(data_args))
    if train_args.eval_only:
        source = model_args.init or model_args.clip or "model"
        name = Path(source).name if Path(source).exists() else source.replace("/", "--")
        return str(Path("outputs") / "eval" / f"{name}-{data}")
    return str(Path("outputs") / f"drl-{data}")


def data_label(data_args: DataArguments) -> str:
    """The name of the run's data in its outputs (`dataset_label`); from the names alone, so never fails on options.

    Args:
        data_args (`DataArguments`): The data options.
    """
    names = DataSource(data_args.benchmark, data_args.data_dir, None, data_args.dataset_name, data_args.dataset_config)
    return dataset_label(names)
