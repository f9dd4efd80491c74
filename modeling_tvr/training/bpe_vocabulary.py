"""A small CLIP-format BPE vocabulary learned from captions, for models trained from scratch without the Hub.

The merges are learned with the `tokenizers` library over OpenAI's word split and byte alphabet, written in the
format of OpenAI's `bpe_simple_vocab_16e6.txt.gz`, and loaded with `clip_tokenizer_from_bpe`, so the result is
an ordinary `DRLCLIPTokenizer` (same layout, special tokens and cleaning as the real one).
"""

import gzip
import json
import os
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from ..tokenization_drl import DRLCLIPTokenizer, bytes_to_unicode, clip_tokenizer_from_bpe, openai_words


def learn_clip_merges(texts: Iterable[str], num_merges: int = 2000) -> list[str]:
    """At most `num_merges` BPE merges (`"a b"` lines) over OpenAI's cleaned words with a `</w>` word end."""
    alphabet = list(bytes_to_unicode().values())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    model = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    model.pre_tokenizer = byte_level
    trainer = trainers.BpeTrainer(
        vocab_size=2 * len(alphabet) + num_merges,
        initial_alphabet=alphabet,
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    # One training "sentence" per OpenAI word, so merges never cross the word split that the tokenizer applies.
    words = (word for text in texts for word in openai_words(text, special_tokens=False))
    model.train_from_iterator(words, trainer=trainer)
    merges = json.loads(model.to_str())["model"]["merges"]  # the library exposes learned merges only in its JSON
    return [" ".join(pair) if isinstance(pair, list) else pair for pair in merges][:num_merges]


def train_clip_bpe(texts: Iterable[str], path: str | os.PathLike, num_merges: int = 2000) -> DRLCLIPTokenizer:
    """Learns merges from `texts`, writes them to `path` in OpenAI's gzip format, and returns the tokenizer."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["#version: 0.2", *learn_clip_merges(texts, num_merges)]
    path.write_bytes(gzip.compress("\n".join(lines).encode("utf-8"), mtime=0))
    return clip_tokenizer_from_bpe(path)
