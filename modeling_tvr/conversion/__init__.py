"""Bringing the authors' files into this package's layout: their DRL / CLIP4Clip / OpenAI CLIP state dicts
(`state_dict`), the checkpoint files that hold them, read without running pickled code (`checkpoint_files`), and a
functional forward written straight from their layout to check converted weights against (`reference`).

Used by `train.py --init` and `hub_scripts/convert_official_checkpoint.py`; it never travels with a saved model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .state_dict import OfficialStateDictError

if TYPE_CHECKING:
    import torch

    from ..modeling_drl import DRLModel

__all__ = ["OfficialStateDictError", "from_official_state_dict"]


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
    # Through the package, so that the DRL classes are registered with transformers (a saved model carries auto_map).
    from .. import DRLModel
    from .state_dict import model_from_official_state_dict

    return model_from_official_state_dict(DRLModel, state_dict, **config_overrides)
