"""DRL (Disentangled Representation Learning for Text-Video Retrieval) as a transformers model."""

from transformers import AutoConfig, AutoModel, AutoProcessor
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_drl import DRLConfig
from .convert import OfficialStateDictError
from .modeling_drl import DRLModel, DRLOutput, DRLPreTrainedModel
from .pipeline_drl import PIPELINE_TASK, TextVideoRetrievalPipeline
from .processing_drl import DRLProcessor
from .tokenization_drl import DRLCLIPTokenizer, clip_tokenizer_from_bpe
from .video_decoding import VideoReadError, read_video_frames
from .video_processing_drl import DRLVideoProcessor

# In-process Auto* resolution, plus `auto_map` entries so that saved checkpoints and processors carry their code
# and load with `trust_remote_code=True` where this package is not installed. (The tokenizer registers itself in
# its module, which also travels alone.)
AutoConfig.register(DRLConfig.model_type, DRLConfig)
AutoModel.register(DRLConfig, DRLModel)
AutoProcessor.register(DRLConfig, DRLProcessor)
DRLConfig.register_for_auto_class()
DRLModel.register_for_auto_class("AutoModel")
DRLProcessor.register_for_auto_class("AutoProcessor")
DRLVideoProcessor.register_for_auto_class("AutoVideoProcessor")
# `pipeline("text-video-retrieval", model=DRLModel instance, processor=...)` in process; saved folders carry the
# pipeline in `config.custom_pipelines` (see DRLModel.save_pretrained) and load it with trust_remote_code=True.
PIPELINE_REGISTRY.register_pipeline(
    PIPELINE_TASK, pipeline_class=TextVideoRetrievalPipeline, pt_model=AutoModel, type="multimodal"
)

__all__ = [
    "DRLCLIPTokenizer",
    "DRLConfig",
    "DRLModel",
    "DRLOutput",
    "DRLPreTrainedModel",
    "DRLProcessor",
    "DRLVideoProcessor",
    "OfficialStateDictError",
    "TextVideoRetrievalPipeline",
    "VideoReadError",
    "clip_tokenizer_from_bpe",
    "read_video_frames",
]
