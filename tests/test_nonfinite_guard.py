"""A diverged run (NaN / inf loss, gradients or weights) stops with a one-line error and never saves, selects or
uploads non-finite weights (issue 21)."""

import json
import math
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file

from modeling_tvr.training import outputs
from modeling_tvr.training.arguments import DataArguments, ModelArguments, TrainArguments, resolve_presets
from modeling_tvr.training.finite import NonFiniteError, NonFiniteGuard, nonfinite_tensors
from modeling_tvr.training.loop import TrainingLoop

from .helpers import random_batch, tiny_model, tiny_model_for, tiny_processor
from .train_runs import SMALL_TOY, run_train


def test_nonfinite_tensors_names_nan_and_inf_but_not_large_finite_fp16_weights():
    tensors = {
        "fine": torch.ones(3),
        "nan": torch.tensor([1.0, math.nan]),
        "big_fp16": torch.full((1000, 1000), 60000.0, dtype=torch.float16),  # its 2-norm overflows fp16; it is finite
        "inf_bf16": torch.tensor([-math.inf], dtype=torch.bfloat16),
        "empty": torch.zeros(0),
        "ids": torch.arange(3),
    }
    assert nonfinite_tensors(tensors) == ["nan", "inf_bf16"]
    assert nonfinite_tensors({"fine": torch.ones(2), "ids": torch.arange(2)}) == []


def test_guard_records_the_first_nonfinite_step_of_loss_or_gradient_norm():
    guard = NonFiniteGuard()
    assert guard.first_bad_step() is None
    guard.observe(1, torch.tensor(2.0), torch.tensor(0.5))
    guard.observe(2, torch.tensor(2.0), None)
    assert guard.first_bad_step() is None
    guard.observe(3, torch.tensor(1.0), torch.tensor(math.inf))
    guard.observe(4, torch.tensor(math.nan), torch.tensor(math.nan))
    assert guard.first_bad_step() == 3
    loss_only = NonFiniteGuard()
    loss_only.observe(7, torch.tensor(math.nan))
    assert loss_only.first_bad_step() == 7


class _SameOrder:
    def use_epoch(self, epoch: int) -> None:
        pass


def tiny_loop(tmp_path: Path, lr: float, *, validate=None, **flags):
    """The TrainingLoop over a tiny DRL model and four random batches per epoch, with AdamW at `lr`."""
    model_args, data_args = ModelArguments(), DataArguments()
    train_args = TrainArguments(output_dir=str(tmp_path / "out"), log_every=100, **flags)
    resolve_presets(model_args, data_args, train_args)
    train_args.lr = lr
    accelerator = Accelerator(cpu=True)
    model = tiny_model().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model, optimizer = accelerator.prepare(model, optimizer)
    loader = [random_batch(batch=3, seed=seed) for seed in range(4)]
    loop = TrainingLoop(
        model,
        optimizer,
        None,
        loader,
        _SameOrder(),
        accelerator,
        train_args,
        total_steps=8,
        pre_gather=[],
        validate=validate,
        learning_rates=lambda: [lr],
    )
    return loop, model


def test_a_diverging_run_stops_naming_the_step_and_checkpoints_only_finite_weights(tmp_path):
    loop, _ = tiny_loop(tmp_path, lr=1e30, checkpointing_steps=1)
    with pytest.raises(NonFiniteError, match=r"at step (\d+).*Lower --lr \(now 1e\+30\)") as raised:
        loop.run()
    bad_step = int(raised.value.args[0].split("at step ")[1].split()[0])
    checkpoints = tmp_path / "out" / "checkpoints"
    saved = sorted(path.name for path in checkpoints.glob("step-*")) if checkpoints.is_dir() else []
    assert all(int(name.removeprefix("step-")) < bad_step for name in saved), (bad_step, saved)
    for name in saved:
        weights = load_file(next((checkpoints / name).glob("model*.safetensors")))
        assert nonfinite_tensors(weights) == [], name
    if saved:
        assert (checkpoints / "latest").read_text() == saved[-1]


def test_validation_never_scores_or_selects_nonfinite_weights(tmp_path):
    scored = []

    def validate() -> float:
        scored.append(nonfinite_tensors(dict(model.state_dict())))
        return 1.0

    loop, model = tiny_loop(tmp_path, lr=1e30, validate=validate, validate_every_epochs=1)
    with pytest.raises(NonFiniteError):
        loop.run()
    assert scored == []  # the first validation (after step 4) came after the divergence
    assert not (tmp_path / "out" / "checkpoints" / "best").exists()


def test_weights_that_turn_nonfinite_without_a_nonfinite_gradient_are_caught_before_a_save(tmp_path):
    """The authors' fp16 CLIP matrices can overflow in the update itself: the weights are checked, not only the loss."""
    loop, model = tiny_loop(tmp_path, lr=1e-3, checkpointing_steps=1)
    with torch.no_grad():
        model.text_projection.weight[0, 0] = math.inf
    with pytest.raises(NonFiniteError, match="text_projection.weight"):
        loop.ensure_finite()


