"""Bringing the authors' files into this package's layout: their DRL / CLIP4Clip / OpenAI CLIP state dicts
(`state_dict`), the checkpoint files that hold them, read without running pickled code (`checkpoint_files`), and a
functional forward written straight from their layout to check converted weights against (`reference`).

Used by `DRLModel.from_official_state_dict` and `hub_scripts/convert_official_checkpoint.py`; it never travels with a
saved model.
"""
