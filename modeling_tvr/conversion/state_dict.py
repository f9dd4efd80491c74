"""Conversion between the authors' (OpenAI CLIP / CLIP4Clip / DRL) state-dict layout and this package's layout.

The authors' DRL checkpoints hold OpenAI CLIP under `clip.*`, the temporal module as
`frame_position_embeddings.weight` + `transformerClip.resblocks.N.*`, and the WTI heads as `text_weight_fc.*` /
`video_weight_fc.*`, sometimes behind a `module.` prefix (DataParallel). A bare OpenAI CLIP state dict (the `.pt`
files of OpenAI's repository) has the same `clip.*` part without the prefix.
"""

import re

import torch

from .. import register_auto_classes
from ..configuration_drl import DRLConfig
from ..modeling_drl import DRL_MODULE_PREFIXES, DRLModel, fit_lengths_to_text_positions

# Entries of OpenAI's JIT archives that describe the model rather than hold weights.
OPENAI_METADATA_KEYS = ("input_resolution", "context_length", "vocab_size")

_BLOCK_RENAMES = {
    "attn.out_proj.weight": "self_attn.out_proj.weight",
    "attn.out_proj.bias": "self_attn.out_proj.bias",
    "ln_1.weight": "layer_norm1.weight",
    "ln_1.bias": "layer_norm1.bias",
    "ln_2.weight": "layer_norm2.weight",
    "ln_2.bias": "layer_norm2.bias",
    "mlp.c_fc.weight": "mlp.fc1.weight",
    "mlp.c_fc.bias": "mlp.fc1.bias",
    "mlp.c_proj.weight": "mlp.fc2.weight",
    "mlp.c_proj.bias": "mlp.fc2.bias",
}

_PLAIN_RENAMES = {
    "clip.token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "clip.positional_embedding": "text_model.embeddings.position_embedding.weight",
    "clip.ln_final.weight": "text_model.final_layer_norm.weight",
    "clip.ln_final.bias": "text_model.final_layer_norm.bias",
    "clip.visual.class_embedding": "vision_model.embeddings.class_embedding",
    "clip.visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
    "clip.visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "clip.visual.ln_pre.weight": "vision_model.pre_layrnorm.weight",
    "clip.visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
    "clip.visual.ln_post.weight": "vision_model.post_layernorm.weight",
    "clip.visual.ln_post.bias": "vision_model.post_layernorm.bias",
    "clip.logit_scale": "logit_scale",
    "frame_position_embeddings.weight": "temporal_transformer.frame_position_embeddings.weight",
}

# Projections are stored as `[in, out]` and used as `x @ proj`; an `nn.Linear` weight is `[out, in]`.
_TRANSPOSED_RENAMES = {"clip.text_projection": "text_projection.weight", "clip.visual.proj": "visual_projection.weight"}

_BLOCK_PREFIXES = {
    "clip.transformer.resblocks.": "text_model.encoder.layers.",
    "clip.visual.transformer.resblocks.": "vision_model.encoder.layers.",
    "transformerClip.resblocks.": "temporal_transformer.layers.",
}

_HEAD_PREFIXES = {"text_weight_fc.": "text_weight_head.", "video_weight_fc.": "video_weight_head."}


class OfficialStateDictError(ValueError):
    """The state dict does not fit the authors' layout or the requested configuration."""


def normalize_official_keys(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], bool]:
    """
    Strips a DataParallel `module.` prefix, adds `clip.` to a bare OpenAI CLIP dict and drops JIT metadata.

    Returns the tensors and whether the dict is a DRL / CLIP4Clip checkpoint (CLIP under `clip.`) rather than a
    bare OpenAI CLIP: a DRL checkpoint trained without temporal module and WTI heads holds only `clip.*` keys,
    so the prefix, not the presence of DRL modules, tells the two apart.
    """
    tensors = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        if key in OPENAI_METADATA_KEYS:
            continue
        tensors[key] = value
    if "clip.token_embedding.weight" not in tensors and "token_embedding.weight" in tensors:
        return {f"clip.{key}": value for key, value in tensors.items()}, False
    return tensors, True


def _count_blocks(state_dict: dict[str, torch.Tensor], prefix: str) -> int:
    indices = {int(m.group(1)) for key in state_dict if (m := re.match(re.escape(prefix) + r"(\d+)\.", key))}
    return max(indices) + 1 if indices else 0


def infer_head_arch(state_dict: dict[str, torch.Tensor], prefix: str) -> int | None:
    """WTI head depth from its keys: `weight` alone (1), indices 0, 2 (2) or 0, 2, 4 (3); None when absent."""
    if f"{prefix}weight" in state_dict:
        return 1
    linear_indices = {int(m.group(1)) for key in state_dict if (m := re.match(re.escape(prefix) + r"(\d+)\.", key))}
    if not linear_indices:
        return None
    return len(linear_indices)


