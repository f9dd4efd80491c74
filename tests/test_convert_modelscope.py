"""The converter reads a ModelScope DRL folder (`damo/multi_modal_clip_vtretrival_msrvtt_53` layout), built here from
a tiny random model: `configuration.json` "paras", `pytorch_model.bin` behind `module.` in fp16 with some CLIP tensors
left to the folder's `ViT-B-16.pt`, and the BPE file."""

import json
from pathlib import Path

import pytest
import torch

from hub_scripts.convert_official_checkpoint import ConversionError, convert, main
from modeling_tvr import DRLConfig, DRLModel, DRLProcessor
from modeling_tvr.conversion.state_dict import hf_to_official_state_dict

from .bpe_files import write_bpe
from .helpers import TINY_TEXT, TINY_VISION

PARAS = {
    "loose_type": True,
    "sim_header": "seqTransf",
    "pretrained_clip_name": "ViT-B/16",
    "linear_patch": "2d",
    "cross_num_hidden_layers": 2,
    "max_words": 16,
    "max_frames": 6,
    "feature_framerate": 2,
    "cdcr_lambda": 0.001,
}
LEFT_TO_CLIP_FILE = ("clip.ln_final.weight", "clip.ln_final.bias", "clip.logit_scale", "clip.visual.proj")


def build(folder: Path, *, heads: bool = True, clip_file: bool = True) -> DRLModel:
    """A tiny random DRL model written as a ModelScope folder; returns the model."""
    text = {**TINY_TEXT, "vocab_size": 600, "bos_token_id": 598, "eos_token_id": 599}
    torch.manual_seed(7)
    model = DRLModel(
        DRLConfig(
            text_config=text,
            vision_config=TINY_VISION,
            projection_dim=64,
            max_frames=6,
            max_words=16,
            temporal_layers=2,
        )
    ).eval()
    official = hf_to_official_state_dict(model.state_dict())
    folder.mkdir(parents=True)
    weights = {
        f"module.{key}": value.half() if value.is_floating_point() else value
        for key, value in official.items()
        if key not in LEFT_TO_CLIP_FILE and (heads or "weight_fc" not in key)
    }
    torch.save(weights, folder / "pytorch_model.bin")
    if clip_file:
        openai = {key.removeprefix("clip."): value for key, value in official.items() if key.startswith("clip.")}
        torch.save(openai, folder / "ViT-B-16.pt")
    (folder / "configuration.json").write_text(json.dumps({"framework": "pytorch", "paras": PARAS}))
    write_bpe(folder / "bpe_simple_vocab_16e6.txt.gz", 600)
    return model


def test_modelscope_folder_converts_with_its_options_fp16_upcast_and_clip_filled(tmp_path):
    model = build(tmp_path / "ms")
    report = convert(tmp_path / "ms", tmp_path / "out")
    assert report.kind == "drl" and report.max_difference <= 1e-5
    assert sorted(report.filled_from_clip) == sorted(LEFT_TO_CLIP_FILE)
    converted = DRLModel.from_pretrained(tmp_path / "out")
    config = converted.config
    assert (config.interaction, config.temporal_module, config.max_words, config.max_frames) == (
        "wti",
        "seqTransf",
        16,
        6,
    )
    # The folder's feature_framerate and BPE file make the processor: 2 frames a second, its 600-token vocabulary.
    processor = DRLProcessor.from_pretrained(tmp_path / "out")
    assert processor.video_processor.video_framerate == 2
    assert len(processor.tokenizer) == 600
    assert (processor.tokenizer.bos_token_id, processor.tokenizer.eos_token_id) == (598, 599)
    # Weights: fp16 values of the source where pytorch_model.bin has them, ViT-B-16.pt's (fp32) elsewhere.
    source = model.state_dict()
    for key, value in converted.state_dict().items():
        expected = source[key]
        if key not in (
            "text_model.final_layer_norm.weight",
            "text_model.final_layer_norm.bias",
            "logit_scale",
            "visual_projection.weight",
        ):
            expected = expected.half().float()
        assert torch.equal(value, expected), key


def test_modelscope_flag_and_detection_give_the_same_folder(tmp_path):
    build(tmp_path / "ms")
    assert main(["--modelscope", str(tmp_path / "ms"), "--output_dir", str(tmp_path / "a")]) == 0
    assert main(["--checkpoint", str(tmp_path / "ms"), "--output_dir", str(tmp_path / "b")]) == 0
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()


def test_modelscope_folder_without_wti_heads_is_refused(tmp_path, capsys):
    build(tmp_path / "ms", heads=False)
    with pytest.raises(ConversionError, match="no WTI heads"):
        convert(tmp_path / "ms", tmp_path / "out")
    assert main(["--modelscope", str(tmp_path / "ms"), "--output_dir", str(tmp_path / "out")]) == 1
    assert "no WTI heads" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_modelscope_folder_missing_clip_weights_and_clip_file_says_what_to_add(tmp_path):
    build(tmp_path / "ms", clip_file=False)
    with pytest.raises(ConversionError, match="ViT-B-16.pt"):
        convert(tmp_path / "ms", tmp_path / "out")
