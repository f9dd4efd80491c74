"""Fine-tune and evaluate DRL with Accelerate.

    python train.py                                  # the embedded toy benchmark, tiny CLIP from scratch, on CPU
    accelerate launch train.py --benchmark toy       # the same on every process / GPU Accelerate is configured for
    python train.py --eval_only --init outputs/drl-toy
    python train.py run.yaml                         # every option from a JSON / YAML file

Without `--clip` or `--init` the model is a tiny CLIP trained from scratch, with a BPE vocabulary learned from
the training captions (no Hub access needed); otherwise the model starts from a pretrained transformers CLIP
(Hub id or local folder) or a saved DRL folder and uses its tokenizer.
"""

import json
import logging
import math
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm
from transformers import CLIPTokenizer, HfArgumentParser, get_cosine_schedule_with_warmup

from dataset_builders import load_benchmark
from modeling_tvr import DRLConfig, DRLModel, DRLProcessor, DRLVideoProcessor, clip_tokenizer_from_bpe
from modeling_tvr.bpe_training import train_clip_bpe
from modeling_tvr.metrics import dual_softmax, format_metrics_table, retrieval_metrics

logger = logging.getLogger("train")

# Per-benchmark settings of the authors' recipe; explicit flags override them.
PRESETS = {
    "toy": {
        "epochs": 20,
        "batch_size": 32,
        "lr": 2e-3,
        "coef_lr": 1.0,
        "weight_decay": 0.01,
        "max_words": 16,
        "max_frames": 8,
        "video_framerate": 4,
        "image_size": 32,
        "cdcr_alpha1": 0.11,
    },
    "msrvtt": {"epochs": 5, "batch_size": 128, "max_words": 32, "max_frames": 12, "video_framerate": 1},
}
DEFAULTS = {
    "epochs": 5,
    "batch_size": 128,
    "lr": 1e-4,
    "coef_lr": 1e-3,
    "weight_decay": 0.2,
    "max_words": 32,
    "max_frames": 12,
    "video_framerate": 1,
    "image_size": 224,
}


@dataclass
class ModelArguments:
    clip: str | None = field(default=None, metadata={"help": "pretrained transformers CLIP: Hub id or local folder"})
    init: str | None = field(default=None, metadata={"help": "a saved DRL folder (model + processor)"})
    bpe: str | None = field(default=None, metadata={"help": "OpenAI's bpe_simple_vocab_16e6.txt.gz for the tokenizer"})
    interaction: str = field(default="wti", metadata={"help": "wti, ti or dp"})
    wti_arch: int = 2
    temporal_module: str = field(default="seqTransf", metadata={"help": "seqTransf or none"})
    temporal_layers: int = 4
    cdcr: int = 3
    cdcr_alpha1: float | None = None
    cdcr_alpha2: float = 0.0
    cdcr_lambda: float = 0.001
    image_size: int | None = field(default=None, metadata={"help": "frame size of a from-scratch model"})


@dataclass
class DataArguments:
    benchmark: str = "toy"
    data_dir: str | None = None
    video_dir: str | None = None
    benchmark_options: str | None = field(
        default=None, metadata={"help": 'JSON of builder options, e.g. \'{"num_videos": 720}\' for the toy benchmark'}
    )
    max_words: int | None = None
    max_frames: int | None = None
    video_framerate: float | None = None
    num_workers: int = 2


@dataclass
class TrainArguments:
    output_dir: str = "outputs/drl-toy"
    epochs: int | None = None
    max_steps: int = -1
    batch_size: int | None = None
    eval_batch_size: int = 64
    lr: float | None = None
    coef_lr: float | None = field(default=None, metadata={"help": "learning-rate factor of the CLIP parameters"})
    weight_decay: float | None = None
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = False
    mixed_precision: str = field(default="no", metadata={"help": "no, fp16 or bf16"})
    seed: int = 42
    do_eval: bool = True
    eval_only: bool = False
    dsl: bool = field(default=False, metadata={"help": "also report dual-softmax re-normalised metrics"})


