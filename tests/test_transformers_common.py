"""transformers' own common model and config tests (`ModelTesterMixin`, `ConfigTester`) run against DRL.

Every model merged into transformers passes these. They come from the sdist of the installed transformers version
(`tests/real_artifacts.py` fetches it; no network is an error, not a skip). The tester follows the conventions of
transformers' CLIP / X-CLIP testers; the tests skipped below are the ones that cannot apply to a two-tower retrieval
model, each with its reason.
"""

import sys
import unittest

import torch

from modeling_tvr import DRLConfig, DRLModel

from .helpers import TINY_TEXT, TINY_VISION
from .real_artifacts import transformers_common_tests

sys.path.insert(0, str(transformers_common_tests()))

from transformers_common_tests.test_configuration_common import ConfigTester  # noqa: E402
from transformers_common_tests.test_modeling_common import ModelTesterMixin, floats_tensor, ids_tensor  # noqa: E402


class DRLTowerTester:
    """What the common `get_text_features` / `get_video_features` tests read from a tower's tester (as CLIP's
    `text_model_tester` / `vision_model_tester`): its depth, and the inputs of that tower alone."""

    def __init__(self, model_tester: "DRLModelTester", num_hidden_layers: int, input_names: tuple[str, ...]):
        self.model_tester = model_tester
        self.num_hidden_layers = num_hidden_layers
        self.input_names = input_names

    def prepare_config_and_inputs_for_common(self):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        return config, {name: inputs[name] for name in self.input_names}


class DRLModelTester:
    """Tiny random DRL models and matching inputs: `batch_size` captions, each with its own video.

    The towers have different depths and the projection a different width from both, so that a test reading the
    wrong tower's layer count or the wrong width fails. The batch is 7, the size the SDPA-vs-eager tests run, so they
    use these inputs as they are rather than padding them with random masks.
    """

    def __init__(self, parent, batch_size: int = 7, num_frames: int = 4, is_training: bool = True):
        self.parent = parent
        self.batch_size = batch_size
        self.num_frames = num_frames
        self.seq_length = 7
        self.is_training = is_training
        self.text_config = {
            **TINY_TEXT,
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_attention_heads": 4,
            "num_hidden_layers": 1,
        }
        self.vision_config = {
            **TINY_VISION,
            "hidden_size": 24,
            "intermediate_size": 37,
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
            "image_size": 16,
            "patch_size": 8,
        }
        text_inputs = ("input_ids", "attention_mask")
        self.text_model_tester = DRLTowerTester(self, self.text_config["num_hidden_layers"], text_inputs)
        video_inputs = ("pixel_values_videos", "video_mask")
        self.video_model_tester = DRLTowerTester(self, self.vision_config["num_hidden_layers"], video_inputs)

    def get_config(self) -> DRLConfig:
        return DRLConfig(
            text_config=self.text_config,
            vision_config=self.vision_config,
            projection_dim=40,
            temporal_layers=2,
            max_frames=self.num_frames,
            max_words=self.seq_length,
        )

    def prepare_config_and_inputs(self):
        config = self.get_config()
        vocab = config.text_config.vocab_size
        # Caption layout as the processor writes it: start token, words, end token, padding (masked).
        lengths = torch.randint(3, self.seq_length + 1, (self.batch_size,))
        lengths[0] = self.seq_length
        positions = torch.arange(self.seq_length)
        attention_mask = (positions < lengths[:, None]).long()
        input_ids = ids_tensor([self.batch_size, self.seq_length], vocab - 2) + 1
        input_ids[:, 0] = config.text_config.bos_token_id
        input_ids[positions == (lengths[:, None] - 1)] = config.text_config.eos_token_id
        input_ids = input_ids * attention_mask
        size = config.vision_config.image_size
        pixel_values_videos = floats_tensor([self.batch_size, self.num_frames, 3, size, size])
        video_mask = torch.ones(self.batch_size, self.num_frames, dtype=torch.long)
        video_mask[1:, -1] = 0  # some videos shorter than others, as in a real batch
        pixel_values_videos = pixel_values_videos * video_mask[:, :, None, None, None]
        return config, input_ids, attention_mask, pixel_values_videos, video_mask

    def prepare_config_and_inputs_for_common(self):
        config, input_ids, attention_mask, pixel_values_videos, video_mask = self.prepare_config_and_inputs()
        inputs = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "pixel_values_videos": pixel_values_videos,
            "video_mask": video_mask,
            "return_loss": True,
        }
        return config, inputs


class DRLModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (DRLModel,)
    additional_model_inputs = ["pixel_values_videos", "video_mask"]
    test_resize_embeddings = False
    # The test skips files without a copyright year of 2023 or later unless told its `_init_weights` is complete;
    # DRL's is, and this test is the one that found the tower projections initialised differently when missing.
    test_can_init_all_missing_weights_before_2023 = True
    _is_composite = True

    def setUp(self):
        self.model_tester = DRLModelTester(self)
        self.config_tester = ConfigTester(
            self, config_class=DRLConfig, has_text_modality=False, common_properties=["projection_dim"]
        )

    def test_config(self):
        self.config_tester.run_common_tests()

    @unittest.skip(reason="DRL has two towers and no single input embedding table to get or set")
    def test_model_get_set_embeddings(self):
        pass

    # As CLIPOutput, DRLOutput has no top-level `hidden_states` / `attentions`: they are the towers', in
    # `text_model_output` / `video_model_output`, checked by test_get_{text,video}_features_{hidden_states,attentions}.
    @unittest.skip(reason="The towers' hidden states are in text_model_output / video_model_output, as in CLIPOutput")
    def test_hidden_states_output(self):
        pass

    @unittest.skip(reason="The towers' attentions are in text_model_output / video_model_output, as in CLIPOutput")
    def test_attention_outputs(self):
        pass

    @unittest.skip(reason="The towers' hidden states are in text_model_output / video_model_output, as in CLIPOutput")
    def test_retain_grad_hidden_states_attentions(self):
        pass
