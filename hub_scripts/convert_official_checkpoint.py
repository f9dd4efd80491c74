"""Convert the authors' checkpoints (OpenAI CLIP `.pt`, DRL `pytorch_model.bin.N`) to a Hugging Face DRL folder.

    # a DRL model trained with the authors' code (authors' layout, `module.` prefix or not)
    python hub_scripts/convert_official_checkpoint.py --checkpoint ckpts/msrvtt/pytorch_model.bin.4 \\
        --bpe bpe_simple_vocab_16e6.txt.gz --output_dir drl-msrvtt-vit-b-32 --benchmark msrvtt

    # OpenAI's CLIP alone: the DRL modules are initialised as the authors do before fine-tuning
    python hub_scripts/convert_official_checkpoint.py --checkpoint ViT-B-32.pt \\
        --bpe bpe_simple_vocab_16e6.txt.gz --output_dir drl-vit-b-32-init

    # a ModelScope folder in the authors' layout (damo/multi_modal_clip_vtretrival_msrvtt_53: MSR-VTT, ViT-B/16)
    python hub_scripts/convert_official_checkpoint.py --modelscope multi_modal_clip_vtretrival_msrvtt_53 \\
        --output_dir drl-msrvtt-vit-b-16-modelscope

The folder holds `model.safetensors`, `config.json`, the model and processor code (loadable with
`trust_remote_code=True`), the processor (CLIP tokenizer from the BPE file, video processor sized to the model's
image size), a model card and `conversion.json` (what was checked). Nothing is written unless every check passes:
- every tensor of the file finds its place (`--allow_unused_keys` drops the others, named);
- the weights survive the round trip back to the authors' layout unchanged;
- on a random caption and video, the converted model's token features, frame features, temporal module and WTI head
  outputs match a functional forward written straight from the authors' layout (`modeling_tvr.conversion.reference`).

Files are read without running code from them (see `modeling_tvr.conversion.checkpoint_files`); `--trust_pickle` opts in
to full unpickling for files from a trusted source that need it.
"""

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from modeling_tvr import DRLCLIPTokenizer, DRLModel, DRLProcessor, clip_tokenizer_from_bpe
from modeling_tvr.conversion.checkpoint_files import CheckpointLoadError, load_official_state_dict
from modeling_tvr.conversion.reference import (
    reference_frame_features,
    reference_temporal,
    reference_text_features,
    reference_weight_logits,
)
from modeling_tvr.conversion.state_dict import (
    OPENAI_METADATA_KEYS,
    OfficialStateDictError,
    from_official_state_dict,
    hf_to_official_state_dict,
    normalize_official_keys,
    official_to_hf_state_dict,
)
from modeling_tvr.modeling_drl import DRL_MODULE_PREFIXES
from modeling_tvr.training.model_card import conversion_source, write_model_card

# DRLConfig fields a user may set; sizes always come from the tensors.
DRL_OPTIONS = {
    "interaction": str,
    "wti_arch": int,
    "temporal_module": str,
    "temporal_layers": int,
    "cdcr": int,
    "cdcr_alpha1": float,
    "cdcr_alpha2": float,
    "cdcr_lambda": float,
    "max_words": int,
    "max_frames": int,
}

# OpenAI's released ViTs by (vision width, layers, patch, image size), to name the card's base model.
KNOWN_BACKBONES = {
    (768, 12, 32, 224): "openai/clip-vit-base-patch32",
    (768, 12, 16, 224): "openai/clip-vit-base-patch16",
    (1024, 24, 14, 224): "openai/clip-vit-large-patch14",
    (1024, 24, 14, 336): "openai/clip-vit-large-patch14-336",
}


class ConversionError(RuntimeError):
    """The checkpoint cannot be converted faithfully; the message says why and what to do."""


@dataclass
class ModelScopeCheckpoint:
    """What a ModelScope DRL folder holds, read as ModelScope's own loader reads it."""

    state_dict: dict[str, torch.Tensor]
    options: dict  # DRLConfig options from `configuration.json` "paras"
    video_framerate: float | None
    bpe: str | None
    filled_from_clip: list[str] = field(default_factory=list)


