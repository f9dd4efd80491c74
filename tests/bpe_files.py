"""OpenAI-format BPE merges files (`bpe_simple_vocab_16e6.txt.gz` layout) of any vocabulary size, for the tests of
the converters and tokenizers built from such a file."""

import gzip
import itertools
import string
from pathlib import Path


def write_bpe(path: Path, vocab_size: int) -> Path:
    """An OpenAI-format merges file whose vocabulary has `vocab_size` tokens (two-letter merges)."""
    pairs = itertools.product(string.ascii_lowercase, repeat=2)
    merges = [f"{a} {b}" for a, b in itertools.islice(pairs, vocab_size - 514)]
    path.write_bytes(gzip.compress(("#version: 0.2\n" + "\n".join(merges)).encode()))
    return path
