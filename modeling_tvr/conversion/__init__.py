"""Bringing the authors' files into this package's layout: their DRL / CLIP4Clip / OpenAI CLIP state dicts
(`state_dict`, and `from_official_state_dict` to build a `DRLModel` from one), the checkpoint files that hold them, read
without running pickled code (`checkpoint_files`), and a functional forward written straight from their layout to check
converted weights against (`reference`).

Used by the training set-up (an OpenAI `.pt` file as `--clip`) and `hub_scripts/convert_official_checkpoint.py`; it
never travels with a saved model.
"""

from .state_dict import OfficialStateDictError, from_official_state_dict

__all__ = ["OfficialStateDictError", "from_official_state_dict"]
