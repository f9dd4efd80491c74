"""The package's shape: `modeling_tvr/` holds exactly the code a saved model carries, the applications live in
sub-packages that never travel, and the core never imports them."""

import ast
import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from transformers.dynamic_module_utils import get_imports, get_relative_imports

import modeling_tvr

from .helpers import tiny_model_for, tiny_processor

PACKAGE = Path(modeling_tvr.__file__).parent
# What `DRLModel.save_pretrained` writes beside the weights (the pipeline rides along for `custom_pipelines`, and
# with it the caption rule it shares with the processor).
MODEL_CODE = {
    "configuration_drl.py",
    "modeling_drl.py",
    "interaction_drl.py",
    "loss_drl.py",
    "pipeline_drl.py",
    "caption_checks.py",
}
# What `DRLProcessor.save_pretrained` writes beside its configs.
PROCESSOR_CODE = {
    "processing_drl.py",
    "video_processing_drl.py",
    "tokenization_drl.py",
    "video_decoding.py",
    "frame_sampling.py",
    "frame_transforms.py",
    "caption_checks.py",
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    processor = tiny_processor(folder)
    tiny_model_for(processor.tokenizer).save_pretrained(folder / "model")
    processor.save_pretrained(folder / "processor")
    return folder


def code_files(folder: Path) -> set[str]:
    return {path.name for path in folder.glob("*.py")}


def test_a_saved_model_and_processor_carry_exactly_these_files(saved):
    assert code_files(saved / "model") == MODEL_CODE
    assert code_files(saved / "processor") == PROCESSOR_CODE


def test_the_package_folder_holds_exactly_the_files_that_travel():
    assert code_files(PACKAGE) - {"__init__.py"} == MODEL_CODE | PROCESSOR_CODE
    subpackages = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    assert subpackages == {"conversion", "frame_cache", "search", "training"}


def test_saved_code_needs_no_package_beyond_what_transformers_checks(saved):
    """transformers copies single-dot relative imports and requires every absolute import outside `try` to be
    installed: none of them may be this package."""
    for folder in (saved / "model", saved / "processor"):
        for name in code_files(folder):
            assert "modeling_tvr" not in get_imports(folder / name), name
            for module in get_relative_imports(folder / name):
                assert f"{module}.py" in code_files(folder), f"{name} imports .{module}, which is not saved"


def test_the_core_never_imports_an_application_sub_package():
    """Not even inside `try` or a function: a method that needs a sub-package cannot work in a saved model's copy of
    the code, and the sub-packages import the core, so the import would be a cycle. (A core module may name its own
    installed counterpart, as video_decoding does for its error class.)"""
    core = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    for name in sorted(core):
        for node in ast.walk(ast.parse((PACKAGE / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1 and node.module in core, f"{name}.py:{node.lineno} imports {node.module}"
                continue
            modules = [node.module] if isinstance(node, ast.ImportFrom) else []
            modules += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for module in modules:
                package, _, rest = module.partition(".")
                assert package != "modeling_tvr" or rest in core, f"{name}.py:{node.lineno} imports {module}"


@pytest.mark.slow
def test_a_fresh_process_without_the_package_loads_model_and_processor(saved):
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["modeling_tvr"] = None  # importing the package now fails
        from transformers import AutoModel, AutoProcessor
        model = AutoModel.from_pretrained({str(saved / "model")!r}, trust_remote_code=True)
        processor = AutoProcessor.from_pretrained({str(saved / "processor")!r}, trust_remote_code=True)
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        frames = __import__("numpy").zeros((2, 32, 32, 3), "uint8")
        inputs = processor(text=["a red circle moves"], videos=[frames])
        print(tuple(model(**inputs).logits_per_text.shape))
        try:  # without the package, the copy's own error class is the one raised
            processor(videos=["missing.mp4"])
        except ValueError as error:
            assert type(error).__module__.startswith("transformers_modules"), type(error).__module__
            assert type(error).__name__ == "VideoReadError", type(error).__name__
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(saved / "modules")}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=saved, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "(1, 1)"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("modeling_tvr.index", "modeling_tvr.search.index"),
        ("modeling_tvr.metrics", "modeling_tvr.training.metrics"),
        ("modeling_tvr.optimization", "modeling_tvr.training.optimization"),
    ],
)
def test_the_applications_import_from_their_sub_packages_only(old, new):
    importlib.import_module(new)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(old)


def test_the_authors_state_dicts_convert_with_the_conversion_function_not_a_model_method():
    from modeling_tvr.conversion import from_official_state_dict

    assert callable(from_official_state_dict)
    assert not hasattr(modeling_tvr.DRLModel, "from_official_state_dict")


def test_search_command_line_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "modeling_tvr.search", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "usage: python -m modeling_tvr.search" in result.stdout
