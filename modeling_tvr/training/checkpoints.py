"""Training checkpoints that a killed run can never leave half-written, the position to resume from, and the best
epoch's weights.

A checkpoint is written into a temporary folder, then renamed to `step-XXXXXXXX`; the pointer file `latest` is
replaced atomically afterwards. A run killed at any moment therefore leaves complete checkpoints and at worst a stray
temporary folder that the next save removes. Resuming takes the checkpoint `latest` names; if that pointer is missing
or dangling, or the checkpoint fails to load (a truncated file), it falls back to the newest complete one that loads,
with a warning, and refuses to start from scratch while checkpoints exist that none of which loads.

The model-selection state (best validation score and epoch) travels in each checkpoint's `position.json`, and the best
epoch's weights live on disk in `best/`, so a resumed run ends with exactly the model an uninterrupted run keeps.
"""

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from safetensors.torch import load_model, save_model

logger = logging.getLogger(__name__)

LATEST = "latest"
POSITION = "position.json"
# The learning-rate schedule's state, under the name Accelerate gives a scheduler it prepared: train.py steps the
# schedule itself (once per optimiser step, not once per process), and checkpoints written when Accelerate held it
# keep loading.
SCHEDULER = "scheduler.bin"
BEST = "best"
BEST_WEIGHTS = "model.safetensors"
_PREFIX = "step-"


class CheckpointError(RuntimeError):
    """Checkpoints exist but none can be resumed from; the message says what was tried."""


@dataclass
class TrainingPosition:
    """Where the run stands: optimizer steps done, the epoch, the batches of that epoch already consumed, and the
    model selection so far (best validation score and its epoch; None before the first validation)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_score: float | None = None
    best_epoch: int | None = None


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _step_of(checkpoint: Path) -> int | None:
    suffix = checkpoint.name[len(_PREFIX) :]
    return int(suffix) if checkpoint.name.startswith(_PREFIX) and suffix.isdigit() else None


def complete_checkpoints(folder: Path) -> list[Path]:
    """The checkpoints in `folder` that finished writing (they hold `position.json`), by step number, oldest first."""
    if not folder.is_dir():
        return []
    found = [path for path in folder.iterdir() if _step_of(path) is not None and (path / POSITION).is_file()]
    return sorted(found, key=_step_of)


def save_checkpoint(
    accelerator: Accelerator, folder: Path, position: TrainingPosition, keep: int = 2, scheduler=None
) -> Path | None:
    """
    Saves model, optimizer and RNG states (`accelerator.save_state`), the `scheduler`'s if any, and `position`,
    atomically, and
    keeps this checkpoint and the `keep - 1` before it by step number. Checkpoints with a higher step than this one
    come from an earlier run in the same folder and are removed. Every process must call it; the main process does
    the file work.
    """
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{_PREFIX}{position.step:08d}"
    temporary = folder / f".tmp-{_PREFIX}{position.step:08d}"
    if accelerator.is_main_process and temporary.exists():
        shutil.rmtree(temporary)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary))
    if accelerator.is_main_process:
        if scheduler is not None:
            torch.save(scheduler.state_dict(), temporary / SCHEDULER)
        (temporary / POSITION).write_text(json.dumps(asdict(position)))  # last: it marks the checkpoint complete
        if final.exists():
            shutil.rmtree(final)
        os.replace(temporary, final)
        _write_atomic(folder / LATEST, final.name)
        others = [path for path in folder.iterdir() if _step_of(path) is not None and path != final]
        stale = [path for path in others if _step_of(path) > position.step]
        earlier = sorted((path for path in others if _step_of(path) < position.step), key=_step_of)
        for path in stale + earlier[: max(0, len(earlier) - (keep - 1))]:
            shutil.rmtree(path, ignore_errors=True)
        for leftover in folder.glob(f".tmp-{_PREFIX}*"):
            shutil.rmtree(leftover, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def latest_checkpoint(folder: Path) -> Path | None:
    """The checkpoint to resume from: the one `latest` names if it is complete, else the newest complete one."""
    pointer = folder / LATEST
    named = folder / pointer.read_text().strip() if pointer.is_file() else None
    if named is not None and (named / POSITION).is_file() and _step_of(named) is not None:
        return named
    complete = complete_checkpoints(folder)
    if complete:
        reason = "is missing" if named is None else f"names {named.name}, which is not a complete checkpoint"
        logger.warning(
            "%s/%s %s; resuming from the newest complete checkpoint, %s.", folder, LATEST, reason, complete[-1]
        )
        return complete[-1]
    return None


def load_checkpoint(accelerator: Accelerator, checkpoint: Path, scheduler=None) -> TrainingPosition:
    """Restores every state saved by `save_checkpoint` (the `scheduler`'s too, if given) and returns the position to
    continue from."""
    position = TrainingPosition(**json.loads((checkpoint / POSITION).read_text()))
    accelerator.load_state(str(checkpoint))
    if scheduler is not None:
        scheduler.load_state_dict(torch.load(checkpoint / SCHEDULER, weights_only=True))
    return position


def resume_from_folder(accelerator: Accelerator, folder: Path, scheduler=None) -> tuple[TrainingPosition, Path] | None:
    """Loads the checkpoint `latest_checkpoint` picks, falling back to older complete ones when one fails to load.

    Returns None when `folder` holds no checkpoint at all.

    Raises:
        CheckpointError: checkpoints exist but none loads (training would otherwise silently start from scratch).
    """
    first = latest_checkpoint(folder)
    if first is None:
        leftovers = [path.name for path in folder.iterdir()] if folder.is_dir() else []
        if any(name.startswith((_PREFIX, f".tmp-{_PREFIX}")) for name in leftovers):
            raise CheckpointError(
                f"{folder} holds checkpoint folders but none is complete ({', '.join(sorted(leftovers))}); remove "
                "them to start from scratch, or drop --resume."
            )
        return None
    candidates = [first] + [path for path in reversed(complete_checkpoints(folder)) if _step_of(path) < _step_of(first)]
    failures = []
    for checkpoint in candidates:
        try:
            return load_checkpoint(accelerator, checkpoint, scheduler), checkpoint
        except Exception as error:  # a truncated or corrupt state file: try the previous checkpoint
            failures.append(f"{checkpoint.name}: {type(error).__name__}: {error}")
            logger.warning(
                "Cannot resume from %s (%s: %s); trying an earlier one.", checkpoint, type(error).__name__, error
            )
    raise CheckpointError(f"No checkpoint in {folder} could be loaded: {'; '.join(failures)}")


def save_best_weights(accelerator: Accelerator, folder: Path, model) -> None:
    """Writes the model's weights as the best epoch's (`folder/best/model.safetensors`, atomically)."""
    if accelerator.is_main_process:
        target = folder / BEST / BEST_WEIGHTS
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp")
        save_model(accelerator.unwrap_model(model), str(temporary))
        os.replace(temporary, target)
    accelerator.wait_for_everyone()


def load_best_weights(accelerator: Accelerator, folder: Path, model) -> None:
    """Loads the weights `save_best_weights` wrote into the model."""
    load_model(accelerator.unwrap_model(model), str(folder / BEST / BEST_WEIGHTS))