# ModelScope's `sim_header` values that this package implements, as its `temporal_module`.
_MODELSCOPE_TEMPORAL = {"seqTransf": "seqTransf", "meanP": "none"}
MODELSCOPE_WEIGHTS = "pytorch_model.bin"
MODELSCOPE_CONFIG = "configuration.json"
MODELSCOPE_CLIP = "ViT-B-16.pt"
MODELSCOPE_BPE = "bpe_simple_vocab_16e6.txt.gz"
# CLIP tensors outside the transformer blocks; ModelScope's loader takes any it lacks from ViT-B-16.pt.
_CLIP_TENSORS_A_DRL_MODEL_NEEDS = (
    "clip.token_embedding.weight",
    "clip.positional_embedding",
    "clip.ln_final.weight",
    "clip.ln_final.bias",
    "clip.text_projection",
    "clip.logit_scale",
    "clip.visual.conv1.weight",
    "clip.visual.class_embedding",
    "clip.visual.positional_embedding",
    "clip.visual.ln_pre.weight",
    "clip.visual.ln_post.weight",
    "clip.visual.proj",
)


def is_modelscope_folder(path: str | Path) -> bool:
    """A folder with ModelScope's `configuration.json` and `pytorch_model.bin`."""
    path = Path(path)
    return path.is_dir() and (path / MODELSCOPE_CONFIG).is_file() and (path / MODELSCOPE_WEIGHTS).is_file()


