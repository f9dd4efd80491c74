"""Benchmark: one training step (forward, loss, backward, optimizer step) eager against `torch.compile(fullgraph=True)`.

On CPU it runs a small model by default; on a GPU, `--paper` takes the paper's sizes (ViT-B/32 towers, batch 128,
12 frames, 32 words, bf16 autocast) so that a lent GPU measures the real case in one call:

    python -m bench.compile_step --write                 # CPU, small model
    python -m bench.compile_step --paper --device cuda   # GPU, ViT-B/32 sizes, bf16
"""

import argparse
import platform
from contextlib import nullcontext
from datetime import date

import torch

from bench.report import write_section
from bench.timing import mean_time, timed
from modeling_tvr import DRLConfig, DRLModel
from modeling_tvr.training.optimization import build_optimizer


def config_and_batch(paper: bool, batch_size: int, device: str):
    if paper:  # OpenAI ViT-B/32 sizes
        text = {
            "vocab_size": 49408,
            "hidden_size": 512,
            "intermediate_size": 2048,
            "num_hidden_layers": 12,
            "num_attention_heads": 8,
            "max_position_embeddings": 77,
            "bos_token_id": 49406,
            "eos_token_id": 49407,
        }
        vision = {
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "image_size": 224,
            "patch_size": 32,
        }
        frames, words, width = 12, 32, 512
    else:
        text = {
            "vocab_size": 1000,
            "hidden_size": 128,
            "intermediate_size": 512,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 32,
            "bos_token_id": 998,
            "eos_token_id": 999,
        }
        vision = {
            "hidden_size": 128,
            "intermediate_size": 512,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 64,
            "patch_size": 16,
        }
        frames, words, width = 8, 16, 128
    config = DRLConfig(text_config=text, vision_config=vision, projection_dim=width, max_frames=frames, max_words=words)
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(1, text["bos_token_id"], (batch_size, words), generator=generator)
    lengths = torch.randint(4, words + 1, (batch_size,), generator=generator)
    attention_mask = (torch.arange(words)[None] < lengths[:, None]).long()
    input_ids[torch.arange(batch_size), lengths - 1] = text["eos_token_id"]
    input_ids[:, 0] = text["bos_token_id"]
    video_mask = torch.ones(batch_size, frames, dtype=torch.long)
    video_mask[: batch_size // 2, frames // 2 :] = 0
    size = vision["image_size"]
    pixels = torch.randn(batch_size, frames, 3, size, size, generator=generator) * video_mask[..., None, None, None]
    batch = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "pixel_values_videos": pixels,
        "video_mask": video_mask,
    }
    return config, {key: value.to(device) for key, value in batch.items()}


def seconds_per_step(model, batch, steps: int, autocast) -> float:
    optimizer, _ = build_optimizer(
        model, lr=1e-4, coef_lr=1e-3, weight_decay=0.2, warmup_proportion=0.1, total_steps=100
    )

    def step():
        with autocast():
            loss = model(**batch, return_loss=True).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step()  # compilation or warm-up
    step()
    return mean_time(step, steps, synchronize=torch.cuda.synchronize if batch["input_ids"].is_cuda else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paper", action="store_true", help="ViT-B/32 sizes, batch 128, 12 frames, bf16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    batch_size = args.batch_size or (128 if args.paper else 16)
    config, batch = config_and_batch(args.paper, batch_size, args.device)
    autocast = (lambda: torch.autocast(args.device, dtype=torch.bfloat16)) if args.paper else nullcontext
    timings = {}
    for name in ("eager", "compiled"):
        torch.manual_seed(0)
        model = DRLModel(config).to(args.device).train()
        if name == "compiled":
            torch._dynamo.reset()
            model = torch.compile(model, fullgraph=True)
        total, timings[name] = timed(lambda m=model: seconds_per_step(m, batch, args.steps, autocast))
        timings[f"{name} first two steps"] = total - args.steps * timings[name]
    sizes = "ViT-B/32 sizes, bf16 autocast" if args.paper else "small model (2 + 2 layers of width 128, 64 px frames)"
    text = "\n".join(
        [
            f"One training step (forward, loss, backward, the authors' optimizer), {sizes}, batch {batch_size}, "
            f"{config.max_frames} frames, device {args.device}, mean of {args.steps} steps after two warm-up steps; "
            f"{platform.machine()}, torch {torch.__version__}, {date.today().isoformat()}. Command: "
            f"`python -m bench.compile_step{' --paper' if args.paper else ''} --device {args.device} --write`.",
            "",
            "| step | ms per step | warm-up (s) |",
            "| --- | --- | --- |",
            f"| eager | {timings['eager'] * 1e3:.1f} | {timings['eager first two steps']:.1f} |",
            f"| torch.compile(fullgraph=True) | {timings['compiled'] * 1e3:.1f} | "
            f"{timings['compiled first two steps']:.1f} |",
            "",
            f"Compiled step: {timings['eager'] / timings['compiled']:.2f}x the speed of the eager one.",
        ]
    )
    print(text)
    if args.write:
        key = "compile_step_paper" if args.paper else "compile_step"
        write_section(key, f"Training step, eager vs compiled ({args.device})", text)


if __name__ == "__main__":
    main()
