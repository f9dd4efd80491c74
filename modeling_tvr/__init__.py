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
from typing import TYPE_CHECKING, Any

# Public name -> the module of this package that defines it: the one list of public names.
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
    "TextVideoRetrievalPipeline": "pipeline_drl",
    "VideoReadError": "video_decoding",
    "clip_tokenizer_from_bpe": "tokenization_drl",
    "read_video_frames": "video_decoding",
}
# Modules whose names, once used, mean transformers must know the DRL classes (the tokenizer registers itself).
_MODEL_MODULES = {"configuration_drl", "modeling_drl", "processing_drl", "video_processing_drl", "pipeline_drl"}
__all__ = [*_EXPORTS, "register_auto_classes"]

if TYPE_CHECKING:  # for type checkers and IDEs, which do not run `__getattr__` (`X as X` marks a re-export)
    from .configuration_drl import DRLConfig as DRLConfig
    from .modeling_drl import DRLModel as DRLModel
    from .modeling_drl import DRLOutput as DRLOutput
    from .modeling_drl import DRLPreTrainedModel as DRLPreTrainedModel
    from .modeling_drl import DRLTextFeaturesOutput as DRLTextFeaturesOutput
    from .modeling_drl import DRLVideoFeaturesOutput as DRLVideoFeaturesOutput
    from .pipeline_drl import TextVideoRetrievalPipeline as TextVideoRetrievalPipeline
    from .processing_drl import DRLProcessor as DRLProcessor
    from .tokenization_drl import DRLCLIPTokenizer as DRLCLIPTokenizer
    from .tokenization_drl import clip_tokenizer_from_bpe as clip_tokenizer_from_bpe
    from .video_decoding import VideoReadError as VideoReadError
    from .video_decoding import read_video_frames as read_video_frames
    from .video_processing_drl import DRLVideoProcessor as DRLVideoProcessor

_registered = False


def register_auto_classes() -> None:
    """Register the DRL classes with transformers (idempotent; a call that fails leaves them for the next one).

    In-process Auto* resolution, plus `auto_map` entries so that saved checkpoints and processors carry their code and
    load with `trust_remote_code=True` where this package is not installed. (The tokenizer registers itself in its
    module, which also travels alone.) `pipeline("text-video-retrieval", model=DRLModel instance, processor=...)` works
    in process; saved folders carry the pipeline in `config.custom_pipelines` (see `DRLConfig`).
    """
    global _registered
    if _registered:
        return
    from transformers import AutoConfig, AutoModel, AutoProcessor
    from transformers.pipelines import PIPELINE_REGISTRY

    from .configuration_drl import PIPELINE_TASK, DRLConfig
    from .modeling_drl import DRLModel
    from .pipeline_drl import TextVideoRetrievalPipeline
    from .processing_drl import DRLProcessor
    from .video_processing_drl import DRLVideoProcessor

    # exist_ok: a call that failed part-way may have registered some of them.
    AutoConfig.register(DRLConfig.model_type, DRLConfig, exist_ok=True)
    AutoModel.register(DRLConfig, DRLModel, exist_ok=True)
    AutoProcessor.register(DRLConfig, DRLProcessor, exist_ok=True)
    DRLConfig.register_for_auto_class()
    DRLModel.register_for_auto_class("AutoModel")
    DRLProcessor.register_for_auto_class("AutoProcessor")
    DRLVideoProcessor.register_for_auto_class("AutoVideoProcessor")
    PIPELINE_REGISTRY.register_pipeline(
        PIPELINE_TASK, pipeline_class=TextVideoRetrievalPipeline, pt_model=AutoModel, type="multimodal"
    )
    _registered = True


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
