"""DRL model configuration."""

import copy
from typing import TYPE_CHECKING

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.models.clip.configuration_clip import CLIPTextConfig, CLIPVisionConfig

if TYPE_CHECKING:
    # transformers saves a config's file with the siblings it imports relatively: this import makes every saved
    # config (and so every saved model) carry the pipeline that `custom_pipelines` names.
    from .pipeline_drl import TextVideoRetrievalPipeline  # noqa: F401

INTERACTIONS = ("wti", "ti", "dp")
WTI_ARCHS = (1, 2, 3)
TEMPORAL_MODULES = ("none", "seqTransf")
CDCR_MODES = (0, 1, 2, 3)

PIPELINE_TASK = "text-video-retrieval"
# What `config.custom_pipelines` holds: `pipeline(PIPELINE_TASK, model=folder_or_repo, trust_remote_code=True)` reads it
# from a saved config.json, loads the pipeline class from the folder's copy of pipeline_drl.py and the model with
# `AutoModel`.
CUSTOM_PIPELINES = {
    PIPELINE_TASK: {"impl": "pipeline_drl.TextVideoRetrievalPipeline", "pt": ["AutoModel"], "type": "multimodal"}
}


@strict
class DRLConfig(PreTrainedConfig):
    r"""
    Configuration of a [`DRLModel`]: a CLIP text tower and vision tower plus the DRL head (temporal module,
    token-wise interaction and channel decorrelation regularisation) of "Disentangled Representation Learning
    for Text-Video Retrieval" (Wang et al., 2022). The defaults are the paper's MSR-VTT settings.

    Args:
        text_config (`dict` or `CLIPTextConfig`, *optional*):
            The CLIP text tower.
        vision_config (`dict` or `CLIPVisionConfig`, *optional*):
            The CLIP vision tower.
        projection_dim (`int`, defaults to 512):
            Width of the joint space; also the width of the temporal module and of the WTI weight heads.
        interaction (`str`, defaults to `"wti"`):
            `"wti"` (weighted token-wise), `"ti"` (token-wise, uniform weights) or `"dp"` (dot product of the
            end-of-text feature with the mean-pooled video).
        wti_arch (`int`, defaults to 2):
            Depth of the WTI weight heads: 1 (`Linear(D,1)`), 2 (`Linear(D,D)-ReLU-Linear(D,1)`, the paper's) or
            3 (two hidden layers).
        temporal_module (`str`, defaults to `"seqTransf"`):
            `"seqTransf"` (a transformer over frame features with a residual) or `"none"`.
        temporal_layers (`int`, defaults to 4):
            Number of residual attention blocks of `seqTransf`.
        max_frame_positions (`int`, *optional*):
            Rows of the temporal module's frame position table; defaults to the text tower's
            `max_position_embeddings`, from which the authors initialise it.
        max_frames (`int`, defaults to 12):
            Frames sampled per video by the processor.
        max_words (`int`, defaults to 32):
            Tokens per caption (start and end tokens included) used by the processor.
        cdcr (`int`, defaults to 3):
            Channel decorrelation regularisation: 0 off, 1 one random token per sample, 2 best-matching token
            pairs, 3 best-matching pairs weighted by the WTI weights (the paper's).
        cdcr_alpha1 (`float`, defaults to 0.11):
            Weight of the on-diagonal term of CDCR. The default is the value of the authors' main result (and of
            their ViT-B/16 WTI + CDCR script line); their ViT-B/32 WTI + CDCR line uses 0.14.
        cdcr_alpha2 (`float`, defaults to 0.0):
            Weight of the off-diagonal term of CDCR.
        cdcr_lambda (`float`, defaults to 0.001):
            Weight of CDCR in the total loss.
        logit_scale_init_value (`float`, defaults to 2.6592):
            Initial value of the learnable log temperature (CLIP's `ln(1/0.07)`).
        initializer_range (`float`, defaults to 0.02):
            Standard deviation of the normal initialisation of the DRL layers.
        initializer_factor (`float`, defaults to 1.0):
            Factor on CLIP's own initialisation (as in `CLIPConfig`).
        custom_pipelines (`dict`, *optional*):
            transformers' record of the pipelines a saved model offers; the `text-video-retrieval` task is always
            there (`CUSTOM_PIPELINES`), so that `pipeline("text-video-retrieval", model=folder,
            trust_remote_code=True)` works on any saved model.

    Example:

    ```python
    >>> from modeling_tvr import DRLConfig, DRLModel

    >>> config = DRLConfig(interaction="wti", cdcr=3)
    >>> model = DRLModel(config)
    ```
    """

    model_type = "drl"
    sub_configs_defaults = {"text_config": CLIPTextConfig, "vision_config": CLIPVisionConfig}

    text_config: dict | CLIPTextConfig | None = None
    vision_config: dict | CLIPVisionConfig | None = None
    projection_dim: int = 512
    interaction: str = "wti"
    wti_arch: int = 2
    temporal_module: str = "seqTransf"
    temporal_layers: int = 4
    max_frame_positions: int | None = None
    max_frames: int = 12
    max_words: int = 32
    cdcr: int = 3
    cdcr_alpha1: float | int = 0.11
    cdcr_alpha2: float | int = 0.0
    cdcr_lambda: float | int = 0.001
    logit_scale_init_value: float | int = 2.6592
    initializer_range: float = 0.02
    initializer_factor: float = 1.0

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.max_frame_positions is None:
            self.max_frame_positions = self.text_config.max_position_embeddings
        self.custom_pipelines = {**copy.deepcopy(CUSTOM_PIPELINES), **(getattr(self, "custom_pipelines", None) or {})}

    @property
    def temporal_num_heads(self) -> int:
        """Heads of the temporal module: width / 64, as in CLIP's residual attention blocks."""
        return max(1, self.projection_dim // 64)

    def validate_drl_options(self):
        """Rejects unknown DRL options with a message that names the field and the accepted values."""
        choices = {
            "interaction": INTERACTIONS,
            "wti_arch": WTI_ARCHS,
            "temporal_module": TEMPORAL_MODULES,
            "cdcr": CDCR_MODES,
        }
        for name, accepted in choices.items():
            value = getattr(self, name)
            if value not in accepted:
                raise ValueError(f"DRLConfig.{name}={value!r} is not supported; choose one of {list(accepted)}.")
        positive = ("projection_dim", "max_frames", "max_words", "max_frame_positions")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"DRLConfig.{name} must be at least 1, got {getattr(self, name)}.")
        if self.temporal_layers < 0:
            raise ValueError(f"DRLConfig.temporal_layers must be >= 0, got {self.temporal_layers}.")
        if self.temporal_module == "seqTransf" and self.max_frames > self.max_frame_positions:
            raise ValueError(
                f"DRLConfig.max_frames={self.max_frames} exceeds the {self.max_frame_positions} rows of the frame "
                "position table (max_frame_positions); lower max_frames or raise max_frame_positions."
            )
        if self.max_words > self.text_config.max_position_embeddings:
            raise ValueError(
                f"DRLConfig.max_words={self.max_words} exceeds the text tower's "
                f"{self.text_config.max_position_embeddings} positions (text_config.max_position_embeddings)."
            )
        for name in ("cdcr_alpha1", "cdcr_alpha2", "cdcr_lambda"):
            if getattr(self, name) < 0:
                raise ValueError(f"DRLConfig.{name} must be >= 0, got {getattr(self, name)}.")


__all__ = ["CUSTOM_PIPELINES", "PIPELINE_TASK", "DRLConfig"]
