"""PyTorch DRL model: CLIP towers + temporal module + weighted token-wise interaction + CDCR."""

import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling, ModelOutput
from transformers.models.clip.configuration_clip import CLIPTextConfig
from transformers.models.clip.modeling_clip import (
    CLIPMLP,
    CLIPAttention,
    CLIPEncoderLayer,
    CLIPModel,
    CLIPPreTrainedModel,
    CLIPTextModel,
    CLIPVisionModel,
)
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, can_return_tuple, logging

from .configuration_drl import DRLConfig
from .interaction_drl import end_of_text_features, position_weights, text_video_similarity
from .loss_drl import drl_loss

logger = logging.get_logger(__name__)


def new_file_mode() -> int:
    """The mode `open()` gives a new file in this process: 0o666 less the umask."""
    try:  # Linux states the umask; reading it there leaves the process's umask alone (threads may be creating files)
        status = Path("/proc/self/status").read_text()
        return 0o666 & ~int(re.search(r"^Umask:\s*([0-7]+)", status, re.MULTILINE).group(1), 8)
    except (OSError, AttributeError, ValueError):
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


# State-dict prefixes of the modules DRL adds to CLIP: absent from a CLIP checkpoint, initialised anew.
DRL_MODULE_PREFIXES = ("temporal_transformer.", "text_weight_head.", "video_weight_head.")

# The authors mask padded frames in the temporal transformer with this additive bias rather than -inf.
_FRAME_MASK_BIAS = -1e6


@dataclass
class DRLTextFeaturesOutput(BaseModelOutputWithPooling):
    r"""
    Output of [`DRLModel.get_text_features`], in the layout of `CLIPModel.get_text_features`.

    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, tokens, text_config.hidden_size)`):
        The text tower's last hidden states.
    pooler_output (`torch.FloatTensor` of shape `(batch_size, projection_dim)`):
        The projected end-of-text feature (the caption embedding of the `dp` interaction).
    hidden_states, attentions (`tuple(torch.FloatTensor)`, *optional*):
        The text tower's, when asked.
    text_embeds (`torch.FloatTensor` of shape `(batch_size, tokens, projection_dim)`):
        The projected token features (not normalised): what the token-wise interaction compares, what
        [`DRLModel.similarity`] takes, and `DRLOutput.text_embeds`.
    """

    text_embeds: torch.FloatTensor | None = None


@dataclass
class DRLVideoFeaturesOutput(BaseModelOutputWithPooling):
    r"""
    Output of [`DRLModel.get_video_features`].

    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, frames, patches + 1, vision_config.hidden_size)`):
        The vision tower's last hidden states, per frame.
    pooler_output (`torch.FloatTensor` of shape `(batch_size, projection_dim)`):
        The mean of `video_embeds` over real frames (the video embedding of the `dp` interaction).
    hidden_states (`tuple(torch.FloatTensor)`, *optional*):
        The vision tower's, when asked, each `(batch_size, frames, patches + 1, vision_config.hidden_size)`.
    attentions (`tuple(torch.FloatTensor)`, *optional*):
        The vision tower's, when asked, each `(batch_size, frames, heads, patches + 1, patches + 1)`.
    video_embeds (`torch.FloatTensor` of shape `(batch_size, frames, projection_dim)`):
        Frame features after the temporal module (not normalised): what the token-wise interaction compares, what
        [`DRLModel.similarity`] takes, and `DRLOutput.video_embeds`.
    """

    video_embeds: torch.FloatTensor | None = None