def infer_config_kwargs(state_dict: dict[str, torch.Tensor]) -> dict:
    """
    `DRLConfig` keyword arguments whose values are fixed by the tensors of a normalised official state dict
    (sizes of both towers, projection width, temporal module, WTI head depth).
    """
    required = ("clip.token_embedding.weight", "clip.visual.conv1.weight", "clip.text_projection", "clip.visual.proj")
    missing = [key for key in required if key not in state_dict]
    if missing:
        hint = ""
        if "clip.visual.layer1.0.conv1.weight" in state_dict:
            hint = " This looks like a ResNet CLIP; only ViT backbones have a transformers CLIP tower."
        raise OfficialStateDictError(
            f"Not an OpenAI-CLIP / DRL state dict: missing {missing} (after stripping `module.`).{hint}"
        )
    text_width = state_dict["clip.ln_final.weight"].shape[0]
    vision_width, _, patch_size, _ = state_dict["clip.visual.conv1.weight"].shape
    grid = round((state_dict["clip.visual.positional_embedding"].shape[0] - 1) ** 0.5)
    vocab_size = state_dict["clip.token_embedding.weight"].shape[0]
    text_config = {
        "vocab_size": vocab_size,
        "hidden_size": text_width,
        "intermediate_size": state_dict["clip.transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
        "num_hidden_layers": _count_blocks(state_dict, "clip.transformer.resblocks."),
        "num_attention_heads": max(1, text_width // 64),
        "max_position_embeddings": state_dict["clip.positional_embedding"].shape[0],
        "projection_dim": state_dict["clip.text_projection"].shape[1],
        # OpenAI's layout: start token vocab-2, end token vocab-1 (the highest id), padding 0.
        "bos_token_id": vocab_size - 2,
        "eos_token_id": vocab_size - 1,
        "pad_token_id": 0,
    }
    vision_config = {
        "hidden_size": vision_width,
        "intermediate_size": state_dict["clip.visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
        "num_hidden_layers": _count_blocks(state_dict, "clip.visual.transformer.resblocks."),
        "num_attention_heads": max(1, vision_width // 64),
        "image_size": patch_size * grid,
        "patch_size": patch_size,
        "projection_dim": state_dict["clip.visual.proj"].shape[1],
    }
    kwargs = {
        "text_config": text_config,
        "vision_config": vision_config,
        "projection_dim": state_dict["clip.text_projection"].shape[1],
    }
    if "frame_position_embeddings.weight" in state_dict:
        kwargs["temporal_module"] = "seqTransf"
        kwargs["temporal_layers"] = _count_blocks(state_dict, "transformerClip.resblocks.")
        kwargs["max_frame_positions"] = state_dict["frame_position_embeddings.weight"].shape[0]
    arch = infer_head_arch(state_dict, "text_weight_fc.")
    if arch is not None:
        kwargs["interaction"] = "wti"
        kwargs["wti_arch"] = arch
    return kwargs


def _rename_block_key(rest: str) -> list[tuple[str, int | None]]:
    """Target names within a residual block; the packed q, k, v projection splits into three."""
    if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
        kind = rest.rsplit("_", 1)[1]
        return [(f"self_attn.{name}_proj.{kind}", i) for i, name in enumerate(("q", "k", "v"))]
    if rest in _BLOCK_RENAMES:
        return [(_BLOCK_RENAMES[rest], None)]
    return []


def official_to_hf_state_dict(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """
    Renames a normalised official state dict to this package's keys.

    Returns the converted tensors and the official keys that have no counterpart (unexpected keys).
    """
    converted: dict[str, torch.Tensor] = {}
    unused: list[str] = []
    for key, tensor in state_dict.items():
        if key in _PLAIN_RENAMES:
            converted[_PLAIN_RENAMES[key]] = tensor
            continue
        if key in _TRANSPOSED_RENAMES:
            converted[_TRANSPOSED_RENAMES[key]] = tensor.T.contiguous()
            continue
        head = next((p for p in _HEAD_PREFIXES if key.startswith(p)), None)
        if head is not None:
            converted[_HEAD_PREFIXES[head] + key[len(head) :]] = tensor
            continue
        block = next((p for p in _BLOCK_PREFIXES if key.startswith(p)), None)
        if block is not None:
            index, rest = key[len(block) :].split(".", 1)
            targets = _rename_block_key(rest)
            for name, part in targets:
                value = tensor if part is None else tensor.chunk(3, dim=0)[part].contiguous()
                converted[f"{_BLOCK_PREFIXES[block]}{index}.{name}"] = value
            if targets:
                continue
        unused.append(key)
    return converted, unused


def hf_to_official_key(hf_key: str) -> str:
    """The official name of a converted key (for error messages); q/k/v map to the packed projection."""
    for official, hf in {**_PLAIN_RENAMES, **_TRANSPOSED_RENAMES}.items():
        if hf == hf_key:
            return official
    for official, hf in {**_HEAD_PREFIXES, **_BLOCK_PREFIXES}.items():
        if hf_key.startswith(hf):
            rest = hf_key[len(hf) :]
            if hf in _BLOCK_PREFIXES.values():
                index, name = rest.split(".", 1)
                if name.startswith("self_attn.") and name.split(".")[1] in ("q_proj", "k_proj", "v_proj"):
                    return f"{official}{index}.attn.in_proj_{name.rsplit('.', 1)[1]}"
                inverse = {v: k for k, v in _BLOCK_RENAMES.items()}
                return f"{official}{index}.{inverse.get(name, name)}"
            return official + rest
    return hf_key


def hf_to_official_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """
    The inverse of `official_to_hf_state_dict`: this package's tensors in the authors' DRL layout (`clip.*`, ...),
    e.g. to evaluate a model trained here with the authors' code. q, k and v are packed back together.
    """
    official: dict[str, torch.Tensor] = {}
    packed: dict[str, list[torch.Tensor | None]] = {}
    for key, tensor in state_dict.items():
        name = hf_to_official_key(key)
        if name == key and key not in _PLAIN_RENAMES.values():
            continue  # buffers such as position_ids have no official counterpart
        if name.endswith(("attn.in_proj_weight", "attn.in_proj_bias")):
            part = ("q_proj", "k_proj", "v_proj").index(key.split(".")[-2])
            packed.setdefault(name, [None, None, None])[part] = tensor
        elif key in _TRANSPOSED_RENAMES.values():
            official[name] = tensor.T.contiguous()
        else:
            official[name] = tensor
    for name, parts in packed.items():
        official[name] = torch.cat(parts, dim=0)
    return official


def from_official_state_dict(state_dict: dict[str, torch.Tensor], **config_overrides) -> DRLModel:
    """
    A `DRLModel` from a state dict in the authors' layout.

    Args:
        state_dict (`dict[str, torch.Tensor]`):
            DRL / CLIP4Clip keys (`clip.*`, `frame_position_embeddings.weight`, `transformerClip.resblocks.N.*`,
            `text_weight_fc.*`, `video_weight_fc.*`, optionally behind `module.`), or a bare OpenAI CLIP state dict.
        config_overrides:
            `DRLConfig` fields the tensors do not fix (`interaction` when there are no WTI heads, CDCR settings,
            ...). Sizes always come from the tensors. A bare OpenAI CLIP dict initialises the DRL modules as
            `DRLModel.from_clip` does.

    Raises:
        `OfficialStateDictError`: naming missing, unexpected or wrongly shaped keys.
    """
    register_auto_classes()  # so that the model saves with the `auto_map` of its code, as any model of the package
    tensors, is_drl_checkpoint = normalize_official_keys(state_dict)
    inferred = infer_config_kwargs(tensors)
    if is_drl_checkpoint and "interaction" not in inferred and "interaction" not in config_overrides:
        raise OfficialStateDictError(
            "The state dict has no WTI heads (text_weight_fc / video_weight_fc), so it was trained with "
            "interaction 'ti' or 'dp', which the weights cannot tell apart: pass interaction='ti' or 'dp'."
        )
    if is_drl_checkpoint and "temporal_module" not in inferred:
        inferred["temporal_module"] = "none"
    for fixed in ("text_config", "vision_config", "projection_dim"):
        if fixed in config_overrides:
            raise OfficialStateDictError(f"{fixed} is fixed by the state dict's tensors and cannot be overridden.")
    config = DRLConfig(**fit_lengths_to_text_positions({**inferred, **config_overrides}))
    model = DRLModel(config)
    converted, unexpected = official_to_hf_state_dict(tensors)
    expected = model.state_dict()
    unexpected += [hf_to_official_key(key) for key in converted if key not in expected]
    converted = {key: value for key, value in converted.items() if key in expected}
    missing = [key for key in expected if key not in converted]
    if not is_drl_checkpoint:  # bare CLIP: the DRL modules are new
        missing = [key for key in missing if not key.startswith(DRL_MODULE_PREFIXES)]
    wrong_shape = [
        f"{hf_to_official_key(key)} {tuple(value.shape)} vs {tuple(expected[key].shape)}"
        for key, value in converted.items()
        if value.shape != expected[key].shape
    ]
    if missing or unexpected or wrong_shape:
        raise OfficialStateDictError(
            "The state dict does not fit the DRL configuration "
            f"(interaction={config.interaction!r}, temporal_module={config.temporal_module!r}, "
            f"wti_arch={config.wti_arch}): missing {sorted({hf_to_official_key(k) for k in missing})}, "
            f"unexpected {sorted(unexpected)}, wrong shapes {wrong_shape}."
        )
    model.load_state_dict(converted, strict=False)
    if not is_drl_checkpoint:
        model.init_temporal_from_text()
    return model
