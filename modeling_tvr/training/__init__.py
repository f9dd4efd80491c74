"""Training and evaluating DRL, which `train.py` runs, and what the Hub scripts share with it. None of it travels with
a saved model.

The run, in the order it happens: its options (`arguments`, filled from `presets`, parsed by `command_line`), the
Accelerator (`launch`), the data (`data`; `cached_frames` for `--frame_cache`), the model and processor
(`model_setup`, with `bpe_vocabulary` for a CLIP trained from scratch), the batches (`loader`), the loop (`loop`,
with the authors' optimiser and schedule in `optimization`, resumable checkpoints in `checkpoints` and the stop of a
diverged run in `finite`), evaluation (`evaluation`, `metrics`, the recall curve of `plots`) and what the run leaves
behind (`outputs`, the card of `model_card`, rendered from the `model_card_template.md` shipped beside it); `run`
puts them together.
"""