def resolve_presets(model_args: ModelArguments, data_args: DataArguments, train_args: TrainArguments) -> None:
    """Fills every option left unset with the benchmark's preset, then the general default."""
    preset = {**DEFAULTS, **PRESETS.get(data_args.benchmark, {})}
    for args in (model_args, data_args, train_args):
        for item in fields(args):
            if getattr(args, item.name) is None and item.name in preset:
                setattr(args, item.name, preset[item.name])
    if model_args.cdcr_alpha1 is None:
        model_args.cdcr_alpha1 = 0.11


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


def build_tokenizer(model_args: ModelArguments, train_rows, output_dir: Path):
    if model_args.bpe:
        return clip_tokenizer_from_bpe(model_args.bpe)
    if model_args.clip:
        return CLIPTokenizer.from_pretrained(model_args.clip)
    # From scratch: a small vocabulary in CLIP's format learned from the training captions.
    return train_clip_bpe((row["caption"] for row in train_rows), output_dir / "bpe_vocab.txt.gz", num_merges=2000)


def build_model(model_args: ModelArguments, data_args: DataArguments, tokenizer) -> DRLModel:
    options = {
        "interaction": model_args.interaction,
        "wti_arch": model_args.wti_arch,
        "temporal_module": model_args.temporal_module,
        "temporal_layers": model_args.temporal_layers,
        "cdcr": model_args.cdcr,
        "cdcr_alpha1": model_args.cdcr_alpha1,
        "cdcr_alpha2": model_args.cdcr_alpha2,
        "cdcr_lambda": model_args.cdcr_lambda,
        "max_words": data_args.max_words,
        "max_frames": data_args.max_frames,
    }
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
        "patch_size": max(1, model_args.image_size // 4),
    }
    config = DRLConfig(text_config=text_config, vision_config=vision_config, projection_dim=width, **options)
    return DRLModel(config)


def optimizer_groups(model: DRLModel, lr: float, coef_lr: float, weight_decay: float) -> list[dict]:
    """The authors' groups: CLIP towers at `lr * coef_lr`, new modules at `lr`; no decay for biases and norms."""
    clip_prefixes = ("text_model.", "vision_model.", "text_projection.", "visual_projection.", "logit_scale")
    groups: dict[tuple[bool, bool], list] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        no_decay = parameter.ndim < 2 or "norm" in name or name.endswith(".bias")
        groups.setdefault((name.startswith(clip_prefixes), no_decay), []).append(parameter)
    return [
        {"params": params, "lr": lr * coef_lr if is_clip else lr, "weight_decay": 0.0 if no_decay else weight_decay}
        for (is_clip, no_decay), params in groups.items()
    ]


@torch.no_grad()
def evaluate(model, processor, rows, accelerator: Accelerator, args: TrainArguments, num_workers: int) -> dict:
    """Encodes each test caption and each distinct video once, scores them in chunks, computes the metrics."""
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
        lambda b: (unwrapped.get_text_features(b["input_ids"], b["attention_mask"]), b["attention_mask"]),
    )
    video, video_mask = encode(
        videos,
        lambda batch: processor.video_processor(batch),
        lambda b: (unwrapped.get_video_features(b["pixel_values_videos"], b["video_mask"]), b["video_mask"]),
    )
    similarity = unwrapped.similarity(text, text_mask, video, video_mask).float().cpu()
    results = {"metrics": retrieval_metrics(similarity, text_to_video)}
    if args.dsl:
        results["metrics_dsl"] = retrieval_metrics(dual_softmax(similarity), text_to_video)
    results.update({"num_texts": len(captions), "num_videos": len(videos)})
    return results


