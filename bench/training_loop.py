"""Benchmark: training samples/s of train.py's Accelerate loop against a plain PyTorch loop, same model and batch,
and of train.py with the authors' recipe (BertAdam, fp16 CLIP matrices, gradient mix of 4 GPUs) against AdamW.

Data loading is left out (one preprocessed toy batch is reused) so that the figure isolates the loop's own cost.
The loops alternate for several rounds and the best round of each is kept.

    python -m bench.training_loop --write
"""

import argparse
import copy
import math
import platform
from datetime import date
from pathlib import Path

import torch
from accelerate import Accelerator

from bench.report import write_section
from bench.timing import alternating_best
from dataset_builders import load_benchmark
from modeling_tvr import DRLProcessor
from modeling_tvr.training.arguments import DataArguments, ModelArguments, TrainArguments, resolve_presets
from modeling_tvr.training.loop import training_step
from modeling_tvr.training.model_setup import build_model, build_tokenizer
from modeling_tvr.training.optimization import build_optimizer, pre_gather_parameters


def toy_batch_and_model(batch_size: int, work: Path):
    model_args, data_args, train_args = ModelArguments(), DataArguments(), TrainArguments()
    resolve_presets(model_args, data_args, train_args)
    rows = list(load_benchmark("toy")["train"])[:batch_size]
    tokenizer = build_tokenizer(model_args, rows, work)
    torch.manual_seed(0)
    model = build_model(model_args, data_args, tokenizer)
    processor = DRLProcessor.for_model(model.config, tokenizer, video_framerate=data_args.video_framerate)
    batch = processor(text=[row["caption"] for row in rows], videos=[row["video"] for row in rows])
    return model, dict(batch), train_args


def make_optimizer(model, train_args, steps, recipe="adamw"):
    return build_optimizer(
        model,
        lr=train_args.lr,
        coef_lr=train_args.coef_lr,
        weight_decay=train_args.weight_decay,
        warmup_proportion=0.1,
        total_steps=10 * steps,
        recipe=recipe,
        fp16_clip_matrices=recipe == "authors",
    )


def plain_steps(model, batch, optimizer, scheduler, steps, max_grad_norm):
    for _ in range(steps):
        out = model(**batch, return_loss=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        with torch.no_grad():
            model.logit_scale.clamp_(max=math.log(100))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    work = Path("outputs/bench-training-loop")
    model, batch, train_args = toy_batch_and_model(args.batch_size, work)
    plain_model = copy.deepcopy(model).train()
    authors_model = copy.deepcopy(model).train()
    plain_optimizer, plain_scheduler = make_optimizer(plain_model, train_args, args.steps)

    accelerator = Accelerator()
    optimizer, scheduler = make_optimizer(model, train_args, args.steps)
    model, optimizer = accelerator.prepare(model, optimizer)  # train.py steps the scheduler itself
    model.train()
    authors_args = copy.copy(train_args)
    authors_args.authors_world_size = 4
    authors_optimizer, _ = make_optimizer(authors_model, train_args, args.steps, recipe="authors")
    authors_pre_gather = pre_gather_parameters(authors_model)
    authors_model, authors_optimizer = accelerator.prepare(authors_model, authors_optimizer)
    batch = {key: value.to(accelerator.device) for key, value in batch.items()}

    def accelerate_steps():
        for _ in range(args.steps):
            training_step(model, batch, optimizer, scheduler, accelerator, train_args, [])

    def authors_steps():
        for _ in range(args.steps):
            training_step(authors_model, batch, authors_optimizer, None, accelerator, authors_args, authors_pre_gather)

    def plain():
        plain_steps(plain_model, batch, plain_optimizer, plain_scheduler, args.steps, train_args.max_grad_norm)

    loops = (("accelerate", accelerate_steps), ("authors", authors_steps), ("plain", plain))
    for _, loop in loops:
        loop()  # warm-up
    best = alternating_best(dict(loops), args.rounds)
    rate = {name: args.batch_size * args.steps / seconds for name, seconds in best.items()}
    overhead = (best["accelerate"] / best["plain"] - 1) * 100
    text = "\n".join(
        [
            f"Toy model (`python train.py` defaults), batch {args.batch_size}, {args.steps} steps per round, best of "
            f"{args.rounds} alternating rounds, {torch.get_num_threads()} threads, data loading excluded; "
            f"{platform.machine()}, torch {torch.__version__}, {date.today().isoformat()}. "
            "Command: `python -m bench.training_loop --write`.",
            "",
            "| loop | samples / s |",
            "| --- | --- |",
            f"| train.py (`training_step` under Accelerate), AdamW recipe (toy default) | {rate['accelerate']:.1f} |",
            f"| train.py, authors' recipe (BertAdam, fp16 CLIP matrices, 4-GPU gradient mix) | {rate['authors']:.1f} |",
            f"| plain PyTorch, AdamW | {rate['plain']:.1f} |",
            "",
            f"Overhead of the Accelerate loop: {overhead:+.1f}%. The authors' recipe costs "
            f"{best['authors'] / best['accelerate']:.2f}x the time of an AdamW step here.",
        ]
    )
    print(text)
    if args.write:
        write_section("training_loop", "Training loop overhead", text)


if __name__ == "__main__":
    main()
