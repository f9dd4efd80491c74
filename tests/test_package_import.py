"""`import modeling_tvr` is cheap, and using a model name registers the DRL classes with transformers."""

import subprocess
import sys
from pathlib import Path

import pytest

import modeling_tvr

ROOT = Path(__file__).resolve().parents[1]


def run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def test_importing_the_package_loads_neither_torch_nor_transformers():
    assert (
        run("import sys, modeling_tvr; print('torch' in sys.modules, 'transformers' in sys.modules)") == "False False"
    )


@pytest.mark.slow
def test_using_a_model_name_registers_the_auto_classes_and_the_pipeline_task():
    code = (
        "from modeling_tvr import DRLConfig\n"
        "from transformers import AutoConfig, AutoModel\n"
        "from transformers.pipelines import PIPELINE_REGISTRY\n"
        "config = AutoConfig.for_model('drl')\n"
        "print(type(config).__name__, AutoModel.from_config(config).__class__.__name__,\n"
        "      'text-video-retrieval' in PIPELINE_REGISTRY.get_supported_tasks())"
    )
    assert run(code) == "DRLConfig DRLModel True"


def test_every_public_name_is_exported_and_resolves():
    assert set(modeling_tvr.__all__) == set(modeling_tvr._EXPORTS) | {"register_auto_classes"}
    for name in modeling_tvr.__all__:
        assert getattr(modeling_tvr, name) is not None, name
