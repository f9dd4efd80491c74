"""What `train.py` and the Hub scripts use around the model: the authors' optimiser and schedule (`optimization`),
retrieval metrics (`metrics`), the recall curve (`plots`), resumable training checkpoints (`checkpoints`), the stop
of a diverged run and the check that no non-finite weight is saved or uploaded (`finite`), a CLIP-format
vocabulary learned from captions for models trained from scratch (`bpe_vocabulary`), and the model card
(`model_card`, rendered from the `model_card_template.md` shipped beside it). None of it travels with a saved model.
"""
