"""The training forward + loss compiles as one graph, and the feature methods export, giving eager numbers.

`backend="aot_eager"` traces forward and backward as torch.compile does, without inductor's code generation (slow
on CPU); `bench/compile_step.py` times the inductor-compiled step.
"""

import pytest
import torch

from .helpers import random_batch, tiny_model


@pytest.mark.slow
@pytest.mark.parametrize("interaction", ["wti", "ti", "dp"])
def test_training_forward_and_loss_compile_as_one_graph_with_eager_numbers(interaction):
    torch._dynamo.reset()
    eager = tiny_model(seed=6, interaction=interaction, cdcr=3 if interaction == "wti" else 2).train()
    compiled_model = tiny_model(seed=6, interaction=interaction, cdcr=3 if interaction == "wti" else 2).train()
    compiled = torch.compile(compiled_model, fullgraph=True, backend="aot_eager")
    batch = random_batch(seed=3)
    expected, actual = eager(**batch, return_loss=True), compiled(**batch, return_loss=True)
    torch.testing.assert_close(actual.loss, expected.loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(actual.logits_per_text, expected.logits_per_text, rtol=1e-5, atol=1e-5)
    expected.loss.backward()
    actual.loss.backward()
    for (name, a), b in zip(eager.named_parameters(), compiled_model.parameters(), strict=True):
        assert (b.grad is None) == (a.grad is None), name  # the compiled graph reaches the same parameters
        if a.grad is not None:
            torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6, msg=name)


class TextFeatures(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model.get_text_features(input_ids, attention_mask).text_embeds


class VideoFeatures(TextFeatures):
    def forward(self, pixel_values_videos, video_mask):
        return self.model.get_video_features(pixel_values_videos, video_mask).video_embeds


def test_feature_methods_export_and_the_exported_programs_give_eager_numbers():
    model = tiny_model(seed=7, temporal_module="seqTransf").eval()
    batch = random_batch(seed=4)
    text_args = (batch["input_ids"], batch["attention_mask"])
    video_args = (batch["pixel_values_videos"], batch["video_mask"])
    for wrapper, args in ((TextFeatures(model), text_args), (VideoFeatures(model), video_args)):
        program = torch.export.export(wrapper, args)
        with torch.no_grad():
            torch.testing.assert_close(program.module()(*args), wrapper(*args), rtol=1e-5, atol=1e-5)
