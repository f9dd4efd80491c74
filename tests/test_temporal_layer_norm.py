"""The temporal module's layer norms are the authors' TF-style ones (eps 1e-12), visible on low-variance frames."""

import torch

from modeling_tvr.conversion.reference import reference_temporal
from modeling_tvr.conversion.state_dict import hf_to_official_state_dict

from .helpers import tiny_model


def tf_style_layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    """The authors' `until_module.LayerNorm.forward`, written out: mean, biased variance, eps inside the root."""
    mean = x.mean(-1, keepdim=True)
    variance = (x - mean).pow(2).mean(-1, keepdim=True)
    return weight * (x - mean) / torch.sqrt(variance + eps) + bias


def low_variance_frames(batch: int = 2, frames: int = 6, width: int = 64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return 0.5 + 2e-3 * torch.randn(batch, frames, width, generator=generator, dtype=torch.float64)


def test_temporal_layer_norm_equals_tf_style_with_eps_1e12_on_low_variance_input():
    model = tiny_model(temporal_module="seqTransf").double()
    norm = model.temporal_transformer.layers[0].layer_norm1
    x = low_variance_frames()
    expected = tf_style_layer_norm(x, norm.weight, norm.bias, 1e-12)
    torch.testing.assert_close(norm(x), expected, rtol=1e-9, atol=1e-9)
    # CLIP's eps would be visibly off here: the test can tell the two apart.
    assert (tf_style_layer_norm(x, norm.weight, norm.bias, 1e-5) - expected).abs().max() > 1e-2


def test_temporal_module_matches_authors_formulation_on_low_variance_frames():
    model = tiny_model(temporal_module="seqTransf").double()
    with torch.no_grad():
        model.temporal_transformer.frame_position_embeddings.weight.mul_(1e-3)  # keep the block inputs flat
    official = hf_to_official_state_dict(model.state_dict())
    frames = low_variance_frames()
    video_mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    with torch.no_grad():
        ours = model.temporal_transformer(frames, video_mask)
    torch.testing.assert_close(ours, reference_temporal(official, frames, video_mask), rtol=1e-7, atol=1e-7)
