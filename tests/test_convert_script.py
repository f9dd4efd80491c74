"""hub_scripts/convert_official_checkpoint.py: the authors' files become a checked, loadable Hugging Face folder."""

import json
import os
import pickle
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import CLIPConfig, CLIPModel

from hub_scripts.convert_official_checkpoint import ConversionError, convert, main
from modeling_tvr import DRLModel
from modeling_tvr.conversion import from_official_state_dict
from modeling_tvr.conversion.checkpoint_files import (
    CheckpointLoadError,
    UnsafeCheckpointError,
    load_official_state_dict,
    read_torchscript_state_dict,
)
from modeling_tvr.conversion.state_dict import hf_to_official_state_dict

from .bpe_files import write_bpe
from .helpers import REFERENCE_DIR, TINY_VISION

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted(p.name for p in REFERENCE_DIR.iterdir() if p.is_dir()) if REFERENCE_DIR.is_dir() else []
needs_fixtures = pytest.mark.skipif(not CASES, reason=f"authors' golden tensors not found at {REFERENCE_DIR}")
CLIP_VOCAB = 600  # 512 byte symbols + 86 merges + start and end tokens


def case_options(case: str) -> dict:
    options = json.loads((REFERENCE_DIR / case / "case.json").read_text())
    # Checkpoints without WTI heads do not say whether they were trained with TI or DP.
    return {} if options["interaction"] == "wti" else {"interaction": options["interaction"]}


def authors_checkpoint(case: str, folder: Path) -> Path:
    """The fixture's state dict saved as the authors' training script does (`torch.save`, DataParallel prefix)."""
    state = load_file(REFERENCE_DIR / case / "official_state_dict.safetensors")
    path = folder / "pytorch_model.bin.4"
    torch.save({f"module.{key}": value for key, value in state.items()}, path)
    return path


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> dict[str, Path]:
    """Every fixture case converted once; the tests below inspect the folders."""
    work = tmp_path_factory.mktemp("converted")
    bpe = write_bpe(work / "bpe.txt.gz", 1000)
    folders = {}
    for case in CASES:
        (work / case).mkdir()
        report = convert(
            authors_checkpoint(case, work / case), work / case / "out", bpe=str(bpe), overrides=case_options(case)
        )
        assert report.kind == "drl" and report.max_difference <= 1e-5, report
        folders[case] = work / case / "out"
    return folders


@pytest.mark.slow
@needs_fixtures
@pytest.mark.parametrize("case", CASES)
def test_authors_checkpoint_converts_to_the_same_weights_as_from_official_state_dict(converted, case):
    expected = from_official_state_dict(
        load_file(REFERENCE_DIR / case / "official_state_dict.safetensors"), **case_options(case)
    ).state_dict()
    written = load_file(converted[case] / "model.safetensors")
    assert written.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(written[key], value), key
    report = json.loads((converted[case] / "conversion.json").read_text())
    assert report["unused_keys"] == [] and report["max_weight_difference"] == 0.0
    assert set(report["max_output_difference"]) >= {"text_features", "frame_features"}


@needs_fixtures
def test_converted_folder_reproduces_the_authors_outputs_and_is_ready_to_push(converted):
    from hub_scripts.push_to_hub import check_folder

    case = "wti_seqtransf_cdcr3"
    model = DRLModel.from_pretrained(converted[case]).eval()
    inputs = load_file(REFERENCE_DIR / case / "inputs.safetensors")
    with torch.no_grad():
        text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).text_embeds
        video = model.get_video_features(inputs["pixel_values"], inputs["video_mask"]).video_embeds
        similarity = model.similarity(text, inputs["attention_mask"], video, inputs["video_mask"])
    expected = load_file(REFERENCE_DIR / case / "outputs.safetensors")["eval.logits"]
    torch.testing.assert_close(similarity, expected, rtol=0, atol=1e-5)
    processor = json.loads((converted[case] / "processor_config.json").read_text())
    assert processor["video_processor"]["crop_size"] == {"height": 32, "width": 32}
    card = ModelCard.load(converted[case] / "README.md")
    assert card.data.pipeline_tag == "text-video-retrieval" and not card.data.eval_results
    assert "converted from the authors' DRL checkpoint `pytorch_model.bin.4`" in card.text
    assert check_folder(converted[case]) == []


