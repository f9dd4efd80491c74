"""`import modeling_tvr` is cheap, and using a model name registers the DRL classes with transformers."""

import ast
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


def test_the_imports_for_type_checkers_are_the_exported_names_from_their_modules():
    tree = ast.parse(Path(modeling_tvr.__file__).read_text())
    (block,) = [node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"]
    imported = {alias.asname: node.module for node in block.body for alias in node.names}
    assert imported == modeling_tvr._EXPORTS
    assert all(alias.name == alias.asname for node in block.body for alias in node.names)  # re-exports, not renames


def test_a_registration_that_fails_is_not_marked_done(monkeypatch):
    from transformers import AutoConfig

    import modeling_tvr.pipeline_drl as pipeline_module

    monkeypatch.setattr(modeling_tvr, "_registered", False)
    monkeypatch.setitem(sys.modules, "modeling_tvr.pipeline_drl", None)  # its import now fails
    with pytest.raises(ImportError):
        modeling_tvr.register_auto_classes()
    assert modeling_tvr._registered is False
    monkeypatch.setitem(sys.modules, "modeling_tvr.pipeline_drl", pipeline_module)
    modeling_tvr.register_auto_classes()  # the next call registers everything
    assert modeling_tvr._registered is True
    assert type(AutoConfig.for_model("drl")) is modeling_tvr.DRLConfig
