"""Loading the authors' state-dict layout: sizes inferred, prefixes handled, misfits named."""

import pytest
import torch

from modeling_tvr import DRLModel
from modeling_tvr.conversion import OfficialStateDictError, from_official_state_dict
from modeling_tvr.conversion.state_dict import hf_to_official_state_dict

from .helpers import random_batch, tiny_model


def official_dict(**config) -> tuple[DRLModel, dict[str, torch.Tensor]]:
    # OpenAI's layout implies heads = width / 64, so the tiny towers use one head.
    model = tiny_model(seed=1, heads=1, **config)
    return model, hf_to_official_state_dict(model.state_dict())


def assert_same_model(a: DRLModel, b: DRLModel) -> None:
    assert a.state_dict().keys() == b.state_dict().keys()
    for key, value in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[key], value, rtol=0, atol=0, msg=key)
    batch = random_batch()
    with torch.no_grad():
        torch.testing.assert_close(a(**batch).logits_per_text, b(**batch).logits_per_text, rtol=0, atol=0)


@pytest.mark.parametrize(
    "config",
    [
        {"wti_arch": 1, "temporal_module": "none"},
        {"wti_arch": 2},
        {"wti_arch": 3, "temporal_layers": 3},
    ],
)
def test_sizes_arch_and_temporal_module_are_inferred_from_the_tensors(config):
    model, state_dict = official_dict(**config)
    loaded = from_official_state_dict(state_dict, max_frames=6, max_words=16).eval()
    keys = ["wti_arch", "temporal_module", "projection_dim"]
    if model.config.temporal_module == "seqTransf":
        keys += ["temporal_layers", "max_frame_positions"]
    for key in keys:
        assert getattr(loaded.config, key) == getattr(model.config, key), key
    assert loaded.config.text_config.num_hidden_layers == 2 and loaded.config.vision_config.image_size == 32
    assert_same_model(model, loaded)


def test_dataparallel_module_prefix_is_stripped():
    model, state_dict = official_dict()
    prefixed = {f"module.{key}": value for key, value in state_dict.items()}
    assert_same_model(model, from_official_state_dict(prefixed, max_frames=6, max_words=16).eval())


def test_missing_key_is_named_in_the_authors_layout():
    _, state_dict = official_dict()
    del state_dict["video_weight_fc.2.bias"]
    del state_dict["transformerClip.resblocks.1.attn.in_proj_weight"]
    with pytest.raises(
        OfficialStateDictError,
        match=r"missing \['transformerClip.resblocks.1.attn.in_proj_weight', "
        r"'video_weight_fc.2.bias'\]",
    ):
        from_official_state_dict(state_dict)


def test_unexpected_key_is_named():
    _, state_dict = official_dict()
    state_dict["cross.pooler.dense.weight"] = torch.zeros(2, 2)
    with pytest.raises(OfficialStateDictError, match=r"unexpected \['cross.pooler.dense.weight'\]"):
        from_official_state_dict(state_dict)


def test_override_that_contradicts_the_tensors_is_reported():
    _, state_dict = official_dict(wti_arch=2)
    with pytest.raises(OfficialStateDictError, match=r"missing \[.*text_weight_fc.4.bias"):
        from_official_state_dict(state_dict, wti_arch=3)
    with pytest.raises(OfficialStateDictError, match="fixed by the state dict"):
        from_official_state_dict(state_dict, projection_dim=32)


def test_checkpoint_without_wti_heads_needs_the_interaction_named():
    _, state_dict = official_dict(interaction="ti")
    with pytest.raises(OfficialStateDictError, match="pass interaction='ti' or 'dp'"):
        from_official_state_dict(state_dict)
    assert from_official_state_dict(state_dict, interaction="dp").config.interaction == "dp"


def test_drl_checkpoint_with_only_clip_keys_has_no_temporal_module():
    """A meanP + DP checkpoint holds only `clip.*`: it must not be mistaken for a bare CLIP."""
    _, state_dict = official_dict(interaction="dp", temporal_module="none")
    loaded = from_official_state_dict(state_dict, interaction="dp")
    assert loaded.config.temporal_module == "none" and loaded.temporal_transformer is None


def test_bare_openai_clip_initialises_the_drl_modules_like_the_authors():
    model, state_dict = official_dict()
    openai_clip = {key.removeprefix("clip."): value for key, value in state_dict.items() if key.startswith("clip.")}
    openai_clip["input_resolution"] = torch.tensor(32)  # JIT archives carry metadata entries
    loaded = from_official_state_dict(openai_clip, max_frames=6, max_words=16, temporal_layers=2)
    for key, value in model.text_model.state_dict().items():
        torch.testing.assert_close(loaded.text_model.state_dict()[key], value, rtol=0, atol=0)
    text_layers = loaded.text_model.encoder.layers
    for temporal, text in zip(loaded.temporal_transformer.layers, text_layers, strict=False):
        for key, value in text.state_dict().items():
            torch.testing.assert_close(temporal.state_dict()[key], value, rtol=0, atol=0)
    torch.testing.assert_close(
        loaded.temporal_transformer.frame_position_embeddings.weight,
        loaded.text_model.embeddings.position_embedding.weight,
    )


def test_not_a_clip_state_dict_is_rejected_clearly():
    with pytest.raises(OfficialStateDictError, match="Not an OpenAI-CLIP / DRL state dict"):
        from_official_state_dict({"encoder.weight": torch.zeros(1)})
    with pytest.raises(OfficialStateDictError, match="ResNet CLIP"):
        from_official_state_dict(
            {"visual.layer1.0.conv1.weight": torch.zeros(1), "token_embedding.weight": torch.zeros(2, 2)}
        )
