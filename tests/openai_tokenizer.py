"""OpenAI CLIP's `SimpleTokenizer` written out plainly, independently of `modeling_tvr.tokenization_drl`, and a small
merges file in OpenAI's format learned from a tiny corpus: what the tokenizer tests compare against, and the
vocabulary the tiny test models and training runs use."""

from __future__ import annotations

import collections
import gzip
import html
from pathlib import Path

import ftfy
import regex

# --------------------------------------------------------------------------------------------------------------------
# Reference: OpenAI CLIP's SimpleTokenizer, written out plainly.
# --------------------------------------------------------------------------------------------------------------------

REFERENCE_PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)


def reference_byte_table() -> dict[int, str]:
    """GPT-2's byte -> printable character table, built the way OpenAI's `bytes_to_unicode` builds it."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def reference_clean(text: str) -> str:
    """`basic_clean` then `whitespace_clean` then `.lower()`, as in `SimpleTokenizer.encode`."""
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text))
    text = text.strip()
    text = regex.sub(r"\s+", " ", text)  # OpenAI's module imports `regex as re`
    text = text.strip()
    return text.lower()


class ReferenceSimpleTokenizer:
    """OpenAI's algorithm: vocab construction, cleaning, regex split, byte encoding and greedy lowest-rank BPE."""

    def __init__(self, bpe_path: Path) -> None:
        self.byte_encoder = reference_byte_table()
        with gzip.open(bpe_path) as handle:
            lines = handle.read().decode("utf-8").split("\n")
        merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
        vocab = list(reference_byte_table().values())
        vocab = vocab + [v + "</w>" for v in vocab]
        for merge in merges:
            vocab.append("".join(merge))
        vocab.extend(["<|startoftext|>", "<|endoftext|>"])
        self.encoder = dict(zip(vocab, range(len(vocab)), strict=True))
        self.bpe_ranks = dict(zip(merges, range(len(merges)), strict=True))
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}

    def bpe(self, token: str) -> str:
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = set(zip(word, word[1:], strict=False))
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                if first not in word[i:]:
                    new_word.extend(word[i:])
                    break
                j = word.index(first, i)
                new_word.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = set(zip(word, word[1:], strict=False))
        result = " ".join(word)
        self.cache[token] = result
        return result

    def encode(self, text: str) -> list[int]:
        ids = []
        for token in REFERENCE_PATTERN.findall(reference_clean(text)):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[piece] for piece in self.bpe(token).split(" "))
        return ids

    def encode_with_specials(self, text: str) -> list[int]:
        """What OpenAI's `clip.tokenize` puts before padding: start token, ids, end token."""
        return [self.encoder["<|startoftext|>"], *self.encode(text), self.encoder["<|endoftext|>"]]


# --------------------------------------------------------------------------------------------------------------------
# A small merges file in OpenAI's format, learned from a tiny corpus.
# --------------------------------------------------------------------------------------------------------------------

CORPUS = """
A man is playing a guitar on the stage while the crowd is singing along.
A woman is slicing tomatoes and onions in the kitchen, then she's cooking them.
Two dogs are running on the beach; they don't stop until the sun sets.
Someone is explaining how to fix a bike: it's easy, they'll say, and we've done it.
The children are playing football in the park and the players are cheering.
A cat is sleeping on the sofa near the window in the morning light.
People are dancing at the café in Zürich, and the waiter brings crème brûlée.
A news anchor is talking about the weather in 2022 and 1999 over 100 days.
東京の街を歩く人々 and 日本語のテキスト, 北京 and 上海 at night.
Cooking pasta with tomatoes: boiling, stirring, tasting and serving the dinner.
A girl is singing a song about the rain!!! Amazing... Really?! Yes :-) 🎸🎶
The man's car is driving down the road and the woman's bike is following it.
"""


def learn_merges(corpus: str, num_merges: int) -> list[str]:
    """A tiny BPE learner over OpenAI's words: the most frequent adjacent pair is merged first (ties by the pair)."""
    byte_table = reference_byte_table()
    words = collections.Counter()
    for token in REFERENCE_PATTERN.findall(reference_clean(corpus)):
        encoded = "".join(byte_table[b] for b in token.encode("utf-8"))
        words[tuple(encoded[:-1]) + (encoded[-1] + "</w>",)] += 1
    merges = []
    for _ in range(num_merges):
        pair_counts = collections.Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:], strict=False):
                pair_counts[pair] += count
        if not pair_counts:
            break
        best = min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))
        merges.append(f"{best[0]} {best[1]}")
        merged = collections.Counter()
        for word, count in words.items():
            new_word, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    new_word.append(word[i] + word[i + 1])
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            merged[tuple(new_word)] += count
        words = merged
    return merges


def write_merges(path: Path, merges: list[str], *, compress: bool = True, trailing_newline: bool = False) -> Path:
    """Write `merges` with OpenAI's header line, gzip-compressed like `bpe_simple_vocab_16e6.txt.gz` by default."""
    text = "\n".join(["#version: 0.2", *merges]) + ("\n" if trailing_newline else "")
    if compress:
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


LEARNED_MERGES = learn_merges(CORPUS, 400)
