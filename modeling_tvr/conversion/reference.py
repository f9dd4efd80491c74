"""A functional forward written straight from the authors' layout, to check converted weights against.

It follows OpenAI's `model.py` and CLIP4Clip / DRL's temporal module literally (packed q, k, v through
`F.multi_head_attention_forward`, projections as `x @ proj`, QuickGELU, heads = width / 64) and reads the official
state dict itself, so it shares no code with `DRLModel` or the key mapping in `state_dict.py`.
"""

import torch
import torch.nn.functional as F  # noqa: N812 - the usual torch alias

_LAYER_NORM_EPS = 1e-5
# The temporal module's blocks (`module_cross.py`) use the authors' TF-style `until_module.LayerNorm`, eps 1e-12.
_TEMPORAL_LAYER_NORM_EPS = 1e-12


def _residual_block(
    x: torch.Tensor, sd: dict, prefix: str, attn_mask: torch.Tensor | None, eps: float = _LAYER_NORM_EPS
) -> torch.Tensor:
    """OpenAI's `ResidualAttentionBlock` on `x` `[length, batch, width]`, its layer norms with `eps`."""
    width = x.shape[-1]
    y = F.layer_norm(x, (width,), sd[f"{prefix}ln_1.weight"], sd[f"{prefix}ln_1.bias"], eps)
    y = F.multi_head_attention_forward(
        y,
        y,
        y,
        width,
        max(1, width // 64),
        sd[f"{prefix}attn.in_proj_weight"],
        sd[f"{prefix}attn.in_proj_bias"],
        None,
        None,
        False,
        0.0,
        sd[f"{prefix}attn.out_proj.weight"],
        sd[f"{prefix}attn.out_proj.bias"],
        training=False,
        need_weights=False,
        attn_mask=attn_mask,
    )[0]
    x = x + y
    y = F.layer_norm(x, (width,), sd[f"{prefix}ln_2.weight"], sd[f"{prefix}ln_2.bias"], eps)
    y = F.linear(y, sd[f"{prefix}mlp.c_fc.weight"], sd[f"{prefix}mlp.c_fc.bias"])
    y = y * torch.sigmoid(1.702 * y)
    return x + F.linear(y, sd[f"{prefix}mlp.c_proj.weight"], sd[f"{prefix}mlp.c_proj.bias"])


def _blocks(
    x: torch.Tensor, sd: dict, prefix: str, attn_mask: torch.Tensor | None, eps: float = _LAYER_NORM_EPS
) -> torch.Tensor:
    index = 0
    while f"{prefix}{index}.ln_1.weight" in sd:
        x = _residual_block(x, sd, f"{prefix}{index}.", attn_mask, eps)
        index += 1
    return x


def reference_text_features(sd: dict[str, torch.Tensor], input_ids: torch.Tensor) -> torch.Tensor:
    """Token features `[batch, tokens, embed]`: causal text transformer, `ln_final` and `text_projection` everywhere."""
    length = input_ids.shape[1]
    x = sd["clip.token_embedding.weight"][input_ids] + sd["clip.positional_embedding"][:length]
    causal = torch.full((length, length), float("-inf")).triu_(1)
    x = _blocks(x.permute(1, 0, 2), sd, "clip.transformer.resblocks.", causal).permute(1, 0, 2)
    width = x.shape[-1]
    x = F.layer_norm(x, (width,), sd["clip.ln_final.weight"], sd["clip.ln_final.bias"], _LAYER_NORM_EPS)
    return x @ sd["clip.text_projection"]


def reference_frame_features(sd: dict[str, torch.Tensor], pixel_values: torch.Tensor) -> torch.Tensor:
    """Per-frame features `[batch, frames, embed]` of `pixel_values` `[batch, frames, 3, H, W]` (ViT, CLS token)."""
    batch, frames = pixel_values.shape[:2]
    conv = sd["clip.visual.conv1.weight"]
    x = F.conv2d(pixel_values.flatten(0, 1), conv, stride=conv.shape[-1])
    x = x.flatten(2).permute(0, 2, 1)
    cls = sd["clip.visual.class_embedding"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + sd["clip.visual.positional_embedding"]
    width = x.shape[-1]
    x = F.layer_norm(x, (width,), sd["clip.visual.ln_pre.weight"], sd["clip.visual.ln_pre.bias"], _LAYER_NORM_EPS)
    x = _blocks(x.permute(1, 0, 2), sd, "clip.visual.transformer.resblocks.", None).permute(1, 0, 2)
    x = F.layer_norm(
        x[:, 0], (width,), sd["clip.visual.ln_post.weight"], sd["clip.visual.ln_post.bias"], _LAYER_NORM_EPS
    )
    return (x @ sd["clip.visual.proj"]).view(batch, frames, -1)


def reference_temporal(sd: dict[str, torch.Tensor], frames: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
    """The `seqTransf` module: frame positions, `transformerClip` with padded frames masked by -1e6, residual."""
    num_frames = frames.shape[1]
    x = frames + sd["frame_position_embeddings.weight"][:num_frames]
    heads = max(1, frames.shape[-1] // 64)
    mask = (1.0 - video_mask.to(frames.dtype)).unsqueeze(1) * -1000000.0
    mask = mask.expand(-1, num_frames, -1).repeat_interleave(heads, dim=0)
    x = _blocks(x.permute(1, 0, 2), sd, "transformerClip.resblocks.", mask, _TEMPORAL_LAYER_NORM_EPS)
    x = x.permute(1, 0, 2)
    return x + frames


def reference_weight_logits(sd: dict[str, torch.Tensor], prefix: str, features: torch.Tensor) -> torch.Tensor:
    """A WTI head (`text_weight_fc.` / `video_weight_fc.`) as the authors' `nn.Sequential`: logits `[batch, n]`."""
    if f"{prefix}weight" in sd:
        return F.linear(features, sd[f"{prefix}weight"], sd[f"{prefix}bias"]).squeeze(-1)
    indices = sorted({int(key[len(prefix) :].split(".")[0]) for key in sd if key.startswith(prefix)})
    x = features
    for position, index in enumerate(indices):
        x = F.linear(x, sd[f"{prefix}{index}.weight"], sd[f"{prefix}{index}.bias"])
        if position < len(indices) - 1:
            x = torch.relu(x)
    return x.squeeze(-1)


__all__ = [
    "reference_frame_features",
    "reference_temporal",
    "reference_text_features",
    "reference_weight_logits",
]
