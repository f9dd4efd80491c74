"""Building a DRLModel: options checked by name, attention implementation reaching the temporal module, and the same
initialisation for a fresh model and for weights a checkpoint lacks."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from modeling_tvr import DRLConfig, DRLModel

from .helpers import TINY_TEXT, TINY_VISION, random_batch, tiny_config


@pytest.mark.parametrize(
    ("field", "value"), [("interaction", "xti"), ("wti_arch", 7), ("cdcr", 5), ("temporal_module", "lstm")]
)
def test_an_option_changed_after_the_config_was_built_is_refused_by_name(field, value):
    config = tiny_config()
    setattr(config, field, value)
    with pytest.raises(ValueError, match=rf"DRLConfig\.{field}="):
        DRLModel(config)


def test_attention_implementation_reaches_the_temporal_module(tmp_path):
    torch.manual_seed(0)
    model = DRLModel(tiny_config(temporal_module="seqTransf")).eval()
    model.save_pretrained(tmp_path)
    eager = DRLModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert eager.temporal_transformer.layer_config._attn_implementation == "eager"
    batch = random_batch()
    with torch.no_grad():
        torch.testing.assert_close(eager(**batch).logits_per_text, model(**batch).logits_per_text, rtol=1e-5, atol=1e-5)
    eager.set_attn_implementation("sdpa")
    assert eager.temporal_transformer.layer_config._attn_implementation == "sdpa"


def test_tower_projections_missing_from_a_checkpoint_get_clips_scaled_initialisation(tmp_path):
    text = {**TINY_TEXT, "hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4}
    config = DRLConfig(text_config=text, vision_config=TINY_VISION, projection_dim=64, max_frames=6, max_words=16)
    torch.manual_seed(0)
    DRLModel(config).save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    prefix = "text_model.encoder.layers.0."
    missing = {
        "self_attn.q_proj.weight": 256**-0.5 * 8**-0.5,
        "self_attn.out_proj.weight": 256**-0.5,
        "mlp.fc1.weight": 512**-0.5,
        "mlp.fc2.weight": 256**-0.5 * 8**-0.5,
    }
    kept = weights[prefix + "self_attn.k_proj.weight"]
    for name in missing:
        del weights[prefix + name]
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    loaded = dict(DRLModel.from_pretrained(tmp_path).named_parameters())
    for name, std in missing.items():
        assert loaded[prefix + name].std().item() == pytest.approx(std, rel=0.1), name  # not normal(0, 0.02)
    assert torch.equal(loaded[prefix + "self_attn.k_proj.weight"], kept)  # weights it has are left alone


def test_feature_methods_return_transformers_outputs_with_pooled_features_and_tower_states():
    # The layout of CLIPModel.get_text_features in transformers 5: the tower's last hidden state, the projected
    # pooled feature; plus the projected token / frame features the interaction compares.
    model = DRLModel(tiny_config()).eval()
    model.set_attn_implementation("eager")  # attention weights come from eager attention, as in transformers
    batch = random_batch()
    with torch.no_grad():
        text = model.get_text_features(batch["input_ids"], batch["attention_mask"], output_hidden_states=True)
        video = model.get_video_features(batch["pixel_values_videos"], batch["video_mask"], output_attentions=True)
    last = batch["attention_mask"].sum(-1) - 1
    torch.testing.assert_close(text.text_embeds, model.text_projection(text.last_hidden_state))
    torch.testing.assert_close(text.pooler_output, text.text_embeds[torch.arange(3), last])
    mask = batch["video_mask"].unsqueeze(-1).float()
    torch.testing.assert_close(video.pooler_output, (video.video_embeds * mask).sum(1) / mask.sum(1))
    frames = batch["pixel_values_videos"].shape[1]
    patches = (model.config.vision_config.image_size // model.config.vision_config.patch_size) ** 2 + 1
    assert video.last_hidden_state.shape == (3, frames, patches, model.config.vision_config.hidden_size)
    assert video.attentions[0].shape[:2] == (3, frames)  # grouped per video, like last_hidden_state
    assert len(text.hidden_states) == model.config.text_config.num_hidden_layers + 1
    assert len(video.attentions) == model.config.vision_config.num_hidden_layers
    assert text.attentions is None and video.hidden_states is None  # only what was asked for
    # The outputs and their feature tensors score alike; a tuple comes back when asked.
    masks = (batch["attention_mask"], batch["video_mask"])
    torch.testing.assert_close(
        model.similarity(text, masks[0], video, masks[1]),
        model.similarity(text.text_embeds, masks[0], video.video_embeds, masks[1]),
    )
    as_tuple = model.get_text_features(batch["input_ids"], batch["attention_mask"], return_dict=False)
    torch.testing.assert_close(as_tuple[0], text.last_hidden_state)
    torch.testing.assert_close(as_tuple[-1], text.text_embeds)


def test_forward_returns_the_towers_outputs_with_hidden_states_and_attentions_when_asked():
    model = DRLModel(tiny_config()).eval()
    model.set_attn_implementation("eager")
    batch = random_batch()
    with torch.no_grad():
        plain = model(**batch)
        detailed = model(**batch, output_hidden_states=True, output_attentions=True)
    torch.testing.assert_close(detailed.logits_per_text, plain.logits_per_text)
    assert plain.text_model_output.hidden_states is None
    assert len(detailed.text_model_output.hidden_states) == model.config.text_config.num_hidden_layers + 1
    assert len(detailed.video_model_output.attentions) == model.config.vision_config.num_hidden_layers
    torch.testing.assert_close(detailed.text_model_output.text_embeds, detailed.text_embeds)
    torch.testing.assert_close(detailed.video_model_output.video_embeds, detailed.video_embeds)
    as_tuple = model(**batch, return_dict=False)
    assert isinstance(as_tuple[-1], tuple)  # the towers' outputs become tuples too, as CLIPOutput's do


def test_forward_reads_each_mask_once_per_check_and_never_on_an_accelerator(monkeypatch):
    from modeling_tvr import modeling_drl

    model = DRLModel(tiny_config()).train()
    reads = []
    original = modeling_drl._reads_values
    monkeypatch.setattr(modeling_drl, "_reads_values", lambda tensor: reads.append(tensor.shape) or original(tensor))
    model(**random_batch(), return_loss=True)
    # forward checks the text and video masks once before the towers, not again in the towers or the loss: two reads,
    # each a device sync on an accelerator.
    assert len(reads) == 2
    model.eval()(**random_batch())
    assert len(reads) == 4  # nor in the similarity of an evaluation
    assert original(torch.ones(2, 3)) and not original(torch.ones(2, 3, device="meta"))