def test_a_finite_run_trains_unchanged_with_the_guard(tmp_path):
    """The guard only reads the loss and gradient norm: the same steps as plain clip + AdamW give the same weights."""
    loop, model = tiny_loop(tmp_path, lr=1e-3)
    loop.run()
    torch.manual_seed(0)
    reference = tiny_model().train()
    optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-3)
    for step in range(8):
        reference(**random_batch(batch=3, seed=step % 4), return_loss=True).loss.backward()
        torch.nn.utils.clip_grad_norm_(reference.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        with torch.no_grad():
            reference.logit_scale.clamp_(max=math.log(100))
    for (name, actual), expected in zip(model.state_dict().items(), reference.state_dict().values(), strict=True):
        assert torch.equal(actual, expected), name


def test_final_model_with_nonfinite_weights_is_neither_saved_nor_pushed(tmp_path, monkeypatch):
    processor = tiny_processor(tmp_path)
    model = tiny_model_for(processor.tokenizer)
    with torch.no_grad():
        model.logit_scale.fill_(math.nan)
    pushed = []
    monkeypatch.setattr(outputs, "push_folder", lambda folder, repo_id: pushed.append(repo_id))
    model_args, data_args = ModelArguments(), DataArguments()
    train_args = TrainArguments(output_dir=str(tmp_path / "out"), push_to_hub="someone/drl-toy")
    resolve_presets(model_args, data_args, train_args)
    (tmp_path / "out").mkdir()
    results = {"benchmark": "toy", "split": "test", "selection": "last step (no validation split)"}
    with pytest.raises(NonFiniteError, match="logit_scale"):
        outputs.save_outputs(model, processor, results, Accelerator(cpu=True), model_args, data_args, train_args)
    assert list((tmp_path / "out").iterdir()) == [] and pushed == []


def write_checkpoint_folder(folder: Path, poison: str | None = None) -> Path:
    processor = tiny_processor(folder.parent)
    model = tiny_model_for(processor.tokenizer)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    if poison:
        weights = load_file(folder / "model.safetensors")
        weights[poison] = torch.full_like(weights[poison], math.nan)
        save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def test_push_to_hub_script_refuses_nonfinite_weights_naming_the_tensor(tmp_path, monkeypatch, capsys):
    from huggingface_hub import HfApi

    from hub_scripts.push_to_hub import check_folder, main

    calls = []
    for name in ("create_repo", "create_branch", "upload_folder"):
        monkeypatch.setattr(HfApi, name, lambda self, *args, **kwargs: calls.append(args))
    folder = write_checkpoint_folder(tmp_path / "drl", poison="text_projection.weight")
    (problem,) = check_folder(folder)
    assert "text_projection.weight" in problem and "NaN or infinite" in problem
    before = sorted(path.name for path in folder.iterdir())
    assert main([str(folder), "--repo_id", "someone/drl"]) == 1
    assert "text_projection.weight" in capsys.readouterr().err
    assert calls == [] and sorted(path.name for path in folder.iterdir()) == before


def test_train_push_refuses_a_folder_with_nonfinite_weights(tmp_path, monkeypatch):
    from huggingface_hub import HfApi

    calls = []
    for name in ("create_repo", "create_branch", "upload_folder"):
        monkeypatch.setattr(HfApi, name, lambda self, *args, **kwargs: calls.append(args))
    folder = write_checkpoint_folder(tmp_path / "drl", poison="logit_scale")
    with pytest.raises(SystemExit, match="logit_scale"):
        outputs.push_folder(folder, "someone/drl")
    assert calls == []


@pytest.mark.slow
def test_train_with_a_huge_learning_rate_exits_with_one_line_naming_the_step(tmp_path):
    """The tester's run: `--lr 1e30`, validation and checkpoints on; 4 steps per epoch."""
    options = [*SMALL_TOY(tmp_path), "--max_steps", "6", "--batch_size", "32", "--max_frames", "4", "--lr", "1e30"]
    options += ["--validate_every_epochs", "1", "--checkpointing_steps", "1", "--do_eval", "false"]
    result = run_train("--output_dir", str(tmp_path / "out"), "--push_to_hub", "someone/drl", *options, cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "at step " in last and "--lr" in last, last
    out = tmp_path / "out"
    assert not (out / "model.safetensors").exists() and not (out / "metrics.json").exists()
    latest = out / "checkpoints" / "latest"
    if latest.exists():
        checkpoint = out / "checkpoints" / latest.read_text()
        assert nonfinite_tensors(load_file(next(checkpoint.glob("model*.safetensors")))) == []
        assert json.loads((checkpoint / "position.json").read_text())["step"] < int(
            last.split("at step ")[1].split()[0]
        )
