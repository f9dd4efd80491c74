"""Parity with golden tensors produced by the authors' DRL implementation (../shared/fixtures/drl_reference)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from modeling_tvr import DRLModel
from modeling_tvr.conversion import from_official_state_dict
from modeling_tvr.conversion.state_dict import hf_to_official_key

from .helpers import REFERENCE_DIR

CASES = sorted(p.name for p in REFERENCE_DIR.iterdir() if p.is_dir()) if REFERENCE_DIR.is_dir() else []
pytestmark = pytest.mark.skipif(not CASES, reason=f"authors' golden tensors not found at {REFERENCE_DIR}")


def load_case(name: str) -> tuple[DRLModel, dict, dict]:
    folder = REFERENCE_DIR / name
    case = json.loads((folder / "case.json").read_text())
    model = from_official_state_dict(
        load_file(folder / "official_state_dict.safetensors"),
        interaction=case["interaction"],
        cdcr=case["cdcr"],
        cdcr_alpha1=case["cdcr_alpha1"],
        cdcr_alpha2=case["cdcr_alpha2"],
        cdcr_lambda=case["cdcr_lambda"],
        max_frames=case["frames"],
    )
    return model, load_file(folder / "inputs.safetensors"), load_file(folder / "outputs.safetensors")


def assert_close(actual: torch.Tensor, expected: torch.Tensor, name: str, tolerance: float = 1e-5) -> None:
    """Absolute tolerance, relative where values are large (the fixtures' README)."""
    scale = max(1.0, float(expected.abs().max()))
    error = float((actual.detach() - expected).abs().max())
    assert error <= tolerance * scale, f"{name}: max error {error:.3g} > {tolerance * scale:.3g}"


def run_train_step(model: DRLModel, inputs: dict) -> tuple:
    model.train()
    pixels = inputs["pixel_values"].clone().requires_grad_(True)
    output = model(inputs["input_ids"], inputs["attention_mask"], pixels, inputs["video_mask"], return_loss=True)
    output.loss.backward()
    return output, pixels.grad


@pytest.mark.parametrize("case", CASES)
def test_eval_similarity_matches_authors(case):
    model, inputs, outputs = load_case(case)
    model.eval()
    with torch.no_grad():
        text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).text_embeds
        video = model.get_video_features(inputs["pixel_values"], inputs["video_mask"]).video_embeds
        similarity = model.similarity(text, inputs["attention_mask"], video, inputs["video_mask"])
    assert_close(similarity, outputs["eval.logits"], "eval.logits")


@pytest.mark.parametrize("case", CASES)
def test_train_features_logits_and_losses_match_authors(case):
    model, inputs, outputs = load_case(case)
    output, _ = run_train_step(model, inputs)
    assert_close(output.text_embeds, outputs["train.text_feat"], "train.text_feat")
    assert_close(output.video_embeds, outputs["train.video_feat"], "train.video_feat")
    assert_close(output.logits_per_text, outputs["train.t2v_logits"], "train.t2v_logits")
    assert_close(output.logits_per_video, outputs["train.v2t_logits"], "train.v2t_logits")
    assert_close(output.sim_loss, outputs["train.sim_loss"], "train.sim_loss")
    assert_close(output.cdcr_loss, outputs["train.cdcr_loss"], "train.cdcr_loss")
    assert_close(output.loss, outputs["train.loss"], "train.loss")


def official_gradient(model: DRLModel, official_name: str) -> torch.Tensor:
    """The gradient of a parameter under its official name (packed q/k/v and `x @ proj` layouts restored)."""
    parameters = dict(model.named_parameters())
    if official_name.endswith("attn.in_proj_weight"):
        prefix = next(n for n in parameters if hf_to_official_key(n) == official_name).rsplit(".", 2)[0]
        return torch.cat([parameters[f"{prefix}.{p}_proj.weight"].grad for p in "qkv"])
    name = next(n for n in parameters if hf_to_official_key(n) == official_name)
    grad = parameters[name].grad
    return grad.T if official_name in ("clip.text_projection", "clip.visual.proj") else grad


@pytest.mark.parametrize("case", CASES)
def test_gradients_match_authors(case):
    model, inputs, outputs = load_case(case)
    _, pixel_grad = run_train_step(model, inputs)
    checked = 0
    for key, expected in outputs.items():
        if not key.startswith("grad."):
            continue
        official = key.removeprefix("grad.")
        actual = pixel_grad if official == "pixel_values" else official_gradient(model, official)
        # 1e-4 relative to the gradient's scale; a gradient that is zero in exact arithmetic (the last bias of a
        # softmax weight head) holds only float noise in the fixture, so it gets an absolute floor.
        tolerance = 1e-4 * float(expected.abs().max()) + 1e-6
        error = float((actual - expected).abs().max())
        assert error <= tolerance, f"{key}: max error {error:.3g} > {tolerance:.3g}"
        checked += 1
    assert checked >= 5
