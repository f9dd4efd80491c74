"""Training checkpoints: pruning by step, falling back past a broken one, never silently restarting."""

import json
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator

from modeling_tvr.training.checkpoints import (
    CheckpointError,
    TrainingPosition,
    latest_checkpoint,
    resume_from_folder,
    save_checkpoint,
)


@pytest.fixture
def trainer():
    """An accelerator with a tiny model and optimizer registered, as train.py prepares them."""
    accelerator = Accelerator(cpu=True)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model, optimizer = accelerator.prepare(model, optimizer)
    return accelerator, model, optimizer


def take_steps(model, optimizer, steps: int) -> None:
    for _ in range(steps):
        model(torch.ones(3, 4)).sum().backward()
        optimizer.step()
        optimizer.zero_grad()


def steps_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("step-"))


def test_pruning_keeps_this_runs_newest_checkpoints_and_drops_an_earlier_runs_later_ones(trainer, tmp_path):
    accelerator, model, optimizer = trainer
    for step in (400, 500):  # an earlier, longer run in the same output_dir
        save_checkpoint(accelerator, tmp_path, TrainingPosition(step=step))
    for step in (10, 20, 30):
        take_steps(model, optimizer, 1)
        save_checkpoint(accelerator, tmp_path, TrainingPosition(step=step), keep=2)
    assert steps_in(tmp_path) == ["step-00000020", "step-00000030"]
    assert (tmp_path / "latest").read_text() == "step-00000030"


@pytest.mark.parametrize("pointer", [None, "step-99999999", "garbage\n\x00"])
def test_a_missing_or_dangling_pointer_falls_back_to_the_newest_complete_checkpoint(trainer, tmp_path, pointer):
    accelerator, model, optimizer = trainer
    for step in (4, 8):
        take_steps(model, optimizer, 1)
        save_checkpoint(accelerator, tmp_path, TrainingPosition(step=step, best_score=12.5, best_epoch=1))
    (tmp_path / "latest").unlink()
    if pointer is not None:
        (tmp_path / "latest").write_text(pointer)
    assert latest_checkpoint(tmp_path) == tmp_path / "step-00000008"
    position, checkpoint = resume_from_folder(accelerator, tmp_path)
    assert (position.step, position.best_score, position.best_epoch) == (8, 12.5, 1)


def test_a_truncated_checkpoint_file_falls_back_to_the_previous_complete_checkpoint(trainer, tmp_path):
    accelerator, model, optimizer = trainer
    take_steps(model, optimizer, 1)
    save_checkpoint(accelerator, tmp_path, TrainingPosition(step=4))
    at_step_4 = [p.detach().clone() for p in model.parameters()]
    take_steps(model, optimizer, 1)
    save_checkpoint(accelerator, tmp_path, TrainingPosition(step=8))
    weights = next((tmp_path / "step-00000008").glob("model*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:40])
    position, checkpoint = resume_from_folder(accelerator, tmp_path)
    assert (position.step, checkpoint.name) == (4, "step-00000004")
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), at_step_4, strict=True))


def test_checkpoints_that_all_fail_to_load_are_an_error_not_a_fresh_start(trainer, tmp_path):
    accelerator, model, optimizer = trainer
    save_checkpoint(accelerator, tmp_path, TrainingPosition(step=4))
    weights = next((tmp_path / "step-00000004").glob("model*.safetensors"))
    weights.write_bytes(b"\x00" * 8)
    with pytest.raises(CheckpointError, match="step-00000004"):
        resume_from_folder(accelerator, tmp_path)
    # Checkpoint folders without position.json (killed before completion) are not a fresh start either.
    (tmp_path / "step-00000004" / "position.json").unlink()
    (tmp_path / "latest").unlink()
    with pytest.raises(CheckpointError, match="none is complete"):
        resume_from_folder(accelerator, tmp_path)
    assert resume_from_folder(accelerator, tmp_path / "empty") is None


def test_position_round_trips_with_the_model_selection(trainer, tmp_path):
    accelerator, _, _ = trainer
    position = TrainingPosition(step=12, epoch=2, batch_in_epoch=3, best_score=40.0, best_epoch=2)
    save_checkpoint(accelerator, tmp_path, position)
    assert json.loads((tmp_path / "step-00000012" / "position.json").read_text())["best_epoch"] == 2
    assert resume_from_folder(accelerator, tmp_path)[0] == position


def linear_schedule(optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / 10)


def test_the_schedule_is_saved_and_restored_with_the_checkpoint(trainer, tmp_path):
    accelerator, model, optimizer = trainer
    scheduler = linear_schedule(optimizer)
    for _ in range(3):
        take_steps(model, optimizer, 1)
        scheduler.step()
    save_checkpoint(accelerator, tmp_path, TrainingPosition(step=3), scheduler=scheduler)
    fresh = linear_schedule(optimizer)
    position, _ = resume_from_folder(accelerator, tmp_path, fresh)
    assert position.step == 3
    assert fresh.last_epoch == 3 and fresh.get_last_lr() == scheduler.get_last_lr()


def test_a_checkpoint_whose_schedule_accelerate_saved_still_resumes(tmp_path):
    """Checkpoints written while Accelerate held the scheduler (`prepare(..., scheduler)`, before train.py stepped it
    itself) keep their layout: the schedule's state in `scheduler.bin`."""
    accelerator = Accelerator(cpu=True)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model, optimizer, prepared = accelerator.prepare(model, optimizer, linear_schedule(optimizer))
    for _ in range(4):
        take_steps(model, optimizer, 1)
        prepared.step()
    written = tmp_path / "step-00000004"
    accelerator.save_state(str(written))
    (written / "position.json").write_text(json.dumps({"step": 4}))

    later = Accelerator(cpu=True)
    model = torch.nn.Linear(4, 2)
    model, optimizer = later.prepare(model, torch.optim.AdamW(model.parameters(), lr=0.1))
    fresh = linear_schedule(optimizer)
    position, _ = resume_from_folder(later, tmp_path, fresh)
    assert position.step == 4 and fresh.last_epoch == 4