@pytest.mark.slow
@needs_fixtures
def test_converted_folders_load_with_remote_code_in_a_fresh_process(converted, tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["modeling_tvr"] = None  # only the folders' own code may be used
        from safetensors.torch import save_file
        from transformers import AutoModel, AutoProcessor
        for case, folder in { ({case: str(path) for case, path in converted.items()})!r}.items():
            model = AutoModel.from_pretrained(folder, trust_remote_code=True)
            assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
            processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
            assert processor.video_processor.crop_size["height"] == 32
            save_file({{k: v.contiguous() for k, v in model.state_dict().items()}}, f"{tmp_path}/{{case}}.safetensors")
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    for case in converted:
        expected = from_official_state_dict(
            load_file(REFERENCE_DIR / case / "official_state_dict.safetensors"), **case_options(case)
        ).state_dict()
        loaded = load_file(tmp_path / f"{case}.safetensors")
        for key, value in expected.items():
            assert torch.equal(loaded[key], value), f"{case}: {key}"


def tiny_clip() -> CLIPModel:
    """A tiny transformers CLIP in OpenAI's conventions (heads = width / 64), its weights exact in fp16."""
    text = {
        "vocab_size": CLIP_VOCAB,
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 1,
        "max_position_embeddings": 16,
        "bos_token_id": CLIP_VOCAB - 2,
        "eos_token_id": CLIP_VOCAB - 1,
        "pad_token_id": 0,
    }
    vision = {**TINY_VISION, "intermediate_size": 256, "num_attention_heads": 1}
    torch.manual_seed(0)
    clip = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=64))
    return clip.half().float().eval()  # OpenAI ships fp16 weights


def openai_state_dict(clip: CLIPModel) -> dict[str, torch.Tensor]:
    """`clip` in the layout of OpenAI's `ViT-B-32.pt`: no `clip.` prefix, fp16, plus the archive's metadata."""
    state = {
        key.removeprefix("clip."): value.half() for key, value in hf_to_official_state_dict(clip.state_dict()).items()
    }
    state.update(
        input_resolution=torch.tensor(32), context_length=torch.tensor(16), vocab_size=torch.tensor(CLIP_VOCAB)
    )
    return state


