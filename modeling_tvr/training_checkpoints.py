"""Training checkpoints that a killed run can never leave half-written, and the position to resume from.

A checkpoint is written into a temporary folder, then renamed to `step-XXXXXXXX`; the pointer file `latest` is
replaced atomically afterwards. A run killed at any moment therefore leaves `latest` naming a complete checkpoint
(or no `latest` at all), and at worst a stray temporary folder that the next save removes.
"""

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from accelerate import Accelerator

LATEST = "latest"
POSITION = "position.json"


@dataclass
class TrainingPosition:
    """Where the run stands: optimizer steps done, the epoch, and the batches of that epoch already consumed."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def save_checkpoint(accelerator: Accelerator, folder: Path, position: TrainingPosition, keep: int = 2) -> Path | None:
    """
    Saves model, optimizer, scheduler and RNG states (`accelerator.save_state`) plus `position`, atomically, and
    keeps the `keep` most recent checkpoints. Every process must call it; the main process does the file work.
    """
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step-{position.step:08d}"
    temporary = folder / f".tmp-step-{position.step:08d}"
    if accelerator.is_main_process and temporary.exists():
        shutil.rmtree(temporary)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary))
    if accelerator.is_main_process:
        (temporary / POSITION).write_text(json.dumps(asdict(position)))
        if final.exists():
            shutil.rmtree(final)
        os.replace(temporary, final)
        _write_atomic(folder / LATEST, final.name)
        for stale in sorted(folder.glob("step-*"))[:-keep]:
            shutil.rmtree(stale, ignore_errors=True)
        for leftover in folder.glob(".tmp-step-*"):
            shutil.rmtree(leftover, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def latest_checkpoint(folder: Path) -> Path | None:
    """The checkpoint `latest` names, if it exists and is complete."""
    pointer = folder / LATEST
    if not pointer.is_file():
        return None
    checkpoint = folder / pointer.read_text().strip()
    return checkpoint if (checkpoint / POSITION).is_file() else None


def load_checkpoint(accelerator: Accelerator, checkpoint: Path) -> TrainingPosition:
    """Restores every state saved by `save_checkpoint` and returns the position to continue from."""
    accelerator.load_state(str(checkpoint))
    return TrainingPosition(**json.loads((checkpoint / POSITION).read_text()))
