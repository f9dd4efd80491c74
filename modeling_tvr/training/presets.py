"""The settings a training run takes unless a flag gives them: the authors' recipe, each benchmark's changes to it,
and one preset per line of the authors' `scripts/msrvtt.sh`; and the `--help` epilog that lists them."""

import textwrap
from dataclasses import fields

from ..configuration_drl import DRLConfig
from .data import OWN_VIDEOS

__all__ = [
    "CONFIG_DEFAULTS",
    "CONFIG_OPTIONS",
    "DEFAULTS",
    "FROM_SCRATCH_PRESETS",
    "PRESETS",
    "SCRIPT_PRESETS",
    "SCRIPT_PRESET_BASE",
    "preset_settings",
    "presets_help",
]

# The DRLConfig fields that are flags. DRLConfig holds their defaults; presets override them.
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
# What every line of the authors' script sets: their benchmark and their CLIP.
SCRIPT_PRESET_BASE = {"benchmark": "msrvtt", "clip": "openai/clip-vit-base-patch32"}


def preset_settings(benchmark: str | None, preset: str | None, pretrained: bool = False) -> dict:
    """Every setting a run takes unless a flag gives it: the defaults, then the benchmark's, then the named preset's.

    Args:
        benchmark (`str`, *optional*):
            The benchmark's name (`PRESETS`); None takes the preset's, or else the toy benchmark.
        preset (`str`, *optional*):
            A line of the authors' script by name (`SCRIPT_PRESETS`).
        pretrained (`bool`, *optional*, defaults to `False`):
            Whether the model starts from a pretrained CLIP or a saved DRL folder (--clip, --init), which decides the
            recipe of one's own videos (`FROM_SCRATCH_PRESETS`).

    Raises:
        ValueError: `preset` is not a known preset.
    """
    if preset is not None and preset not in SCRIPT_PRESETS:
        raise ValueError(f"Unknown --preset {preset!r}; choose from {', '.join(SCRIPT_PRESETS)}.")
    named = {**SCRIPT_PRESET_BASE, **SCRIPT_PRESETS[preset]} if preset else {}
    benchmark = benchmark or named.get("benchmark", "toy")
    from_scratch = not (pretrained or named.get("clip"))
    own = FROM_SCRATCH_PRESETS[benchmark] if from_scratch and benchmark in FROM_SCRATCH_PRESETS else {}
    return {**CONFIG_DEFAULTS, **DEFAULTS, **PRESETS.get(benchmark, {}), **own, **named, "benchmark": benchmark}


def _settings_line(name: str, settings: dict) -> str:
    shown = ", ".join(f"{key}={value}" for key, value in settings.items()) or "the defaults"
    return textwrap.fill(shown, width=116, initial_indent=f"  {name:24} ", subsequent_indent=" " * 27)


def presets_help() -> str:
    """The end of `train.py --help`: each preset and benchmark with what it sets, a settings file, several CPUs."""
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
