"""DRLConfig: the paper's defaults, validation of the DRL options, serialisation."""

import pytest
from huggingface_hub.errors import StrictDataclassClassValidationError

from modeling_tvr import DRLConfig

from .helpers import tiny_config


def test_defaults_are_the_papers_msrvtt_settings():
    config = DRLConfig()
    assert (config.interaction, config.wti_arch, config.temporal_module) == ("wti", 2, "seqTransf")
    assert (config.cdcr, config.cdcr_alpha1, config.cdcr_alpha2, config.cdcr_lambda) == (3, 0.11, 0.0, 0.001)
    assert (config.max_frames, config.max_words, config.temporal_layers) == (12, 32, 4)
    assert config.max_frame_positions == config.text_config.max_position_embeddings == 77
    assert config.temporal_num_heads == 512 // 64


@pytest.mark.parametrize(
    ("field", "value"),
    [("interaction", "xti"), ("wti_arch", 4), ("temporal_module", "seqLSTM"), ("cdcr", 5)],
)
def test_unknown_option_is_rejected_naming_field_and_choices(field, value):
    with pytest.raises(StrictDataclassClassValidationError, match=rf"DRLConfig\.{field}=.*choose one of"):
        tiny_config(**{field: value})


def test_more_frames_than_position_rows_is_rejected():
    with pytest.raises(StrictDataclassClassValidationError, match="max_frame_positions"):
        tiny_config(max_frames=40, max_frame_positions=16)


def test_more_words_than_text_positions_is_rejected():
    with pytest.raises(StrictDataclassClassValidationError, match="max_position_embeddings"):
        tiny_config(max_words=17)


def test_negative_cdcr_weight_is_rejected():
    with pytest.raises(StrictDataclassClassValidationError, match="cdcr_lambda"):
        tiny_config(cdcr_lambda=-1.0)


def test_config_round_trips_through_dict_and_json(tmp_path):
    config = tiny_config(interaction="ti", cdcr=2, wti_arch=3)
    config.save_pretrained(tmp_path)
    loaded = DRLConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert loaded.text_config.hidden_size == 64 and loaded.vision_config.image_size == 32