def main() -> None:
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainArguments))
    if len(sys.argv) == 2 and sys.argv[1].endswith((".json", ".yaml", ".yml")):
        path = sys.argv[1]
        parsed = parser.parse_json_file(path) if path.endswith(".json") else parser.parse_yaml_file(path)
    else:
        parsed = parser.parse_args_into_dataclasses()
    model_args, data_args, train_args = parsed
    resolve_presets(model_args, data_args, train_args)

    accelerator = Accelerator(
        mixed_precision=train_args.mixed_precision, gradient_accumulation_steps=train_args.gradient_accumulation_steps
    )
    logging.basicConfig(level=logging.INFO if accelerator.is_main_process else logging.WARNING, format="%(message)s")
    set_seed(train_args.seed)
    output_dir = Path(train_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    benchmark_options = json.loads(data_args.benchmark_options) if data_args.benchmark_options else {}
    with accelerator.main_process_first():  # one process builds / caches the benchmark, the others reuse it
        data = load_benchmark(
            data_args.benchmark, data_dir=data_args.data_dir, video_dir=data_args.video_dir, **benchmark_options
        )
    eval_split = "test" if "test" in data else next(iter(data))
    train_rows = list(data["train"]) if "train" in data else []

    if model_args.init:
        model = DRLModel.from_pretrained(model_args.init)
        processor = DRLProcessor.from_pretrained(model_args.init)
    else:
        with accelerator.main_process_first():
            tokenizer = build_tokenizer(model_args, train_rows, output_dir)
        model = build_model(model_args, data_args, tokenizer)
        size = model.config.vision_config.image_size
        video_processor = DRLVideoProcessor(
            size={"shortest_edge": size},
            crop_size={"height": size, "width": size},
            max_frames=data_args.max_frames,
            video_framerate=data_args.video_framerate,
        )
        processor = DRLProcessor(video_processor=video_processor, tokenizer=tokenizer, max_words=data_args.max_words)
    if train_args.gradient_checkpointing:
        model.activation_checkpointing_enable()

    def collate(batch):
        captions, videos = zip(*batch, strict=True)
        return processor(text=list(captions), videos=list(videos))

    if not train_args.eval_only:
        loader = DataLoader(
            CaptionedVideos(train_rows),
            batch_size=train_args.batch_size // accelerator.num_processes,
            shuffle=True,
            drop_last=True,
            collate_fn=collate,
            num_workers=data_args.num_workers,
            persistent_workers=data_args.num_workers > 0,
        )
        optimizer = torch.optim.AdamW(
            optimizer_groups(model, train_args.lr, train_args.coef_lr, train_args.weight_decay),
            betas=(0.9, 0.98),
            eps=1e-6,
        )
        steps_per_epoch = math.ceil(len(loader) / train_args.gradient_accumulation_steps)
        total_steps = train_args.max_steps if train_args.max_steps > 0 else train_args.epochs * steps_per_epoch
        scheduler = get_cosine_schedule_with_warmup(optimizer, int(train_args.warmup_ratio * total_steps), total_steps)
        model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
        logger.info(
            "Training on %d pairs, %d steps, %d process(es).", len(train_rows), total_steps, accelerator.num_processes
        )
        step = 0
        progress = tqdm(total=total_steps, disable=not accelerator.is_main_process)
        model.train()
        while step < total_steps:
            for batch in loader:
                with accelerator.accumulate(model):
                    out = model(**batch, return_loss=True)
                    accelerator.backward(out.loss)
                    if accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(model.parameters(), train_args.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                if accelerator.sync_gradients:
                    # The authors clamp the temperature after every step.
                    with torch.no_grad():
                        accelerator.unwrap_model(model).logit_scale.clamp_(0, math.log(100))
                    step += 1
                    progress.update(1)
                    progress.set_postfix(loss=f"{out.loss.item():.3f}", cdcr=f"{out.cdcr_loss.item():.3f}")
                    if step >= total_steps:
                        break
        progress.close()

    results = {"benchmark": data_args.benchmark, "split": eval_split, "selection": "last step"}
    if train_args.do_eval or train_args.eval_only:
        results.update(
            evaluate(model, processor, list(data[eval_split]), accelerator, train_args, data_args.num_workers)
        )
        if accelerator.is_main_process:
            print(
                f"\n{data_args.benchmark} {eval_split}: {results['num_texts']} captions, {results['num_videos']} videos"
            )
            print(format_metrics_table(results["metrics"]))
            if "metrics_dsl" in results:
                print("\nwith dual softmax (DSL):\n" + format_metrics_table(results["metrics_dsl"]))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        results["arguments"] = {**asdict(model_args), **asdict(data_args), **asdict(train_args)}
        (output_dir / "metrics.json").write_text(json.dumps(results, indent=2))
        if not train_args.eval_only:
            accelerator.unwrap_model(model).save_pretrained(output_dir)
            processor.save_pretrained(output_dir)
            logger.info("Saved model, processor and metrics.json to %s", output_dir)


if __name__ == "__main__":
    main()