def read_modelscope_folder(folder: str | Path, trust_pickle: bool = False) -> ModelScopeCheckpoint:
    """
    The DRL weights and options of a ModelScope folder (e.g. `damo/multi_modal_clip_vtretrival_msrvtt_53`).

    ModelScope builds the model from `configuration.json` (options under `"paras"`), loads OpenAI's `ViT-B-16.pt`
    from the folder into CLIP, then `pytorch_model.bin` non-strictly over it. The same here: an optional `module.`
    prefix is stripped, fp16 tensors are upcast, and `clip.*` tensors missing from `pytorch_model.bin` are taken from
    `ViT-B-16.pt`. A file without WTI heads (or, with `sim_header` `seqTransf`, without the temporal module) is not a
    DRL checkpoint and is refused.
    """
    folder = Path(folder)
    if not is_modelscope_folder(folder):
        raise ConversionError(
            f"{folder} is not a ModelScope model folder: it needs {MODELSCOPE_CONFIG} and {MODELSCOPE_WEIGHTS}."
        )
    try:
        configuration = json.loads((folder / MODELSCOPE_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConversionError(f"{folder / MODELSCOPE_CONFIG} is not readable JSON: {error}") from error
    paras = configuration.get("paras") if isinstance(configuration, dict) else None
    if not isinstance(paras, dict):
        raise ConversionError(f'{folder / MODELSCOPE_CONFIG} has no "paras" object with the model options.')
    header = paras.get("sim_header", "meanP")
    if header not in _MODELSCOPE_TEMPORAL or paras.get("loose_type", True) is not True:
        raise ConversionError(
            f"{folder}: sim_header {header!r} (loose_type {paras.get('loose_type')!r}) is not a DRL model this package "
            f"implements; supported: {sorted(_MODELSCOPE_TEMPORAL)} with loose_type true."
        )
    if paras.get("linear_patch", "2d") != "2d":
        raise ConversionError(f"{folder}: linear_patch {paras['linear_patch']!r} (only 2d patches are implemented).")

    raw = load_official_state_dict(folder / MODELSCOPE_WEIGHTS, trust_pickle=trust_pickle)
    state = {key.removeprefix("module."): value for key, value in raw.items()}
    state = {key: value.float() if value.is_floating_point() else value for key, value in state.items()}
    if not any(key.startswith("text_weight_fc.") for key in state) or not any(
        key.startswith("video_weight_fc.") for key in state
    ):
        raise ConversionError(
            f"{folder / MODELSCOPE_WEIGHTS} has no WTI heads (text_weight_fc / video_weight_fc): it is not a DRL "
            "checkpoint, and converting it would give randomly initialised heads."
        )
    temporal = _MODELSCOPE_TEMPORAL[header]
    if temporal == "seqTransf" and "frame_position_embeddings.weight" not in state:
        raise ConversionError(
            f"{folder / MODELSCOPE_WEIGHTS} has no temporal module although sim_header is seqTransf: not a trained "
            "DRL checkpoint."
        )
    filled = []
    if (folder / MODELSCOPE_CLIP).is_file():
        clip, _ = normalize_official_keys(load_official_state_dict(folder / MODELSCOPE_CLIP, trust_pickle=trust_pickle))
        for key, value in clip.items():
            if key not in state:
                state[key] = value.float() if value.is_floating_point() else value
                filled.append(key)
    else:
        missing = [key for key in _CLIP_TENSORS_A_DRL_MODEL_NEEDS if key not in state]
        if missing:
            raise ConversionError(
                f"{folder / MODELSCOPE_WEIGHTS} lacks CLIP tensors {missing} and {folder / MODELSCOPE_CLIP} is missing:"
                " put OpenAI's ViT-B-16.pt in the folder, as ModelScope's loader expects."
            )
    options = {"interaction": "wti", "temporal_module": temporal}
    for source, target, kind in (
        ("max_words", "max_words", int),
        ("max_frames", "max_frames", int),
        ("cdcr_alpha1", "cdcr_alpha1", float),
        ("cdcr_alpha2", "cdcr_alpha2", float),
        ("cdcr_lambda", "cdcr_lambda", float),
    ):
        if paras.get(source) is not None:
            options[target] = kind(paras[source])
    framerate = paras.get("feature_framerate")
    bpe = folder / MODELSCOPE_BPE
    return ModelScopeCheckpoint(
        state_dict=state,
        options=options,
        video_framerate=float(framerate) if framerate is not None else None,
        bpe=str(bpe) if bpe.is_file() else None,
        filled_from_clip=sorted(filled),
    )


@dataclass
class ConversionReport:
    """What `convert` did and measured; also written to `conversion.json`."""

    checkpoint: str
    output_dir: str
    kind: str  # "drl" (authors' trained checkpoint) or "openai-clip" (CLIP alone)
    source_tensors: int
    unused_keys: list[str] = field(default_factory=list)
    initialised: list[str] = field(default_factory=list)
    max_weight_difference: float = 0.0
    max_output_difference: dict[str, float] = field(default_factory=dict)
    config_overrides: dict = field(default_factory=dict)
    filled_from_clip: list[str] = field(default_factory=list)  # ModelScope: `clip.*` tensors taken from ViT-B-16.pt
    benchmark: str | None = None
    base_model: str | None = None

    @property
    def max_difference(self) -> float:
        """The largest difference of any check (weights and outputs)."""
        return max([self.max_weight_difference, *self.max_output_difference.values()])


def guess_base_model(config) -> str | None:
    """The Hub id of the OpenAI CLIP whose sizes the model has, if it is one of the released ViTs."""
    vision = config.vision_config
    key = (vision.hidden_size, vision.num_hidden_layers, vision.patch_size, vision.image_size)
    return KNOWN_BACKBONES.get(key)


def _normalized_key(raw_key: str, is_drl_checkpoint: bool) -> str:
    key = raw_key.removeprefix("module.")
    return key if is_drl_checkpoint else f"clip.{key}"


def _check_metadata(raw: dict[str, torch.Tensor], model: DRLModel) -> None:
    """OpenAI's JIT archives state their input size, context length and vocabulary: they must fit the tensors."""
    expected = {
        "input_resolution": model.config.vision_config.image_size,
        "context_length": model.config.text_config.max_position_embeddings,
        "vocab_size": model.config.text_config.vocab_size,
    }
    for key, value in raw.items():
        name = key.removeprefix("module.")
        if name in OPENAI_METADATA_KEYS and value.numel() == 1 and int(value) != expected[name]:
            raise ConversionError(f"The checkpoint states {name}={int(value)} but its tensors imply {expected[name]}.")


def _weight_round_trip(model: DRLModel, used: dict[str, torch.Tensor], is_drl: bool) -> float:
    """Max difference between the source tensors and the model's weights mapped back to the authors' layout."""
    back = hf_to_official_state_dict(model.state_dict())
    missing = sorted(set(used) - set(back))
    if missing:
        raise ConversionError(f"Source tensors absent from the converted model: {missing[:10]}")
    worst, changed = 0.0, []
    for key, tensor in used.items():
        if back[key].shape != tensor.shape:
            raise ConversionError(
                f"{key}: shape {tuple(back[key].shape)} after conversion, {tuple(tensor.shape)} before"
            )
        # Renaming, transposing and splitting q/k/v are exact; so is fp16 -> fp32 (OpenAI ships fp16).
        if not torch.equal(back[key], tensor.to(back[key].dtype)):
            changed.append(key)
        worst = max(worst, float((back[key].double() - tensor.double()).abs().max()) if tensor.numel() else 0.0)
    if changed:
        raise ConversionError(f"Weights changed by the conversion (max |difference| {worst:.3g}): {changed[:10]}")
    extra = sorted(set(back) - set(used))
    if is_drl and extra:
        raise ConversionError(f"The converted model has weights the checkpoint does not provide: {extra[:10]}")
    return worst


def _random_inputs(model: DRLModel, seed: int) -> dict[str, torch.Tensor]:
    """Two captions (one padded) and two videos (one with padded frames) in the authors' layout."""
    config = model.config
    generator = torch.Generator().manual_seed(seed)
    words, frames = config.max_words, min(config.max_frames, 4)
    bos, eos = config.text_config.bos_token_id, config.text_config.eos_token_id
    input_ids = torch.zeros(2, words, dtype=torch.long)
    attention_mask = torch.zeros(2, words, dtype=torch.long)
    for row, length in enumerate((words, max(3, words // 2))):
        input_ids[row, 1 : length - 1] = torch.randint(1, min(bos, eos), (length - 2,), generator=generator)
        input_ids[row, 0], input_ids[row, length - 1] = bos, eos
        attention_mask[row, :length] = 1
    video_mask = torch.ones(2, frames, dtype=torch.long)
    video_mask[1, max(1, frames // 2) :] = 0
    size = config.vision_config.image_size
    pixels = torch.randn(2, frames, 3, size, size, generator=generator) * video_mask[:, :, None, None, None]
    return {"input_ids": input_ids, "attention_mask": attention_mask, "pixel_values": pixels, "video_mask": video_mask}


@torch.no_grad()
def compare_outputs(
    model: DRLModel, used: dict[str, torch.Tensor], seed: int = 0
) -> tuple[dict[str, float], dict[str, float]]:
    """
    Max absolute differences between the converted model and the functional reference on the source tensors, per
    output (token features, frame features, and where the checkpoint has them the temporal module and WTI heads),
    and the largest magnitude of each reference output.
    """
    model.eval()
    sd = {key: value.float() for key, value in used.items() if value.is_floating_point()}
    inputs = _random_inputs(model, seed)
    pixels, video_mask = inputs["pixel_values"], inputs["video_mask"]
    text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).text_embeds
    batch, frames = pixels.shape[:2]
    pooled = model.vision_model(pixel_values=pixels.flatten(0, 1)).pooler_output
    frame_features = model.visual_projection(pooled).view(batch, frames, -1)
    ref_text = reference_text_features(sd, inputs["input_ids"])
    ref_frames = reference_frame_features(sd, pixels)
    pairs = {"text_features": (text, ref_text), "frame_features": (frame_features, ref_frames)}
    if "frame_position_embeddings.weight" in sd:
        video = model.get_video_features(pixels, video_mask).video_embeds
        pairs["video_features"] = (video, reference_temporal(sd, ref_frames, video_mask))
    if "text_weight_fc.weight" in sd or "text_weight_fc.0.weight" in sd:
        video = pairs.get("video_features", (frame_features, ref_frames))
        pairs["text_weight_logits"] = (
            model.text_weight_head(text).squeeze(-1),
            reference_weight_logits(sd, "text_weight_fc.", ref_text),
        )
        pairs["video_weight_logits"] = (
            model.video_weight_head(video[0]).squeeze(-1),
            reference_weight_logits(sd, "video_weight_fc.", video[1]),
        )
    differences = {name: float((ours - ref).abs().max()) for name, (ours, ref) in pairs.items()}
    return differences, {name: float(ref.abs().max()) for name, (_, ref) in pairs.items()}


def build_tokenizer(bpe: str | None, tokenizer: str | None, model: DRLModel) -> DRLCLIPTokenizer:
    """The CLIP tokenizer from OpenAI's BPE file (or a saved tokenizer), checked against the model's vocabulary."""
    if bool(bpe) == bool(tokenizer):
        raise ConversionError(
            "Pass exactly one of --bpe (OpenAI's bpe_simple_vocab_16e6.txt.gz) or --tokenizer (a CLIP tokenizer)."
        )
    built = clip_tokenizer_from_bpe(bpe) if bpe else DRLCLIPTokenizer.from_pretrained(tokenizer)
    text = model.config.text_config
    if len(built) != text.vocab_size or (built.bos_token_id, built.eos_token_id) != (
        text.bos_token_id,
        text.eos_token_id,
    ):
        raise ConversionError(
            f"The tokenizer has {len(built)} tokens (start {built.bos_token_id}, end {built.eos_token_id}) but the "
            f"checkpoint's token embedding has {text.vocab_size} rows (start {text.bos_token_id}, end "
            f"{text.eos_token_id}): use the BPE file the checkpoint was trained with."
        )
    return built


def convert(
    checkpoint: str | Path,
    output_dir: str | Path,
    bpe: str | None = None,
    tokenizer: str | None = None,
    overrides: dict | None = None,
    video_framerate: float | None = None,
    benchmark: str | None = None,
    base_model: str | None = None,
    repo_id: str | None = None,
    allow_unused_keys: bool = False,
    trust_pickle: bool = False,
    overwrite: bool = False,
    seed: int = 0,
    tolerance: float = 1e-4,
) -> ConversionReport:
    """
    Converts `checkpoint` (authors' DRL checkpoint, OpenAI CLIP, or a ModelScope folder: see `read_modelscope_folder`)
    to a DRL folder at `output_dir`, checking it as the module docstring says. `video_framerate`: frames per second
    sampled (default: the ModelScope folder's `feature_framerate`, else 1). `overrides`: `DRLConfig` options
    (`DRL_OPTIONS`). `base_model`: the card's base model (default: the OpenAI CLIP with the same sizes, if any).
    `tolerance`: largest output difference accepted, relative to the outputs' magnitude (at least 1). Raises
    `ConversionError`, `OfficialStateDictError` or
    `CheckpointLoadError`; writes nothing then.
    """
    output_dir = Path(output_dir)
    if (output_dir / "model.safetensors").exists() and not overwrite:
        raise ConversionError(f"{output_dir} already holds a model; pass --overwrite to replace it.")
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    unknown = sorted(set(overrides) - set(DRL_OPTIONS))
    if unknown:
        raise ConversionError(f"Unknown DRL options {unknown}; choose from {sorted(DRL_OPTIONS)}.")

    modelscope = None
    if is_modelscope_folder(checkpoint):
        modelscope = read_modelscope_folder(checkpoint, trust_pickle=trust_pickle)
        raw = modelscope.state_dict
        overrides = {**modelscope.options, **overrides}  # what the user passes wins over the folder's options
        video_framerate = video_framerate if video_framerate is not None else modelscope.video_framerate
        if not bpe and not tokenizer:
            bpe = modelscope.bpe
    else:
        raw = load_official_state_dict(checkpoint, trust_pickle=trust_pickle)
    video_framerate = 1.0 if video_framerate is None else video_framerate
    tensors, is_drl = normalize_official_keys(raw)
    _, unused = official_to_hf_state_dict(tensors)
    if unused and not allow_unused_keys:
        raise ConversionError(
            f"{len(unused)} tensor(s) of {checkpoint} have no place in a DRL model: {sorted(unused)[:20]}. "
            "Pass --allow_unused_keys to drop them (e.g. modules of another CLIP4Clip variant)."
        )
    dropped = set(unused)
    kept_raw = {key: value for key, value in raw.items() if _normalized_key(key, is_drl) not in dropped}
    used = {key: value for key, value in tensors.items() if key not in dropped}

    torch.manual_seed(seed)  # the WTI heads of a CLIP-only checkpoint start random: make that reproducible
    model = from_official_state_dict(kept_raw, **overrides).eval()
    _check_metadata(raw, model)
    built_tokenizer = build_tokenizer(bpe, tokenizer, model)
    weight_difference = _weight_round_trip(model, used, is_drl)
    initialised = sorted({key.split(".", 1)[0] for key in model.state_dict() if key.startswith(DRL_MODULE_PREFIXES)})
    differences, scales = compare_outputs(model, used, seed=seed)
    failed = {name: value for name, value in differences.items() if value > tolerance * max(1.0, scales[name])}
    if failed:
        raise ConversionError(f"The converted model does not reproduce the checkpoint's outputs: {failed}.")

    processor = DRLProcessor.for_model(model.config, built_tokenizer, video_framerate=video_framerate)

    report = ConversionReport(
        checkpoint=str(checkpoint),
        output_dir=str(output_dir),
        kind="drl" if is_drl else "openai-clip",
        source_tensors=len(tensors),
        unused_keys=sorted(unused),
        initialised=[] if is_drl else initialised,
        max_weight_difference=weight_difference,
        max_output_difference=differences,
        config_overrides=overrides,
        filled_from_clip=modelscope.filled_from_clip if modelscope else [],
        benchmark=benchmark,
        base_model=base_model or guess_base_model(model.config),
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    (output_dir / "conversion.json").write_text(json.dumps(asdict(report), indent=2))
    write_model_card(
        output_dir,
        model.config,
        None,
        benchmark,
        None,
        None,
        processor.video_processor,
        repo_id=repo_id,
        base_model=report.base_model,
        source=conversion_source(asdict(report)),
    )
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (underscores or hyphens in option names)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--checkpoint", help="OpenAI CLIP .pt, DRL pytorch_model.bin.N or .safetensors, or a ModelScope folder"
    )
    source.add_argument(
        "--modelscope", help="a ModelScope DRL folder (configuration.json, pytorch_model.bin, ViT-B-16.pt, BPE file)"
    )
    parser.add_argument("--output_dir", "--output-dir", required=True)
    parser.add_argument("--bpe", help="OpenAI's bpe_simple_vocab_16e6.txt.gz (the tokenizer)")
    parser.add_argument("--tokenizer", help="instead of --bpe: a folder or Hub id with a CLIP tokenizer")
    for name, kind in DRL_OPTIONS.items():
        parser.add_argument(f"--{name}", f"--{name.replace('_', '-')}", type=kind, help="DRLConfig option")
    parser.add_argument(
        "--video_framerate", "--video-framerate", type=float, help="frames per second (default 1, or the folder's)"
    )
    parser.add_argument("--benchmark", help="what the checkpoint was trained on (msrvtt, msvd, ...), for the card")
    parser.add_argument("--base_model", "--base-model", help="the card's base model (default: guessed from sizes)")
    parser.add_argument("--repo_id", "--repo-id", help="Hub repo the folder is meant for, for the card's usage")
    parser.add_argument("--allow_unused_keys", "--allow-unused-keys", action="store_true")
    parser.add_argument("--trust_pickle", "--trust-pickle", action="store_true", help="allow full unpickling")
    parser.add_argument("--overwrite", action="store_true", help="replace a model already in --output_dir")
    parser.add_argument("--seed", type=int, default=0, help="random input and new-module initialisation")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest relative output difference accepted")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Runs the conversion; prints what was checked. Returns the process exit code (0 on success)."""
    args = parse_args(argv)
    try:
        report = convert(
            args.checkpoint or args.modelscope,
            args.output_dir,
            bpe=args.bpe,
            tokenizer=args.tokenizer,
            overrides={name: getattr(args, name) for name in DRL_OPTIONS},
            video_framerate=args.video_framerate,
            benchmark=args.benchmark,
            base_model=args.base_model,
            repo_id=args.repo_id,
            allow_unused_keys=args.allow_unused_keys,
            trust_pickle=args.trust_pickle,
            overwrite=args.overwrite,
            seed=args.seed,
            tolerance=args.tolerance,
        )
    except (ConversionError, OfficialStateDictError, CheckpointLoadError, FileNotFoundError, ValueError) as error:
        # ValueError: a file that is not what its option says (a BPE merges file, a DRL option out of range).
        print(f"error: {error}", file=sys.stderr)
        return 1
    kind = "DRL checkpoint" if report.kind == "drl" else "OpenAI CLIP (DRL modules initialised)"
    print(f"{report.checkpoint}: {report.source_tensors} tensors, {kind}")
    if report.unused_keys:
        print(f"dropped {len(report.unused_keys)} unused tensor(s): {report.unused_keys}")
    print(f"weights after the round trip to the authors' layout: max |difference| {report.max_weight_difference:.3g}")
    for name, value in report.max_output_difference.items():
        print(f"{name} vs. the authors' formulation on a random input: max |difference| {value:.3g}")
    print(f"max difference: {report.max_difference:.3g}")
    print(f"wrote {report.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
