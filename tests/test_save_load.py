"""save_pretrained writes weights, config with auto_map and the code; a bare environment loads it."""

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModel

from modeling_tvr import DRLConfig, DRLModel

from .helpers import random_batch, tiny_model

CODE_FILES = {"configuration_drl.py", "modeling_drl.py", "interaction_drl.py", "loss_drl.py"}


def test_save_pretrained_writes_safetensors_config_with_auto_map_and_code(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    files = set(os.listdir(tmp_path))
    assert {"model.safetensors", "config.json"} | CODE_FILES <= files
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "drl"
    assert config["auto_map"] == {"AutoConfig": "configuration_drl.DRLConfig", "AutoModel": "modeling_drl.DRLModel"}


def test_auto_classes_resolve_drl_in_process(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), DRLConfig)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, DRLModel)
    batch = random_batch()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits_per_text, model(**batch).logits_per_text, rtol=0, atol=0)


@pytest.mark.slow
def test_fresh_process_without_the_package_loads_with_trust_remote_code(tmp_path):
    model = tiny_model(seed=4)
    model.save_pretrained(tmp_path / "model")
    batch = random_batch(seed=2)
    save_file(batch, tmp_path / "batch.safetensors")
    with torch.no_grad():
        expected = model(**batch).logits_per_text
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["modeling_tvr"] = None  # importing the package now fails
        import torch
        from safetensors.torch import load_file, save_file
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path / "model")!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        with torch.no_grad():
            logits = model(**load_file({str(tmp_path / "batch.safetensors")!r})).logits_per_text
        save_file({{"logits": logits.contiguous()}}, {str(tmp_path / "logits.safetensors")!r})
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    from safetensors.torch import load_file

    torch.testing.assert_close(load_file(tmp_path / "logits.safetensors")["logits"], expected, rtol=0, atol=0)


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_saved_weights_get_the_mode_of_any_new_file_not_owner_only(model, tmp_path, umask):
    previous = os.umask(umask)
    try:
        model.save_pretrained(tmp_path / "model")
    finally:
        os.umask(previous)
    weights = tmp_path / "model" / "model.safetensors"
    assert stat.S_IMODE(weights.stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(weights.stat().st_mode) == stat.S_IMODE((tmp_path / "model" / "config.json").stat().st_mode)
