"""hub_scripts/push_to_hub.py: checks the folder, regenerates its card, uploads it (Hub mocked; no network)."""

import json
import logging
from pathlib import Path

import huggingface_hub
import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects
from safetensors.torch import load_file, save_file

from hub_scripts.push_to_hub import CheckpointFolderError, check_folder, files_to_upload, main, push, stale_code
from modeling_tvr.training.model_card import write_model_card

from .helpers import tiny_model_for, tiny_processor

REPO = "someone/drl-toy"
METRICS = {
    "t2v": {"R@1": 12.5, "R@5": 52.8, "R@10": 86.1, "MdR": 5.0, "MnR": 6.6},
    "v2t": {"R@1": 9.7, "R@5": 52.8, "R@10": 80.6, "MdR": 5.0, "MnR": 7.0},
}


@pytest.fixture
def trained(tmp_path):
    """A folder as train.py leaves it: model, processor, metrics.json, a card, training state and logs."""
    folder = tmp_path / "drl-toy"
    processor = tiny_processor(tmp_path)
    model = tiny_model_for(processor.tokenizer)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    run = {
        "benchmark": "toy",
        "split": "test",
        "selection": "best epoch on validation t2v R@1: epoch 4 (13.9)",
        "metrics": METRICS,
        "arguments": {"clip": "openai/clip-vit-base-patch32"},
    }
    (folder / "metrics.json").write_text(json.dumps(run))
    # An earlier evaluation on another benchmark, already in the card: it must survive the regeneration.
    msrvtt = {"t2v": {"R@1": 40.0}}
    write_model_card(folder, model.config, msrvtt, "msrvtt", "test", "last epoch", processor.video_processor)
    (folder / "checkpoints" / "step-00000004").mkdir(parents=True)
    (folder / "checkpoints" / "step-00000004" / "optimizer.bin").write_bytes(b"state")
    (folder / "runs").mkdir()
    (folder / "runs" / "events.out.tfevents.1.host").write_bytes(b"log")
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by relative path, with its bytes."""
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.glob("**/*") if path.is_file()}


@pytest.fixture
def hub(monkeypatch):
    """Records the HfApi calls; the module-level upload helpers must not be reached."""
    calls = []

    def record(name):
        def method(self, *args, **kwargs):
            if "folder_path" in kwargs:  # what the folder held when it was sent: a staged copy is gone afterwards
                kwargs = {**kwargs, "files": snapshot(Path(kwargs["folder_path"]))}
            calls.append((name, args, kwargs))

        return method

    for name in ("create_repo", "create_branch", "upload_folder", "create_commit"):
        monkeypatch.setattr(HfApi, name, record(name))

    def forbidden(*args, **kwargs):
        raise AssertionError("module-level huggingface_hub.upload_folder must not be used")

    monkeypatch.setattr(huggingface_hub, "upload_folder", forbidden)
    return calls


def test_push_creates_the_repo_and_branch_and_uploads_the_checkpoint_files(trained, hub):
    push(trained, REPO, private=True, revision="v1", commit_message="toy run")
    assert [name for name, _, _ in hub] == ["create_repo", "create_branch", "upload_folder"]
    _, args, kwargs = hub[0]
    assert args == (REPO,) and kwargs["private"] is True and kwargs["exist_ok"] is True
    assert hub[1][1] == (REPO,) and hub[1][2]["branch"] == "v1" and hub[1][2]["exist_ok"] is True
    upload = hub[2][2]
    assert upload["repo_id"] == REPO and upload["folder_path"] != str(trained)  # a staged copy
    assert upload["revision"] == "v1" and upload["commit_message"] == "toy run"
    everything = list(upload["files"])
    sent = set(filter_repo_objects(everything, ignore_patterns=[*upload["ignore_patterns"], *DEFAULT_IGNORE_PATTERNS]))
    expected = {
        "model.safetensors",
        "config.json",
        "configuration_drl.py",
        "modeling_drl.py",
        "processing_drl.py",
        "video_processing_drl.py",
        "tokenization_drl.py",
        "processor_config.json",
        "video_preprocessor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "README.md",
        "metrics.json",
        "handler.py",
        "requirements.txt",
    }
    assert expected <= sent
    assert not any(name.startswith(("checkpoints/", "runs/")) for name in sent)
    assert sent == {name for name, _ in files_to_upload(trained)}


def test_code_files_nothing_imports_stay_behind_and_are_named(trained, hub, caplog):
    """A folder re-saved over one from an older version keeps that version's extra code files (save_pretrained adds,
    never removes): the upload leaves out what no config or code file reaches, and says so."""
    saved_code = {path.name for path in trained.glob("*.py")}  # what the model and processor saved
    assert saved_code and stale_code(trained) == []
    (trained / "convert.py").write_text("OLD = 1\n")
    with caplog.at_level(logging.WARNING):
        push(trained, REPO)
    upload = hub[-1][2]
    everything = list(upload["files"])
    sent = set(filter_repo_objects(everything, ignore_patterns=[*upload["ignore_patterns"], *DEFAULT_IGNORE_PATTERNS]))
    assert "convert.py" not in sent and "Not uploading convert.py" in caplog.text
    assert saved_code | {"handler.py"} <= sent


def test_without_revision_no_branch_is_created_and_visibility_is_left_alone(trained, hub):
    push(trained, REPO)
    assert [name for name, _, _ in hub] == ["create_repo", "upload_folder"]
    assert hub[0][2]["private"] is None and hub[1][2]["revision"] is None


def test_card_is_regenerated_with_results_pipeline_tag_and_pipeline_usage(trained, hub):
    push(trained, REPO)
    card = ModelCard.load(trained / "README.md")
    assert card.data.pipeline_tag == "text-video-retrieval" and card.data.library_name == "transformers"
    assert card.data.base_model == "openai/clip-vit-base-patch32"
    assert sorted(card.data.datasets) == ["msrvtt", "toy"]
    values = {(r.dataset_name, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert values[("toy", "t2v R@1")] == 12.5 and values[("toy", "v2t MnR")] == 7.0
    assert values[("msrvtt", "t2v R@1")] == 40.0
    assert "model-index:" in card.content
    assert f'pipeline("text-video-retrieval", model="{REPO}", trust_remote_code=True)' in card.text
    assert "best epoch on validation" in card.text and "| toy | test | t2v | 12.5 |" in card.text


def test_dry_run_lists_paths_and_sizes_without_network_or_writes(trained, monkeypatch, capsys):
    def no_network(*args, **kwargs):
        raise AssertionError("a dry run must not call the Hub")

    for name in ("create_repo", "create_branch", "upload_folder", "create_commit"):
        monkeypatch.setattr(HfApi, name, no_network)
    card_before = (trained / "README.md").read_bytes()
    assert main([str(trained), "--repo_id", REPO, "--dry-run", "--revision", "v1"]) == 0
    printed = capsys.readouterr().out
    assert f"to https://huggingface.co/{REPO} (branch v1)" in printed
    weights_size = (trained / "model.safetensors").stat().st_size
    assert f"{weights_size:>14,}  model.safetensors" in printed
    assert "  README.md" in printed and "  metrics.json" in printed and "checkpoints/" not in printed
    assert "  handler.py" in printed and "  requirements.txt" in printed
    assert (trained / "README.md").read_bytes() == card_before
    assert not (trained / "handler.py").exists()


def test_incomplete_folder_is_refused_naming_what_is_missing(trained, hub, capsys):
    for name in ("model.safetensors", "processor_config.json", "interaction_drl.py"):
        (trained / name).unlink()
    problems = "\n".join(check_folder(trained))
    assert "model.safetensors" in problems and "processor_config.json" in problems
    assert "interaction_drl.py" in problems  # imported by modeling_drl.py, which config.json's auto_map names
    with pytest.raises(CheckpointFolderError, match="is not a loadable DRL checkpoint"):
        push(trained, REPO)
    assert main([str(trained), "--repo_id", REPO]) == 1
    assert "model.safetensors (the weights) is missing" in capsys.readouterr().err
    assert hub == []


def test_weights_that_do_not_fit_the_config_and_other_models_are_refused(trained, hub):
    weights = load_file(trained / "model.safetensors")
    del weights["logit_scale"]
    weights["text_projection.weight"] = torch.zeros(3, 3)
    save_file(weights, trained / "model.safetensors")
    (problem,) = check_folder(trained)
    assert "missing ['logit_scale']" in problem and "text_projection.weight (3, 3)" in problem
    config = json.loads((trained / "config.json").read_text())
    (trained / "config.json").write_text(json.dumps({**config, "model_type": "clip"}))
    assert "model_type 'clip', not 'drl'" in check_folder(trained)[0]
    assert hub == []


def test_upload_sends_a_staged_copy_holding_the_new_card_and_endpoint_files(trained, hub):
    before = snapshot(trained)
    push(trained, REPO)
    staged = hub[-1][2]["files"]
    assert staged["model.safetensors"] == before["model.safetensors"]
    assert staged["handler.py"] and staged["requirements.txt"] and staged["README.md"] != before["README.md"]
    assert not any(name.startswith(("checkpoints/", "runs/")) for name in staged)
    assert not Path(hub[-1][2]["folder_path"]).exists()  # the staging folder is removed
    # After a successful upload the folder holds what the repo holds: the new card and the endpoint files.
    after = snapshot(trained)
    assert after["README.md"] == staged["README.md"] and after["handler.py"] == staged["handler.py"]


def test_offline_push_is_one_line_naming_the_repo_and_adds_nothing_to_the_folder(trained, monkeypatch, capsys):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # whatever the environment says
    before = snapshot(trained)
    assert main([str(trained), "--repo_id", REPO]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("error: ") and "Traceback" not in error
    assert REPO in error and "HF_HUB_OFFLINE" in error
    assert snapshot(trained) == before


def test_network_failure_is_one_line_naming_the_repo_and_adds_nothing_to_the_folder(trained, monkeypatch, capsys):
    def unreachable(self, *args, **kwargs):
        raise ConnectionError("[Errno 111] Connection refused")

    monkeypatch.setattr(HfApi, "create_repo", lambda self, *args, **kwargs: None)
    monkeypatch.setattr(HfApi, "upload_folder", unreachable)
    before = snapshot(trained)
    assert main([str(trained), "--repo_id", REPO]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and REPO in error and "network" in error and "Connection refused" in error
    assert snapshot(trained) == before
