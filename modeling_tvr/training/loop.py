"""The training loop: one optimiser step (`training_step`), the epochs of a run with logging, checkpoints, the stop of a
diverged run and the choice of the best epoch on the validation split (`TrainingLoop`), and the set-up that hands the
model, optimiser and loader to Accelerate and restores a resumed run's position (`prepare_training`)."""

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .. import DRLProcessor
from ..frame_cache import FrameCache
from .arguments import DataArguments, TrainArguments
from .cached_frames import model_inputs
from .checkpoints import (
    CheckpointError,
    TrainingPosition,
    complete_checkpoints,
    load_best_weights,
    resume_from_folder,
    save_best_weights,
    save_checkpoint,
)
from .evaluation import evaluate
from .finite import NonFiniteError, NonFiniteGuard, describe_tensors, diverged, nonfinite_tensors
from .loader import EpochShuffle, train_loader
from .optimization import build_optimizer, pre_gather_parameters, scale_pre_gather_gradients

__all__ = [
    "LossObserver",
    "StepCallback",
    "TrainingLoop",
    "prepare_training",
    "restore_position",
    "training_step",
]

# The run's messages go to one logger, whichever module of the run writes them.
logger = logging.getLogger("train")

StepCallback = Callable[[TrainingPosition], None]
"""Called with the position after every optimiser step (see `TrainingLoop`)."""

LossObserver = Callable[[torch.Tensor, torch.Tensor | None], None]
"""Given a step's loss and the total gradient norm the clip computed (see `training_step`)."""


def training_step(
    model: torch.nn.Module,
    batch: dict,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    accelerator: Accelerator,
    args: TrainArguments,
    pre_gather: Sequence[torch.nn.Parameter],
    observe: LossObserver | None = None,
) -> Any:
    """One (micro-)batch: loss, backward, clipping and, when gradients are synchronised, the optimizer step.

    Args:
        model (`torch.nn.Module`): The prepared DRL model.
        batch (`dict`): The model's inputs.
        optimizer (`torch.optim.Optimizer`): The prepared optimiser.
        scheduler (*optional*):
            The learning-rate schedule, stepped once per optimiser step; None where the optimiser schedules itself
            (the authors' BertAdam).
        accelerator (`Accelerator`): The run's; it accumulates gradients and clips them.
        args (`TrainArguments`): `max_grad_norm` and `authors_world_size`.
        pre_gather (`Sequence[torch.nn.Parameter]`):
            With the authors' recipe and `authors_world_size` N > 1, the parameters whose gradients are scaled by 1/N
            before the global clip (see `prepare_training`); otherwise empty.
        observe (`LossObserver`, *optional*):
            Given the loss and the total gradient norm the clip computed (None on a micro-batch without a step, and
            under fp16's GradScaler, which expects non-finite gradients while it tunes its scale and skips those steps
            itself); the training loop's `NonFiniteGuard` watches them.

    Returns:
        The model's output (`DRLOutput`) of the batch.
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


def restore_position(
    accelerator: Accelerator, checkpoints: Path, resume: bool, scheduler: Any = None
) -> TrainingPosition:
    """The position to start from: the latest loadable checkpoint's with `resume`, else the beginning.

    Without `resume`, checkpoints of an earlier run are left for this run's saves to replace, with a warning, so that
    forgetting `--resume` does not go unnoticed.

    Args:
        accelerator (`Accelerator`): Holds the prepared model and optimiser the checkpoint is loaded into.
        checkpoints (`Path`): The run's checkpoint folder.
        resume (`bool`): Whether to continue from the latest checkpoint.
        scheduler (*optional*): The learning-rate schedule, whose state the checkpoint holds too.

    Raises:
        SystemExit: `resume` and no checkpoint can be loaded although some are there (one line).
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


class TrainingLoop:
    """The epochs of one run over a prepared model, optimiser and loader: steps, logging, checkpoints and the choice
    of the best epoch on the validation split. Everything a resumed run needs to continue exactly is in
    `self.position` (saved with each checkpoint) or on disk.

    Args:
        model (`torch.nn.Module`): The prepared DRL model.
        optimizer (`torch.optim.Optimizer`): The prepared optimiser.
        scheduler (*optional*): The learning-rate schedule (see `training_step`).
        loader (`Iterable`): The prepared training loader (or any sized iterable of batches).
        sampler (`EpochShuffle`): What sets the order of each epoch (`use_epoch`).
        accelerator (`Accelerator`): The run's.
        args (`TrainArguments`): The run's options (`output_dir`, logging, checkpoints, validation, clipping).
        total_steps (`int`): The optimiser steps of the whole run.
        pre_gather (`list`): The parameters whose gradients `training_step` scales (see there).
        validate (`Callable[[], float]`, *optional*):
            Scores the model on the validation split (higher is better); None when there is none.
        learning_rates (`Callable[[], list[float]]`): The learning rates of the next step, for the logs.
        callbacks (`Sequence[StepCallback]`, *optional*):
            Called with the position after every optimiser step, once its checkpoint (if one is due) is written; a
            callback that raises or ends the process stops the run there.
        to_model_inputs (`Callable`, *optional*):
            Turns a loader batch (on the device) into the model's inputs: a frame cache's uint8 frames into pixel
            values (`model_inputs`); None: batches are the inputs.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        loader: Iterable,
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
                    f"the loss or gradient norm was NaN or infinite at step {step} of {self.total_steps}", self.args.lr
                )
            )

    def ensure_finite(self) -> None:
        """Stops the run before anything is saved, validated or selected if the loss, a gradient or a weight is not
        finite; the weights are checked too because an update can overflow with finite gradients (fp16 matrices)."""
        self.stop_if_diverged()
        bad = nonfinite_tensors(self.accelerator.unwrap_model(self.model).state_dict())
        if bad:
            what = f"the weights hold NaN or infinite values after step {self.position.step} ({describe_tensors(bad)})"
            raise NonFiniteError(diverged(what, self.args.lr))

    def end_step(self, out: Any) -> None:
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

    def log(self, out: Any) -> None:
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


def prepare_training(
    model: torch.nn.Module,
    processor: DRLProcessor,
    train_rows: Sequence[dict],
    validation_rows: Sequence[dict],
    accelerator: Accelerator,
    data_args: DataArguments,
    train_args: TrainArguments,
    callbacks: Sequence[StepCallback] = (),
    frames: FrameCache | None = None,
) -> TrainingLoop:
    """Builds the loader and optimiser, hands them to Accelerate, and restores the position when resuming.

    Args:
        model (`torch.nn.Module`): The DRL model to train (not yet prepared).
        processor (`DRLProcessor`): Its processor.
        train_rows (`Sequence[dict]`): The training rows.
        validation_rows (`Sequence[dict]`): The validation rows; empty: the last step's model is kept.
        accelerator (`Accelerator`): The run's.
        data_args (`DataArguments`): The data options (`num_workers`).
        train_args (`TrainArguments`): The training options.
        callbacks (`Sequence[StepCallback]`, *optional*): Go to the loop (see `TrainingLoop`).
        frames (`FrameCache`, *optional*): A filled frame cache that training and validation read instead of decoding.
    """
    loader: DataLoader = train_loader(processor, train_rows, accelerator, data_args, train_args, frames)
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