class _Tree(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def save_torchscript(state: dict[str, torch.Tensor], path: Path) -> Path:
    """`state` as a TorchScript archive like OpenAI's: nested modules, metadata buffers, and a non-state tensor."""
    root = _Tree()
    for key, value in state.items():
        *parents, leaf = key.split(".")
        module = root
        for name in parents:
            if name not in module._modules:
                module.add_module(name, _Tree())
            module = module._modules[name]
        if value.is_floating_point():
            module.register_parameter(leaf, nn.Parameter(value, requires_grad=False))
        else:
            module.register_buffer(leaf, value)
    # OpenAI's text blocks hold their causal mask as a plain attribute: not part of the state dict.
    root.transformer.resblocks._modules["0"].attn_mask = torch.zeros(16, 16)
    torch.jit.script(root).save(str(path))
    return path


def test_openai_clip_converts_with_the_drl_modules_initialised_and_matches_transformers_clip(tmp_path):
    clip = tiny_clip()
    torch.save(openai_state_dict(clip), tmp_path / "ViT-tiny.pt")
    bpe = write_bpe(tmp_path / "bpe.txt.gz", CLIP_VOCAB)
    report = convert(tmp_path / "ViT-tiny.pt", tmp_path / "out", bpe=str(bpe), overrides={"max_frames": 4})
    assert report.kind == "openai-clip" and report.max_difference <= 1e-5
    assert report.initialised == ["temporal_transformer", "text_weight_head", "video_weight_head"]
    model = DRLModel.from_pretrained(tmp_path / "out").eval()
    clip_state = clip.state_dict()
    for key, value in model.state_dict().items():
        if key in clip_state:
            assert torch.equal(value, clip_state[key]), key
    assert not set(clip_state) - set(model.state_dict())
    # As the authors initialise seqTransf: blocks copied from the first text blocks, positions from the text table.
    for temporal, text in zip(model.temporal_transformer.layers, model.text_model.encoder.layers, strict=False):
        for key, value in text.state_dict().items():
            assert torch.equal(temporal.state_dict()[key], value), key
    input_ids = torch.tensor([[CLIP_VOCAB - 2, 5, 7, 9, CLIP_VOCAB - 1, 0, 0, 0]])
    pixels = torch.randn(1, 2, 3, 32, 32)
    with torch.no_grad():
        text_expected = clip.text_projection(clip.text_model(input_ids=input_ids).last_hidden_state)
        image_expected = clip.visual_projection(clip.vision_model(pixel_values=pixels[0]).pooler_output)
        text = model.get_text_features(input_ids, (input_ids > 0).long()).text_embeds
        image = model.visual_projection(model.vision_model(pixel_values=pixels[0]).pooler_output)
    torch.testing.assert_close(text, text_expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(image, image_expected, rtol=0, atol=1e-6)
    card = ModelCard.load(tmp_path / "out" / "README.md").text
    assert "fine-tune before using it for retrieval" in card


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript_archive_is_read_without_torch_jit_and_converts_like_the_plain_file(tmp_path, monkeypatch):
    state = openai_state_dict(tiny_clip())
    save_torchscript(state, tmp_path / "ViT-tiny-jit.pt")
    torch.save(state, tmp_path / "ViT-tiny.pt")
    read = read_torchscript_state_dict(tmp_path / "ViT-tiny-jit.pt")
    reference = torch.jit.load(str(tmp_path / "ViT-tiny-jit.pt")).state_dict()
    assert list(read) == list(reference) and "transformer.resblocks.0.attn_mask" not in read
    for key, value in reference.items():
        assert read[key].dtype == value.dtype and torch.equal(read[key], value), key

    def no_jit(*args, **kwargs):
        raise AssertionError("torch.jit.load must not be used without trust_pickle")

    monkeypatch.setattr(torch.jit, "load", no_jit)
    bpe = str(write_bpe(tmp_path / "bpe.txt.gz", CLIP_VOCAB))
    convert(tmp_path / "ViT-tiny-jit.pt", tmp_path / "from_jit", bpe=bpe, overrides={"max_frames": 4})
    convert(tmp_path / "ViT-tiny.pt", tmp_path / "from_plain", bpe=bpe, overrides={"max_frames": 4})
    from_jit = load_file(tmp_path / "from_jit" / "model.safetensors")
    from_plain = load_file(tmp_path / "from_plain" / "model.safetensors")
    assert from_jit.keys() == from_plain.keys()
    for key, value in from_plain.items():
        assert torch.equal(from_jit[key], value), key


class NotATensor:
    """A class a pickle would have to import and instantiate."""


def test_files_that_need_full_unpickling_are_refused_with_what_to_do(tmp_path, capsys):
    torch.save(nn.Linear(2, 2), tmp_path / "whole_module.pt")
    torch.save({"weight": torch.zeros(2), "extra": NotATensor()}, tmp_path / "custom_class.pt")
    for name in ("whole_module.pt", "custom_class.pt"):
        with pytest.raises(UnsafeCheckpointError, match=r"refusing to unpickle .*--trust_pickle"):
            load_official_state_dict(tmp_path / name)
    assert main(["--checkpoint", str(tmp_path / "whole_module.pt"), "--output_dir", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert "torch.nn.modules.linear.Linear" in error and "Re-save the weights as a plain state dict" in error
    assert not (tmp_path / "out").exists()
    # The explicit opt-in reads it.
    assert set(load_official_state_dict(tmp_path / "whole_module.pt", trust_pickle=True)) == {"weight", "bias"}


def test_files_that_are_not_checkpoints_are_named_as_such(tmp_path):
    (tmp_path / "notes.pt").write_text("hello")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointLoadError, match="notes.pt: not a PyTorch checkpoint"):
        load_official_state_dict(tmp_path / "notes.pt")
    with pytest.raises(CheckpointLoadError, match="empty.pt: empty file"):
        load_official_state_dict(tmp_path / "empty.pt")
    torch.save({"weight": torch.zeros(2), "epoch": 3}, tmp_path / "mixed.pt")
    with pytest.raises(CheckpointLoadError, match=r"these entries are not tensors: \['epoch'\]"):
        load_official_state_dict(tmp_path / "mixed.pt")


CALLED = []


def record_call(*args):
    CALLED.append(args)


class _Payload:
    def __reduce__(self):
        return record_call, ("ran",)


def test_torchscript_archive_naming_other_code_is_refused_without_running_it(tmp_path):
    path = tmp_path / "crafted.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("crafted/data.pkl", pickle.dumps(_Payload(), protocol=2))
        archive.writestr("crafted/constants.pkl", pickle.dumps((), protocol=2))
        archive.writestr("crafted/code/__torch__.py", "class Crafted(Module):\n  __parameters__ = []\n")
    with pytest.raises(UnsafeCheckpointError, match=r"test_convert_script.record_call"):
        load_official_state_dict(path)
    assert CALLED == []


def test_unused_tensors_are_an_error_unless_explicitly_dropped(tmp_path):
    state = openai_state_dict(tiny_clip())
    state["extra_head.weight"] = torch.zeros(3)
    save_file(state, tmp_path / "clip.safetensors")
    bpe = str(write_bpe(tmp_path / "bpe.txt.gz", CLIP_VOCAB))
    with pytest.raises(ConversionError, match=r"have no place in a DRL model: \['clip.extra_head.weight'\]"):
        convert(tmp_path / "clip.safetensors", tmp_path / "out", bpe=bpe)
    assert not (tmp_path / "out").exists()
    report = convert(tmp_path / "clip.safetensors", tmp_path / "out", bpe=bpe, allow_unused_keys=True)
    assert report.unused_keys == ["clip.extra_head.weight"]
    assert json.loads((tmp_path / "out" / "conversion.json").read_text())["unused_keys"] == report.unused_keys


def test_a_mapping_bug_that_survives_the_round_trip_is_caught_by_the_reference_forward(tmp_path, monkeypatch):
    """q and k swapped in both directions of the key mapping: the weights round-trip, the outputs do not match."""
    import hub_scripts.convert_official_checkpoint as script
    import modeling_tvr.conversion.state_dict as conversion

    def swap(state, q, k):
        return {**state, q: state[k], k: state[q]}

    q, k = (f"text_model.encoder.layers.0.self_attn.{name}_proj.weight" for name in "qk")
    to_hf, to_official = conversion.official_to_hf_state_dict, script.hf_to_official_state_dict
    monkeypatch.setattr(conversion, "official_to_hf_state_dict", lambda sd: (swap(to_hf(sd)[0], q, k), to_hf(sd)[1]))
    monkeypatch.setattr(script, "hf_to_official_state_dict", lambda sd: to_official(swap(sd, q, k)))
    save_file(openai_state_dict(tiny_clip()), tmp_path / "clip.safetensors")
    bpe = str(write_bpe(tmp_path / "bpe.txt.gz", CLIP_VOCAB))
    with pytest.raises(ConversionError, match="does not reproduce the checkpoint's outputs: {'text_features'"):
        convert(tmp_path / "clip.safetensors", tmp_path / "out", bpe=bpe, overrides={"max_frames": 4})
    assert not (tmp_path / "out").exists()


def test_weights_changed_by_the_conversion_are_named(tmp_path, monkeypatch):
    import hub_scripts.convert_official_checkpoint as script

    to_official = script.hf_to_official_state_dict

    def off_by_one(state):
        official = to_official(state)
        return {**official, "clip.ln_final.bias": official["clip.ln_final.bias"] + 1}

    monkeypatch.setattr(script, "hf_to_official_state_dict", off_by_one)
    save_file(openai_state_dict(tiny_clip()), tmp_path / "clip.safetensors")
    bpe = str(write_bpe(tmp_path / "bpe.txt.gz", CLIP_VOCAB))
    with pytest.raises(ConversionError, match=r"Weights changed by the conversion .*\['clip.ln_final.bias'\]"):
        convert(tmp_path / "clip.safetensors", tmp_path / "out", bpe=bpe, overrides={"max_frames": 4})


def test_metadata_or_vocabulary_that_contradicts_the_tensors_is_an_error(tmp_path):
    state = openai_state_dict(tiny_clip())
    save_file({**state, "input_resolution": torch.tensor(224)}, tmp_path / "wrong_resolution.safetensors")
    save_file(state, tmp_path / "clip.safetensors")
    bpe = str(write_bpe(tmp_path / "bpe.txt.gz", CLIP_VOCAB))
    with pytest.raises(ConversionError, match="input_resolution=224 but its tensors imply 32"):
        convert(tmp_path / "wrong_resolution.safetensors", tmp_path / "out", bpe=bpe)
    with pytest.raises(ConversionError, match=f"token embedding has {CLIP_VOCAB} rows"):
        convert(tmp_path / "clip.safetensors", tmp_path / "out", bpe=str(write_bpe(tmp_path / "small.gz", 520)))


def test_cli_prints_the_checks_and_refuses_to_overwrite(tmp_path, capsys):
    save_file(openai_state_dict(tiny_clip()), tmp_path / "clip.safetensors")
    bpe = str(write_bpe(tmp_path / "bpe.txt.gz", CLIP_VOCAB))
    arguments = [
        "--checkpoint",
        str(tmp_path / "clip.safetensors"),
        "--bpe",
        bpe,
        "--output-dir",
        str(tmp_path / "out"),
    ]
    assert main([*arguments, "--max_frames", "4", "--interaction", "ti", "--temporal_module", "none"]) == 0
    printed = capsys.readouterr().out
    assert "max difference: 0" in printed and "text_features" in printed
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert (config["interaction"], config["temporal_module"], config["max_frames"]) == ("ti", "none", 4)
    assert main(arguments) == 1
    assert "already holds a model; pass --overwrite" in capsys.readouterr().err


@pytest.mark.slow
def test_scripts_run_standalone_from_any_directory(tmp_path):
    """`python hub_scripts/<script>.py`: the scripts import the installed package only, never `hub_scripts`."""
    program = textwrap.dedent(
        f"""
        import runpy, sys
        for script in ("convert_official_checkpoint.py", "push_to_hub.py"):
            sys.argv = [script, "--help"]
            try:
                runpy.run_path({str(ROOT / "hub_scripts")!r} + "/" + script, run_name="__main__")
            except SystemExit as exit:
                assert exit.code == 0, (script, exit.code)
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("usage:") == 2
