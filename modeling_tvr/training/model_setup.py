"""The model a run trains or evaluates and its processor: a saved DRL folder (`--init`), a pretrained CLIP (`--clip`: a
transformers CLIP or OpenAI's file with `--bpe`), or a tiny CLIP from scratch with a vocabulary learned from the
training captions."""

from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from accelerate import Accelerator

from .. import DRLCLIPTokenizer, DRLConfig, DRLModel, DRLProcessor, clip_tokenizer_from_bpe
from ..conversion import from_official_state_dict
from ..conversion.checkpoint_files import load_official_state_dict
from .arguments import DataArguments, ModelArguments
from .bpe_vocabulary import train_clip_bpe
from .presets import CONFIG_OPTIONS

__all__ = ["VOCABULARY_FILE", "build_model", "build_model_and_processor", "build_tokenizer", "model_options"]

# The vocabulary a from-scratch model learns from the training captions, written into the output folder.
VOCABULARY_FILE = "bpe_vocab.txt.gz"


def build_tokenizer(model_args: ModelArguments, train_rows: Iterable[dict], output_dir: Path) -> DRLCLIPTokenizer:
    """OpenAI's BPE file if given, else the CLIP's own tokenizer, else a vocabulary learned from the captions.

    Args:
        model_args (`ModelArguments`): `--bpe` and `--clip`.
        train_rows (`Iterable[dict]`): The training rows, whose captions a from-scratch vocabulary is learned from.
        output_dir (`Path`): Where a learned vocabulary is written (`VOCABULARY_FILE`).
    """
    if model_args.bpe:
        return clip_tokenizer_from_bpe(model_args.bpe)
    if model_args.clip:
        # CLIP's own vocabulary, with OpenAI's text clean-up that transformers' CLIPTokenizer skips.
        return DRLCLIPTokenizer.from_pretrained(model_args.clip)
    # From scratch: a small vocabulary in CLIP's format learned from the training captions.
    return train_clip_bpe((row["caption"] for row in train_rows), output_dir / VOCABULARY_FILE, num_merges=2000)


def model_options(model_args: ModelArguments, data_args: DataArguments) -> dict:
    """The DRLConfig options that flags set (`CONFIG_OPTIONS`), from both dataclasses that hold them."""
    flags = {**asdict(model_args), **asdict(data_args)}
    return {name: flags[name] for name in CONFIG_OPTIONS}


def build_model(model_args: ModelArguments, data_args: DataArguments, tokenizer: DRLCLIPTokenizer) -> DRLModel:
    """DRL on the pretrained transformers CLIP `--clip`, or on a tiny CLIP to train from scratch.

    Args:
        model_args (`ModelArguments`): `--clip`, the DRL options and a from-scratch model's frame and patch size.
        data_args (`DataArguments`): `max_words` and `max_frames`.
        tokenizer (`DRLCLIPTokenizer`): Gives a from-scratch model its vocabulary size and special tokens.
    """
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


def build_model_and_processor(
    model_args: ModelArguments,
    data_args: DataArguments,
    train_rows: Iterable[dict],
    output_dir: Path,
    accelerator: Accelerator,
) -> tuple[DRLModel, DRLProcessor]:
    """The model to train or evaluate and its processor: from `--init`, an OpenAI CLIP file, or `build_model`.

    Args:
        model_args (`ModelArguments`): Where the model starts from and its DRL options.
        data_args (`DataArguments`): The processor's caption and frame settings.
        train_rows (`Iterable[dict]`): The training rows, for a from-scratch vocabulary.
        output_dir (`Path`): The run's output folder, where a from-scratch vocabulary is written.
        accelerator (`Accelerator`): The main process learns a vocabulary first; the others then read it.

    Raises:
        ValueError: `--init` is not a saved DRL folder, or an OpenAI file comes without `--bpe`.
    """
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
        # Read without running code from the file (`checkpoint_files`, shared with the conversion script).
        state_dict = load_official_state_dict(model_args.clip)
        model = from_official_state_dict(state_dict, **model_options(model_args, data_args))
    else:
        model = build_model(model_args, data_args, tokenizer)
    return model, DRLProcessor.for_model(model.config, tokenizer, video_framerate=data_args.video_framerate)
