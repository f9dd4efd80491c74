"""DRLProcessor: the authors' caption layout, videos, end-to-end use with the model, save and remote load."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from modeling_tvr import DRLCLIPTokenizer, DRLProcessor, DRLVideoProcessor

from .helpers import tiny_model_for, tiny_processor
from .videos import write_video


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    return tiny_processor(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("media") / "clip.mp4", 4)


def test_captions_follow_the_authors_layout(processor):
    tokens = processor.tokenizer("a man is playing a guitar", add_special_tokens=False)["input_ids"]
    out = processor(text=["a man is playing a guitar"])
    bos, eos = processor.tokenizer.bos_token_id, processor.tokenizer.eos_token_id
    expected = [bos, *tokens, eos] + [0] * (16 - len(tokens) - 2)
    assert out["input_ids"].tolist() == [expected]
    assert out["attention_mask"].tolist() == [[1] * (len(tokens) + 2) + [0] * (16 - len(tokens) - 2)]


def test_long_captions_keep_max_words_minus_two_tokens_then_the_end_token(processor):
    caption = " ".join(["guitar"] * 40)
    out = processor(text=caption)
    tokens = processor.tokenizer(caption, add_special_tokens=False)["input_ids"]
    assert out["input_ids"][0].tolist() == [
        processor.tokenizer.bos_token_id,
        *tokens[:14],
        processor.tokenizer.eos_token_id,
    ]
    assert out["attention_mask"].sum().item() == 16


@pytest.mark.parametrize(
    ("captions", "problem"),
    [
        ([""], "is empty"),
        (["a dog", "   "], "holds only whitespace"),
        (["a dog", "\x00\x1b\u200b\t"], "holds only control or invisible characters"),
    ],
)
def test_blank_or_control_only_caption_is_an_error_naming_its_position(processor, captions, problem):
    with pytest.raises(ValueError, match=f"Caption {len(captions) - 1} {problem}"):
        processor(text=captions)


@pytest.mark.parametrize("text", [{"a dog": 1}, {"a dog"}, 42])
def test_text_that_is_not_a_string_or_a_list_is_a_type_error_not_its_keys(processor, text):
    with pytest.raises(TypeError, match="a string or a list of strings"):
        processor(text=text)


def test_non_string_caption_is_rejected(processor):
    with pytest.raises(TypeError, match="Caption 0 is a int"):
        processor(text=[3])


def test_processor_output_feeds_the_model(processor, clip_path):
    model = tiny_model_for(processor.tokenizer)
    inputs = processor(text=["a red square", "a dog"], videos=[clip_path, np.zeros((3, 20, 30, 3), np.uint8)])
    assert set(inputs) == {"input_ids", "attention_mask", "pixel_values_videos", "video_mask"}
    with torch.no_grad():
        out = model(**inputs)
    assert out.logits_per_text.shape == (2, 2) and torch.isfinite(out.logits_per_text).all()


def test_save_writes_processor_video_processor_tokenizer_and_code(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    files = set(os.listdir(tmp_path))
    assert {
        "processor_config.json",
        "video_preprocessor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    } <= files
    assert {"processing_drl.py", "video_processing_drl.py", "tokenization_drl.py", "video_decoding.py"} <= files
    config = json.loads((tmp_path / "processor_config.json").read_text())
    assert config["auto_map"]["AutoProcessor"] == "processing_drl.DRLProcessor"
    assert config["max_words"] == 16


def test_from_pretrained_restores_every_part(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    loaded = DRLProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded.video_processor, DRLVideoProcessor) and isinstance(loaded.tokenizer, DRLCLIPTokenizer)
    assert loaded.max_words == 16 and loaded.video_processor.to_dict() == processor.video_processor.to_dict()
    assert loaded(text="a dog")["input_ids"].tolist() == processor(text="a dog")["input_ids"].tolist()


def test_from_pretrained_takes_a_max_words_override_and_ignores_loader_arguments(processor, tmp_path):
    """The pipeline and Auto* loaders pass arguments of their own, which differ between transformers releases."""
    processor.save_pretrained(tmp_path)
    loaded = DRLProcessor.from_pretrained(tmp_path, max_words=8, _from_auto=True, code_revision=None)
    assert loaded.max_words == 8
    own_tokenizer = DRLCLIPTokenizer.from_pretrained(tmp_path)
    assert DRLProcessor.from_pretrained(tmp_path, tokenizer=own_tokenizer).tokenizer is own_tokenizer


@pytest.mark.slow
def test_auto_processor_loads_in_a_fresh_process_without_the_package(processor, clip_path, tmp_path):
    processor.save_pretrained(tmp_path / "proc")
    expected = processor(text=["a man plays guitar"], videos=[clip_path])
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["modeling_tvr"] = None
        from safetensors.torch import save_file
        from transformers import AutoProcessor
        processor = AutoProcessor.from_pretrained({str(tmp_path / "proc")!r}, trust_remote_code=True)
        assert type(processor).__name__ == "DRLProcessor", type(processor)
        assert type(processor).__module__.startswith("transformers_modules"), type(processor).__module__
        out = processor(text=["a man plays guitar"], videos=[{str(clip_path)!r}])
        save_file({{k: v.contiguous() for k, v in out.items()}}, {str(tmp_path / "out.safetensors")!r})
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    out = load_file(tmp_path / "out.safetensors")
    for key, value in expected.items():
        torch.testing.assert_close(out[key], value, rtol=0, atol=0)


def test_auto_video_processor_loads_the_video_processor_alone(processor, tmp_path):
    # transformers' top-level AutoVideoProcessor is a placeholder without torchvision; the class itself works.
    from transformers.models.auto.video_processing_auto import AutoVideoProcessor

    processor.save_pretrained(tmp_path)
    loaded = AutoVideoProcessor.from_pretrained(tmp_path, trust_remote_code=True)
    assert type(loaded).__name__ == "DRLVideoProcessor"
    assert loaded.to_dict()["max_frames"] == processor.video_processor.max_frames


def test_for_model_fits_the_model_configuration_and_feeds_it(processor, clip_path):
    model = tiny_model_for(processor.tokenizer, max_frames=3, max_words=10)
    fitted = DRLProcessor.for_model(model.config, processor.tokenizer, video_framerate=2, decode_strategy="decode")
    size = model.config.vision_config.image_size
    video = fitted.video_processor
    assert video.size == {"shortest_edge": size} and video.crop_size == {"height": size, "width": size}
    assert (video.max_frames, fitted.max_words) == (3, 10)
    assert (video.video_framerate, video.decode_strategy) == (2, "decode")
    inputs = fitted(text=["a red circle moves"], videos=[str(clip_path)])
    assert inputs["pixel_values_videos"].shape[1:] == (3, 3, size, size) and inputs["input_ids"].shape == (1, 10)
    with torch.no_grad():
        assert model(**inputs).logits_per_text.shape == (1, 1)


@pytest.mark.parametrize("max_words", [0, 1, 2, 2.5])
def test_a_per_call_max_words_without_room_for_a_word_is_refused_naming_it(processor, max_words):
    with pytest.raises(ValueError, match=f"max_words must leave room .*got {max_words!r}"):
        processor(text=["a dog"], max_words=max_words)
