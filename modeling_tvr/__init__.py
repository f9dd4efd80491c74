"""DRL (Disentangled Representation Learning for Text-Video Retrieval) as a transformers model.

The files directly in this folder are the model that travels with every saved checkpoint (configuration, modeling,
interaction, loss, tokenization, processing, video decoding, pipeline); they import each other with single-dot
relative imports only, as transformers' remote code requires. The applications around the model live in
sub-packages that import it and never travel: `search` (indexes and the search command line), `conversion` (the
authors' checkpoints) and `training` (optimiser, metrics, plots, training checkpoints, model card).

The public names load on first use (PEP 562), so that `import modeling_tvr` and the command lines built on it
(`python -m modeling_tvr.search --help`, argument errors) do not pay for importing torch and transformers' model code
before they need it. Touching any model, configuration, processor or pipeline name also registers the DRL classes
with transformers' Auto* classes and the `text-video-retrieval` pipeline task.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

# Public name -> the module of this package that defines it.
_EXPORTS = {
    "DRLCLIPTokenizer": "tokenization_drl",
    "DRLConfig": "configuration_drl",
    "DRLModel": "modeling_drl",
    "DRLOutput": "modeling_drl",
    "DRLPreTrainedModel": "modeling_drl",
    "DRLProcessor": "processing_drl",
    "DRLTextFeaturesOutput": "modeling_drl",
    "DRLVideoFeaturesOutput": "modeling_drl",
    "DRLVideoProcessor": "video_processing_drl",
    "OfficialStateDictError": "conversion.state_dict",
    "TextVideoRetrievalPipeline": "pipeline_drl",
    "VideoReadError": "video_decoding",
    "clip_tokenizer_from_bpe": "tokenization_drl",
    "read_video_frames": "video_decoding",
}
# Modules whose names, once used, mean transformers must know the DRL classes (the tokenizer registers itself).
_MODEL_MODULES = {"configuration_drl", "modeling_drl", "processing_drl", "video_processing_drl", "pipeline_drl"}
__all__ = [
    "DRLCLIPTokenizer",
    "DRLConfig",
    "DRLModel",
    "DRLOutput",
    "DRLPreTrainedModel",
    "DRLProcessor",
    "DRLTextFeaturesOutput",
    "DRLVideoFeaturesOutput",
    "DRLVideoProcessor",
    "OfficialStateDictError",
    "TextVideoRetrievalPipeline",
    "VideoReadError",
    "clip_tokenizer_from_bpe",
    "read_video_frames",
    "register_auto_classes",
]

if TYPE_CHECKING:
    from .configuration_drl import DRLConfig
    from .conversion.state_dict import OfficialStateDictError
    from .modeling_drl import (
        DRLModel,
        DRLOutput,
        DRLPreTrainedModel,
        DRLTextFeaturesOutput,
        DRLVideoFeaturesOutput,
    )
    from .pipeline_drl import TextVideoRetrievalPipeline
    from .processing_drl import DRLProcessor
    from .tokenization_drl import DRLCLIPTokenizer, clip_tokenizer_from_bpe
    from .video_decoding import VideoReadError, read_video_frames
    from .video_processing_drl import DRLVideoProcessor

_registered = False


def register_auto_classes() -> None:
    """Register the DRL classes with transformers (idempotent).

    In-process Auto* resolution, plus `auto_map` entries so that saved checkpoints and processors carry their code and
    load with `trust_remote_code=True` where this package is not installed. (The tokenizer registers itself in its
    module, which also travels alone.) `pipeline("text-video-retrieval", model=DRLModel instance, processor=...)` works
    in process; saved folders carry the pipeline in `config.custom_pipelines` (see `DRLConfig`).
    """
    global _registered
    if _registered:
        return
    _registered = True
    from transformers import AutoConfig, AutoModel, AutoProcessor
    from transformers.pipelines import PIPELINE_REGISTRY

    from .configuration_drl import PIPELINE_TASK, DRLConfig
    from .modeling_drl import DRLModel
    from .pipeline_drl import TextVideoRetrievalPipeline
    from .processing_drl import DRLProcessor
    from .video_processing_drl import DRLVideoProcessor

    AutoConfig.register(DRLConfig.model_type, DRLConfig)
    AutoModel.register(DRLConfig, DRLModel)
    AutoProcessor.register(DRLConfig, DRLProcessor)
    DRLConfig.register_for_auto_class()
    DRLModel.register_for_auto_class("AutoModel")
    DRLProcessor.register_for_auto_class("AutoProcessor")
    DRLVideoProcessor.register_for_auto_class("AutoVideoProcessor")
    PIPELINE_REGISTRY.register_pipeline(
        PIPELINE_TASK, pipeline_class=TextVideoRetrievalPipeline, pt_model=AutoModel, type="multimodal"
    )


# Module paths the README and DESIGN.md publish, from before the applications moved into sub-packages.
MOVED_MODULES = {
    "index": "search.index",
    "metrics": "training.metrics",
    "optimization": "training.optimization",
}


class _MovedModuleLoader(importlib.abc.Loader):
    """Gives the module at its new path, so that the old and new names are one module object."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self.own_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # Already executed under its new name; importlib has just stamped the old name's spec on it: undo that, so
        # that reload and tools that read `__spec__` see the module's real home.
        module.__spec__ = self.own_spec


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Resolves `modeling_tvr.<old name>` to its sub-package module when it is imported, and only then (a module
    attribute alone would not serve `import modeling_tvr.index` or `from modeling_tvr.metrics import ...`)."""

    def find_spec(self, fullname: str, path: Any = None, target: ModuleType | None = None):
        package, _, name = fullname.rpartition(".")
        if package != __name__ or name not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, _MovedModuleLoader(f"{__name__}.{MOVED_MODULES[name]}"))


if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    if _EXPORTS[name] in _MODEL_MODULES:
        register_auto_classes()
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
