"""DRLModel.from_clip: a pretrained transformers CLIP (local folder here; a Hub id for users) becomes DRL."""

import pytest
import torch
from transformers import CLIPConfig, CLIPModel

from modeling_tvr import DRLModel

from .helpers import TINY_TEXT, TINY_VISION, random_batch


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    torch.manual_seed(0)
    clip = CLIPModel(
        CLIPConfig(text_config=TINY_TEXT, vision_config=TINY_VISION, projection_dim=64, logit_scale_init_value=3.0)
    )
    folder = tmp_path_factory.mktemp("clip")
    clip.save_pretrained(folder)
    return folder


def test_towers_and_projections_come_from_clip(clip_dir):
    clip = CLIPModel.from_pretrained(clip_dir).eval()
    model = DRLModel.from_clip(clip_dir, temporal_module="none", max_frames=6, max_words=16).eval()
    batch = random_batch()
    with torch.no_grad():
        text = model.get_text_features(batch["input_ids"], batch["attention_mask"]).text_embeds
        expected_text = clip.text_projection(clip.text_model(input_ids=batch["input_ids"]).last_hidden_state)
        video = model.get_video_features(batch["pixel_values_videos"], batch["video_mask"]).video_embeds
        expected_video = clip.get_image_features(pixel_values=batch["pixel_values_videos"].flatten(0, 1))
    torch.testing.assert_close(text, expected_text)
    torch.testing.assert_close(video.flatten(0, 1), getattr(expected_video, "pooler_output", expected_video))
    assert model.logit_scale.item() == pytest.approx(3.0)


def test_temporal_module_starts_from_the_text_tower(clip_dir):
    model = DRLModel.from_clip(clip_dir, temporal_layers=3, max_frames=6, max_words=16)
    text_layers = model.text_model.encoder.layers
    # The text tower has 2 blocks: the first two temporal blocks copy them, the third keeps its own init.
    for index in range(2):
        for key, value in text_layers[index].state_dict().items():
            torch.testing.assert_close(model.temporal_transformer.layers[index].state_dict()[key], value)
    torch.testing.assert_close(
        model.temporal_transformer.frame_position_embeddings.weight,
        model.text_model.embeddings.position_embedding.weight,
    )


def test_overrides_reach_the_config(clip_dir):
    model = DRLModel.from_clip(clip_dir, interaction="ti", cdcr=2, max_frames=6, max_words=16)
    assert (model.config.interaction, model.config.cdcr) == ("ti", 2)
    assert model.text_weight_head is None


def test_missing_clip_folder_raises(tmp_path):
    with pytest.raises(OSError, match="does-not-exist"):
        DRLModel.from_clip(tmp_path / "does-not-exist")
