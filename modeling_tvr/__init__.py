"""DRL (Disentangled Representation Learning for Text-Video Retrieval) as a transformers model."""

from transformers import AutoConfig, AutoModel

from .configuration_drl import DRLConfig
from .convert import OfficialStateDictError
from .modeling_drl import DRLModel, DRLOutput, DRLPreTrainedModel

# In-process Auto* resolution, plus `auto_map` entries so that saved checkpoints carry their code and load with
# `trust_remote_code=True` where this package is not installed.
AutoConfig.register(DRLConfig.model_type, DRLConfig)
AutoModel.register(DRLConfig, DRLModel)
DRLConfig.register_for_auto_class()
DRLModel.register_for_auto_class("AutoModel")

__all__ = ["DRLConfig", "DRLModel", "DRLOutput", "DRLPreTrainedModel", "OfficialStateDictError"]