@dataclass
class DRLOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `return_loss=True`):
        `sim_loss + cdcr_lambda * cdcr_loss`.
    sim_loss (`torch.FloatTensor` of shape `()`, *optional*):
        Symmetric InfoNCE of the in-batch text-video logits.
    cdcr_loss (`torch.FloatTensor` of shape `()`, *optional*):
        Channel decorrelation regularisation (0 when `config.cdcr == 0`).
    logits_per_text (`torch.FloatTensor` of shape `(text_batch_size, video_batch_size)`):
        Similarities scaled by `exp(logit_scale)`.
    logits_per_video (`torch.FloatTensor` of shape `(video_batch_size, text_batch_size)`):
        The transpose of `logits_per_text`.
    text_embeds (`torch.FloatTensor` of shape `(text_batch_size, sequence_length, projection_dim)`):
        Projected token features, before normalisation.
    video_embeds (`torch.FloatTensor` of shape `(video_batch_size, num_frames, projection_dim)`):
        Frame features after the temporal module, before normalisation.
    text_model_output (`DRLTextFeaturesOutput`):
        The output of `get_text_features` (with the text tower's hidden states / attentions when asked).
    video_model_output (`DRLVideoFeaturesOutput`):
        The output of `get_video_features` (with the vision tower's hidden states / attentions when asked).
    """

    loss: torch.FloatTensor | None = None
    sim_loss: torch.FloatTensor | None = None
    cdcr_loss: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    logits_per_video: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    video_embeds: torch.FloatTensor | None = None
    text_model_output: DRLTextFeaturesOutput | None = None
    video_model_output: DRLVideoFeaturesOutput | None = None

    def to_tuple(self) -> tuple:
        """The fields as a tuple, the towers' outputs as tuples too (as `CLIPOutput` does)."""
        return tuple(
            self[name].to_tuple() if name in ("text_model_output", "video_model_output") else self[name]
            for name in self.keys()
        )


def build_weight_head(width: int, arch: int) -> nn.Module:
    """A WTI weight head in the authors' layer order, so their `*_weight_fc` state dicts load unchanged."""
    if arch == 1:
        return nn.Linear(width, 1)
    layers: list[nn.Module] = []
    for _ in range(arch - 1):
        layers += [nn.Linear(width, width), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.Linear(width, 1))


def fit_lengths_to_text_positions(config_kwargs: dict) -> dict:
    """Caps the default `max_words` / `max_frames` at a small text tower's positions unless given explicitly."""
    text_config = config_kwargs["text_config"]
    positions = (
        text_config["max_position_embeddings"] if isinstance(text_config, dict) else text_config.max_position_embeddings
    )
    frame_positions = config_kwargs.get("max_frame_positions") or positions
    fitted = dict(config_kwargs)
    fitted.setdefault("max_words", min(DRLConfig.max_words, positions))
    fitted.setdefault("max_frames", min(DRLConfig.max_frames, frame_positions))
    return fitted


#: Layer-norm epsilon of the temporal blocks, as in the authors' `until_module.LayerNorm`.
TEMPORAL_LAYER_NORM_EPS = 1e-12


class DRLTemporalTransformer(nn.Module):
    """
    The `seqTransf` temporal module: frame position embeddings, CLIP residual attention blocks over the frames
    (padded frames masked as keys), and a residual to the input without the position embeddings.
    """

    def __init__(self, config: DRLConfig):
        super().__init__()
        width = config.projection_dim
        self.layer_config = CLIPTextConfig(
            hidden_size=width,
            intermediate_size=4 * width,
            num_attention_heads=config.temporal_num_heads,
            num_hidden_layers=config.temporal_layers,
            max_position_embeddings=config.max_frame_positions,
            hidden_act="quick_gelu",
            # The authors' temporal blocks use their TF-style `until_module.LayerNorm` (eps 1e-12), not CLIP's 1e-5;
            # on frame features of small variance the two differ visibly.
            layer_norm_eps=TEMPORAL_LAYER_NORM_EPS,
            initializer_factor=config.initializer_factor,
        )
        # A derived config is not a registered sub-config, so transformers never hands it the model's attention
        # setting: `DRLModel` does (`follow_attn_implementation`), at construction and in `set_attn_implementation`.
        self.follow_attn_implementation(config._attn_implementation)
        self.frame_position_embeddings = nn.Embedding(config.max_frame_positions, width)
        self.layers = nn.ModuleList([CLIPEncoderLayer(self.layer_config) for _ in range(config.temporal_layers)])

    def follow_attn_implementation(self, implementation: str | None) -> None:
        """Use the model's attention implementation: "eager" as asked, SDPA for anything else (flash kernels take no
        additive key mask, which padded frames need; SDPA is exact here, on a few dozen frames)."""
        self.layer_config._attn_implementation = "eager" if implementation == "eager" else "sdpa"

    def forward(self, frame_features: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        num_frames = frame_features.shape[1]
        positions = self.frame_position_embeddings.weight[:num_frames]
        hidden = frame_features + positions.unsqueeze(0)
        key_bias = (1.0 - video_mask.to(hidden.dtype)) * _FRAME_MASK_BIAS
        attention_bias = key_bias[:, None, None, :].expand(-1, 1, num_frames, -1)
        for layer in self.layers:
            hidden = layer(hidden, attention_bias)
        return hidden + frame_features


def tag_clip_projection_stds(model: nn.Module, factor: float) -> None:
    """Record on every attention and MLP projection the std CLIP initialises it with (the scaled values of
    `CLIPPreTrainedModel._init_weights`), so that the projection alone can be initialised the same way."""
    for module in model.modules():
        if isinstance(module, CLIPAttention):
            depth = (2 * module.config.num_hidden_layers) ** -0.5
            for projection in (module.q_proj, module.k_proj, module.v_proj):
                projection._clip_init_std = module.embed_dim**-0.5 * depth * factor
            module.out_proj._clip_init_std = module.embed_dim**-0.5 * factor
        elif isinstance(module, CLIPMLP):
            width, depth = module.config.hidden_size, (2 * module.config.num_hidden_layers) ** -0.5
            module.fc1._clip_init_std = (2 * width) ** -0.5 * factor
            module.fc2._clip_init_std = width**-0.5 * depth * factor


def _tracing() -> bool:
    """Whether torch.compile or torch.export is tracing: data-dependent checks and shapes must be left out then."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting()


def _reads_values(tensor: torch.Tensor) -> bool:
    """Whether checks that read a mask's values run: on CPU tensors, outside tracing. On an accelerator reading them
    back stalls the device on every forward; there the processor and the data loader's collation have already
    refused empty captions and videos, once per batch."""
    return tensor.device.type == "cpu" and not _tracing()


def _features(embeds) -> torch.Tensor:
    """The features the interaction compares, from a `get_*_features` output or as a tensor already."""
    if isinstance(embeds, DRLTextFeaturesOutput):
        return embeds.text_embeds
    if isinstance(embeds, DRLVideoFeaturesOutput):
        return embeds.video_embeds
    return embeds


def _per_video(tensors, batch: int, frames: int):
    """Tower tensors over `batch * frames` frames, regrouped as `[batch, frames, ...]` (views, no copies)."""
    if tensors is None:
        return None
    if isinstance(tensors, torch.Tensor):
        return tensors.view(batch, frames, *tensors.shape[1:])
    # `output_hidden_states=[0, 2]` leaves None at the layers that were not captured.
    return tuple(None if tensor is None else tensor.view(batch, frames, *tensor.shape[1:]) for tensor in tensors)


class DRLPreTrainedModel(CLIPPreTrainedModel):
    """Weight initialisation and loading glue shared by DRL models."""

    config: DRLConfig
    config_class = DRLConfig
    base_model_prefix = "drl"
    main_input_name = "input_ids"
    input_modalities = ("text", "video")
    _no_split_modules = ["CLIPTextEmbeddings", "CLIPEncoderLayer", "CLIPVisionEmbeddings"]

    def _init_weights(self, module):
        """CLIP's initialisation for the towers; the authors' normal(0, initializer_range) for the DRL layers."""
        std = getattr(module, "_clip_init_std", None)
        if std is not None:
            # For custom code such as DRL, transformers' `_initialize_weights` passes over modules without parameters
            # of their own, so CLIPAttention / CLIPMLP, whose branch of CLIP's `_init_weights` scales their
            # projections, never reach it (in `DRLModel(config)` as in `from_pretrained`): each projection carries its
            # std (`tag_clip_projection_stds`) and is initialised here, on its own.
            init.normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
            return
        if isinstance(module, (CLIPAttention, CLIPMLP)):
            # Their projections are initialised one by one above: one draw each, the same whichever way a model is
            # built (transformers' own test seeds each init call).
            return
        super()._init_weights(module)
        if isinstance(module, DRLModel):
            factor = self.config.initializer_factor
            init.normal_(module.text_projection.weight, std=self.config.text_config.hidden_size**-0.5 * factor)
            init.normal_(module.visual_projection.weight, std=self.config.vision_config.hidden_size**-0.5 * factor)
            init.constant_(module.logit_scale, self.config.logit_scale_init_value)


class DRLModel(DRLPreTrainedModel):
    """
    DRL for text-video retrieval: CLIP text and vision towers, a temporal module over frame features, and the
    weighted token-wise interaction (WTI) between caption tokens and video frames, trained with a symmetric
    InfoNCE loss plus channel decorrelation regularisation (CDCR).
    """

    def __init__(self, config: DRLConfig):
        # Options changed after the config was built are checked here, naming the field, not deep in a forward pass.
        config.validate_drl_options()
        super().__init__(config)
        width = config.projection_dim
        # The towers are initialised with the rest of the model in `post_init` below (as `from_pretrained` initialises
        # weights a checkpoint lacks), not each on its own as they are built: one path, the same draws either way.
        with init.no_init_weights():
            self.text_model = CLIPTextModel._from_config(config.text_config)
            self.vision_model = CLIPVisionModel._from_config(config.vision_config)
        self.text_projection = nn.Linear(config.text_config.hidden_size, width, bias=False)
        self.visual_projection = nn.Linear(config.vision_config.hidden_size, width, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(config.logit_scale_init_value))
        self.temporal_transformer = DRLTemporalTransformer(config) if config.temporal_module == "seqTransf" else None
        if config.interaction == "wti":
            self.text_weight_head = build_weight_head(width, config.wti_arch)
            self.video_weight_head = build_weight_head(width, config.wti_arch)
        else:
            self.text_weight_head = None
            self.video_weight_head = None
        tag_clip_projection_stds(self, config.initializer_factor)
        # transformers initialises each sub-model (the CLIP towers) with that sub-model's own `_init_weights`, which
        # does not know the projection stds above (and, under a custom-code model, never sees CLIPAttention / CLIPMLP):
        # route the towers through this model's instead.
        self.text_model._init_weights = self._init_weights
        self.vision_model._init_weights = self._init_weights
        self.post_init()

    def set_attn_implementation(self, attn_implementation: str | dict, **kwargs) -> None:
        """transformers' `set_attn_implementation`, also applied to the temporal module's attention."""
        super().set_attn_implementation(attn_implementation, **kwargs)
        if self.temporal_transformer is not None:
            self.temporal_transformer.follow_attn_implementation(self.config._attn_implementation)

    # ------------------------------------------------------------------ input checks
    def _check_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [batch, tokens], got shape {tuple(input_ids.shape)}.")
        positions = self.config.text_config.max_position_embeddings
        if input_ids.shape[1] > positions:
            raise ValueError(
                f"input_ids has {input_ids.shape[1]} tokens but the text tower has {positions} positions; "
                f"tokenize with max_length={self.config.max_words} (the processor does)."
            )
        if attention_mask is None:
            return torch.ones_like(input_ids)
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask shape {tuple(attention_mask.shape)} does not match input_ids {tuple(input_ids.shape)}."
            )
        if _reads_values(attention_mask):  # a traced graph cannot branch on data; see `_reads_values`
            empty = (attention_mask.sum(dim=-1) == 0).nonzero().flatten().tolist()
            if empty:
                raise ValueError(f"Captions at batch positions {empty} have an all-zero attention_mask (no tokens).")
        return attention_mask

    def _check_video(self, pixel_values_videos: torch.Tensor, video_mask: torch.Tensor | None) -> torch.Tensor:
        size = self.config.vision_config.image_size
        if pixel_values_videos.dim() != 5 or pixel_values_videos.shape[2] != 3:
            raise ValueError(
                "pixel_values_videos must be [batch, frames, 3, height, width], "
                f"got {tuple(pixel_values_videos.shape)}."
            )
        if tuple(pixel_values_videos.shape[-2:]) != (size, size):
            raise ValueError(
                f"Frames are {tuple(pixel_values_videos.shape[-2:])} but the vision tower expects {size}x{size}; "
                "use the model's processor to resize and crop."
            )
        batch, frames = pixel_values_videos.shape[:2]
        if self.temporal_transformer is not None and frames > self.config.max_frame_positions:
            raise ValueError(
                f"{frames} frames per video exceed the {self.config.max_frame_positions} frame positions of the "
                "temporal module."
            )
        if video_mask is None:
            return torch.ones(batch, frames, dtype=torch.long, device=pixel_values_videos.device)
        self._check_video_mask(video_mask, (batch, frames))
        return video_mask

    @staticmethod
    def _check_video_mask(video_mask: torch.Tensor, shape: tuple[int, int]) -> None:
        if tuple(video_mask.shape) != tuple(shape):
            raise ValueError(f"video_mask shape {tuple(video_mask.shape)} does not match [batch, frames] {shape}.")
        if _reads_values(video_mask):
            empty = (video_mask.sum(dim=-1) == 0).nonzero().flatten().tolist()
            if empty:
                raise ValueError(f"Videos at batch positions {empty} have an all-zero video_mask (no frames).")

    # ------------------------------------------------------------------ encoders
    @can_return_tuple
    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> DRLTextFeaturesOutput | tuple:
        """
        Encodes captions. `text_embeds`: the projected token features `[batch, tokens, projection_dim]` (not
        normalised) that the interaction compares; `pooler_output`: the projected end-of-text feature
        `[batch, projection_dim]`; `last_hidden_state` (and `hidden_states` / `attentions` when asked): the text
        tower's, as `CLIPModel.get_text_features` returns them. `return_dict=False` gives a tuple.

        The text tower runs with its causal mask only, as in the authors' code: a token never attends to a later
        one, so padding after the end token cannot change the valid positions.
        """
        return self._encode_text(input_ids, self._check_text(input_ids, attention_mask), **kwargs)

    def _encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs) -> DRLTextFeaturesOutput:
        """`get_text_features` on inputs already checked (`forward` checks them once for both towers)."""
        tower = self.text_model(input_ids=input_ids, return_dict=True, **kwargs)
        tokens = self.text_projection(tower.last_hidden_state)
        return DRLTextFeaturesOutput(
            last_hidden_state=tower.last_hidden_state,
            pooler_output=end_of_text_features(tokens, attention_mask),
            hidden_states=tower.hidden_states,
            attentions=tower.attentions,
            text_embeds=tokens,
        )

    @can_return_tuple
    def get_video_features(
        self,
        pixel_values_videos: torch.Tensor,
        video_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> DRLVideoFeaturesOutput | tuple:
        """
        Encodes videos. `video_embeds`: the frame features `[batch, frames, projection_dim]` after the temporal
        module (not normalised): the projected CLS token of each frame, then `seqTransf` when configured;
        `pooler_output`: their mean over real frames `[batch, projection_dim]`; `last_hidden_state` (and
        `hidden_states` / `attentions` when asked): the vision tower's, grouped per video `[batch, frames, ...]`.
        `return_dict=False` gives a tuple.
        """
        return self._encode_video(pixel_values_videos, self._check_video(pixel_values_videos, video_mask), **kwargs)

    def _encode_video(
        self, pixel_values_videos: torch.Tensor, video_mask: torch.Tensor, **kwargs
    ) -> DRLVideoFeaturesOutput:
        """`get_video_features` on inputs already checked."""
        batch, frames = pixel_values_videos.shape[:2]
        tower = self.vision_model(pixel_values=pixel_values_videos.flatten(0, 1), return_dict=True, **kwargs)
        features = self.visual_projection(tower.pooler_output).view(batch, frames, -1)
        if self.temporal_transformer is not None:
            features = self.temporal_transformer(features, video_mask)
        weights = video_mask.to(features.dtype).unsqueeze(-1)
        return DRLVideoFeaturesOutput(
            last_hidden_state=_per_video(tower.last_hidden_state, batch, frames),
            pooler_output=(features * weights).sum(dim=1) / weights.sum(dim=1),
            hidden_states=_per_video(tower.hidden_states, batch, frames),
            attentions=_per_video(tower.attentions, batch, frames),
            video_embeds=features,
        )

    # ------------------------------------------------------------------ interaction
    def token_weights(self, text_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Per-token weights `[batch, tokens]`: the WTI head's masked softmax, or uniform over valid tokens."""
        return position_weights(text_embeds, attention_mask, self.text_weight_head)

    def frame_weights(self, video_embeds: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        """Per-frame weights `[batch, frames]`: the WTI head's masked softmax, or uniform over valid frames."""
        return position_weights(video_embeds, video_mask, self.video_weight_head)

    def similarity(
        self,
        text_embeds: DRLTextFeaturesOutput | torch.Tensor,
        attention_mask: torch.Tensor | None,
        video_embeds: DRLVideoFeaturesOutput | torch.Tensor,
        video_mask: torch.Tensor | None,
    ) -> torch.FloatTensor:
        """
        Unscaled similarity `[num_texts, num_videos]` of features from `get_text_features` / `get_video_features`.

        Scoring runs in blocks of bounded size, so memory stays bounded for any number of texts and videos, and skips
        padded tokens and frames (`interaction_drl.text_video_similarity`, whose `chunk_bytes` and `compute_dtype`
        tune the blocks); a traced graph (torch.compile, torch.export) scores densely.

        Args:
            text_embeds (`DRLTextFeaturesOutput` or `torch.Tensor` of shape `(num_texts, tokens, projection_dim)`):
                The output of `get_text_features`, or its `text_embeds`.
            attention_mask (`torch.Tensor` of shape `(num_texts, tokens)`, *optional*):
                1 on valid tokens. Defaults to all ones.
            video_embeds (`DRLVideoFeaturesOutput` or `torch.Tensor` of shape `(num_videos, frames, projection_dim)`):
                The output of `get_video_features`, or its `video_embeds`.
            video_mask (`torch.Tensor` of shape `(num_videos, frames)`, *optional*):
                1 on real frames. Defaults to all ones.
        """
        text_embeds, video_embeds = _features(text_embeds), _features(video_embeds)
        if attention_mask is None:
            attention_mask = torch.ones(text_embeds.shape[:2], dtype=torch.long, device=text_embeds.device)
        if video_mask is None:
            video_mask = torch.ones(video_embeds.shape[:2], dtype=torch.long, device=video_embeds.device)
        self._check_video_mask(video_mask, tuple(video_embeds.shape[:2]))
        if attention_mask.shape != text_embeds.shape[:2]:
            raise ValueError("attention_mask must be [texts, tokens] with at least one valid token per text.")
        if _reads_values(attention_mask) and (attention_mask.sum(-1) == 0).any():
            raise ValueError("attention_mask must be [texts, tokens] with at least one valid token per text.")
        if text_embeds.shape[-1] != video_embeds.shape[-1]:
            raise ValueError(
                f"Text features have width {text_embeds.shape[-1]} but video features {video_embeds.shape[-1]}."
            )
        return self._similarity(text_embeds, attention_mask, video_embeds, video_mask)

    def _similarity(
        self,
        text_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        video_embeds: torch.Tensor,
        video_mask: torch.Tensor,
    ) -> torch.Tensor:
        """`similarity` of inputs already checked (`forward` checks them once, before the towers)."""
        return text_video_similarity(
            text_embeds,
            attention_mask,
            video_embeds,
            video_mask,
            self.config.interaction,
            self.text_weight_head,
            self.video_weight_head,
            dense=_tracing(),  # the blocked scorer's data-dependent blocks cannot be traced
        )

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        pixel_values_videos: torch.FloatTensor | None = None,
        video_mask: torch.Tensor | None = None,
        return_loss: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> DRLOutput | tuple:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(text_batch_size, tokens)`):
                Caption token ids in the authors' layout (start token, BPE tokens, end token, padding).
            attention_mask (`torch.Tensor` of shape `(text_batch_size, tokens)`, *optional*):
                1 from the start token to the end token, 0 on padding. Defaults to all ones.
            pixel_values_videos (`torch.FloatTensor` of shape `(video_batch_size, frames, 3, height, width)`):
                Normalised frames, zeros on padded frames.
            video_mask (`torch.Tensor` of shape `(video_batch_size, frames)`, *optional*):
                1 for real frames. Defaults to all ones.
            return_loss (`bool`, *optional*):
                Compute the training loss; text `i` must describe video `i`. In training mode under torch.distributed
                the loss runs over every process's pairs (`loss_drl.drl_loss`); the logits stay this process's.
            kwargs (`TransformersKwargs`):
                `output_hidden_states` / `output_attentions` return the towers' hidden states / attention weights in
                `text_model_output` and `video_model_output` (attention weights need `attn_implementation="eager"`);
                `return_dict=False` returns a tuple of the output's fields.

        Example:

        ```python
        >>> from transformers import AutoModel, AutoProcessor

        >>> model = AutoModel.from_pretrained("path/to/drl", trust_remote_code=True)
        >>> processor = AutoProcessor.from_pretrained("path/to/drl", trust_remote_code=True)
        >>> inputs = processor(text=["a dog runs on the beach"], videos=["beach.mp4"], return_tensors="pt")
        >>> model(**inputs).logits_per_text
        ```
        """
        if pixel_values_videos is None:
            raise ValueError("pixel_values_videos is required; use get_text_features to encode text alone.")
        attention_mask = self._check_text(input_ids, attention_mask)
        video_mask = self._check_video(pixel_values_videos, video_mask)
        text_output = self._encode_text(input_ids, attention_mask, **kwargs)
        video_output = self._encode_video(pixel_values_videos, video_mask, **kwargs)
        text_embeds, video_embeds = text_output.text_embeds, video_output.video_embeds

        loss = sim_loss = cdcr_loss = None
        if return_loss:
            loss, sim_loss, cdcr_loss, logits_per_text = drl_loss(
                text_embeds,
                attention_mask,
                video_embeds,
                video_mask,
                self.logit_scale,
                self.config,
                self.text_weight_head,
                self.video_weight_head,
                gather=self.training,
            )
        else:
            logits_per_text = self.logit_scale.exp() * self._similarity(
                text_embeds, attention_mask, video_embeds, video_mask
            )
        return DRLOutput(
            loss=loss,
            sim_loss=sim_loss,
            cdcr_loss=cdcr_loss,
            logits_per_text=logits_per_text,
            logits_per_video=logits_per_text.T,
            text_embeds=text_embeds,
            video_embeds=video_embeds,
            text_model_output=text_output,
            video_model_output=video_output,
        )

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs):
        """transformers' `save_pretrained`; the weights file gets the mode of any other new file."""
        saved = super().save_pretrained(save_directory, *args, **kwargs)
        # safetensors writes the weights through a temporary file created 0600, so a model folder shared with other
        # users would hold weights only its writer can read: give them the mode every other file there gets.
        for weights in Path(save_directory).glob("model*.safetensors"):
            os.chmod(weights, new_file_mode())
        return saved

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_clip(cls, name_or_path: str | os.PathLike, **config_overrides) -> "DRLModel":
        """
        A DRL model initialised from a pretrained transformers CLIP (Hub id or local folder).

        The towers, projections and logit scale come from CLIP; the temporal module is initialised as the
        authors do, its position table from the text positional embedding and its blocks from the first text
        blocks; the WTI heads get a fresh normal initialisation. `config_overrides` are `DRLConfig` fields.
        """
        clip = CLIPModel.from_pretrained(name_or_path)
        config = DRLConfig(
            **fit_lengths_to_text_positions(
                {
                    "text_config": clip.config.text_config.to_dict(),
                    "vision_config": clip.config.vision_config.to_dict(),
                    "projection_dim": clip.config.projection_dim,
                    "logit_scale_init_value": float(clip.logit_scale.detach()),
                    **config_overrides,
                }
            )
        )
        model = cls(config)
        missing, unexpected = model.load_state_dict(clip.state_dict(), strict=False)
        not_loaded = [key for key in missing if not key.startswith(DRL_MODULE_PREFIXES)]
        if not_loaded or unexpected:
            raise ValueError(
                f"CLIP checkpoint {name_or_path!s} does not fit DRLModel: "
                f"missing {not_loaded}, unexpected {unexpected}."
            )
        model.init_temporal_from_text()
        return model

    @torch.no_grad()
    def init_temporal_from_text(self) -> None:
        """The authors' initialisation of `seqTransf`: position table and blocks copied from the text tower."""
        if self.temporal_transformer is None:
            return
        text = self.text_model
        if text.config.hidden_size != self.config.projection_dim:
            logger.warning(
                "Text width %d differs from projection_dim %d: the temporal module keeps its random initialisation.",
                text.config.hidden_size,
                self.config.projection_dim,
            )
            return
        text_blocks = text.encoder.layers
        temporal_blocks = self.temporal_transformer.layers
        if len(text_blocks) and len(temporal_blocks):
            text_shapes = {k: v.shape for k, v in text_blocks[0].state_dict().items()}
            if text_shapes != {k: v.shape for k, v in temporal_blocks[0].state_dict().items()}:
                logger.warning(
                    "Text blocks (MLP width %d) differ in shape from the temporal blocks (4 x projection_dim): the "
                    "temporal blocks keep their random initialisation.",
                    text.config.intermediate_size,
                )
                temporal_blocks = []
        table = self.temporal_transformer.frame_position_embeddings.weight
        rows = min(table.shape[0], text.embeddings.position_embedding.weight.shape[0])
        table[:rows].copy_(text.embeddings.position_embedding.weight[:rows])
        for temporal_layer, text_layer in zip(temporal_blocks, text_blocks, strict=False):
            temporal_layer.load_state_dict(text_layer.state_dict())


__all__ = [
    "DRLModel",
    "DRLOutput",
    "DRLPreTrainedModel",
    "DRLTemporalTransformer",
    "DRLTextFeaturesOutput",
    "DRLVideoFeaturesOutput",
]
