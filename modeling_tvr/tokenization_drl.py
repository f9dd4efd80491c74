"""CLIP tokenizer that reproduces OpenAI's `SimpleTokenizer` ids exactly, for DRL text-video retrieval.

DRL (like CLIP4Clip) tokenizes captions with OpenAI CLIP's `SimpleTokenizer`. transformers' `CLIPTokenizer` has the
same vocabulary, merges and pre-tokenisation regex, but gives other ids on some inputs:

- it skips OpenAI's cleaning (`ftfy.fix_text` and a double HTML unescape), so `"&amp;"`, mojibake like `"cafÃ©"` and
  full-width text like `"ｆｕｌｌ"` differ;
- its Rust normaliser applies NFC to the whole text, which composes accents that OpenAI can leave apart
  (`"<b>e&#769;"`: ftfy leaves entities alone in text containing `<`, and the HTML unescaping after it does not
  normalise), and lowercases with the Unicode tables of the Rust standard library, newer than Python's;
- its regex runs on Oniguruma rather than the `regex` module, without OpenAI's `re.IGNORECASE`, so the two disagree on
  a few characters (`"'ſ"`, U+0345) and on characters newer than one of their Unicode tables;
- it reads `"<|endoftext|>"` in the text as the special token even right after punctuation, where OpenAI does not.

`DRLCLIPTokenizer` therefore does OpenAI's cleaning and word splitting in Python, with OpenAI's own regex and the
`regex` module, and hands the words to the `tokenizers` backend only for byte-level BPE.

This file is copied next to saved checkpoints and loaded from there as remote code
(`AutoTokenizer.from_pretrained(path, trust_remote_code=True)`), so it only imports `transformers`, `tokenizers`,
`ftfy`, `regex` and the standard library, and never the `modeling_tvr` package.
"""

from __future__ import annotations

import gzip
import html
import os
import zlib
from typing import Any

import ftfy
import regex
from tokenizers import Tokenizer, pre_tokenizers
from transformers import BatchEncoding, CLIPTokenizer

__all__ = ["DRLCLIPTokenizer", "bytes_to_unicode", "clip_tokenizer_from_bpe", "openai_clean_text", "openai_words"]

# Number of merges OpenAI's `SimpleTokenizer` keeps from `bpe_simple_vocab_16e6.txt.gz` (`49152 - 256 - 2`); with
# 2 * 256 byte symbols and 2 special tokens this gives CLIP's 49408-token vocabulary.
NUM_MERGES = 49152 - 256 - 2

# OpenAI's special tokens, appended after the merges (ids 49406 and 49407 with the full merges file).
START_OF_TEXT = "<|startoftext|>"
END_OF_TEXT = "<|endoftext|>"

# OpenAI's context length for CLIP text encoders.
CLIP_CONTEXT_LENGTH = 77

# OpenAI's `simple_tokenizer.py` does `import regex as re`, so its whitespace collapsing uses the `regex` module,
# whose `\s` (unlike the standard library's) does not match the separators U+001C..U+001F.
_WHITESPACE = regex.compile(r"\s+")
_WORD_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
# OpenAI's pre-tokenisation regex, flags included.
_OPENAI_WORDS = regex.compile(r"<\|startoftext\|>|<\|endoftext\|>|" + _WORD_PATTERN, regex.IGNORECASE)
# The same without the special tokens, for `split_special_tokens=True` (special-token strings read as plain text).
_PLAIN_WORDS = regex.compile(_WORD_PATTERN, regex.IGNORECASE)


def openai_clean_text(text: str) -> str:
    """Normalise `text` exactly as OpenAI CLIP's `SimpleTokenizer.encode` does before splitting it into words.

    The steps are: `ftfy.fix_text` (repairs mojibake, applies NFC, ...), HTML unescaping twice, `strip`, collapsing
    every run of whitespace into one space, `strip` again, and lowercasing.

    Args:
        text (`str`):
            Any Unicode text.

    Returns:
        `str`: The cleaned text.
    """
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    text = _WHITESPACE.sub(" ", text).strip()
    return text.lower()


def openai_words(text: str, special_tokens: bool = True) -> list[str]:
    """Clean `text` with `openai_clean_text` and split it into words as OpenAI's `SimpleTokenizer` does.

    Each word is then byte-level BPE-encoded on its own, its last symbol carrying `</w>`.

    Args:
        text (`str`):
            Any Unicode text.
        special_tokens (`bool`, *optional*, defaults to `True`):
            Whether `<|startoftext|>` / `<|endoftext|>` in the text are split off as special-token words, as OpenAI
            does; if `False` they are split like any other text.

    Returns:
        `list[str]`: The words, in order; characters outside every word (whitespace) are dropped.
    """
    pattern = _OPENAI_WORDS if special_tokens else _PLAIN_WORDS
    return pattern.findall(openai_clean_text(text))


def bytes_to_unicode() -> dict[int, str]:
    """Return GPT-2's reversible map from the 256 byte values to printable Unicode characters, in OpenAI's order.

    Bytes that are printable Latin-1 characters (`!`..`~`, `¡`..`¬`, `®`..`ÿ`) map to themselves and come first; each
    remaining byte `b` maps to `chr(256 + n)`, `n` counting those bytes in increasing order. The order of the values is
    the order of the first 256 CLIP token ids.

    Returns:
        `dict[int, str]`: Byte value to its one-character string, in OpenAI's order.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {byte: chr(byte) for byte in printable}
    extra = 0
    for byte in range(256):
        if byte not in table:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


_BYTE_ENCODER = bytes_to_unicode()


def _texts_to_words(texts: Any, special_tokens: bool) -> Any:
    """Replace every string in `texts` (a string, or nested lists/tuples of strings) by its list of OpenAI words.

    Containers keep their type, so batches and `(text, pair)` tuples keep their meaning. Anything else is returned
    unchanged, so that the parent class still validates it and raises its own errors.
    """
    if isinstance(texts, str):
        return openai_words(texts, special_tokens)
    if isinstance(texts, (list, tuple)):
        return type(texts)(_texts_to_words(item, special_tokens) for item in texts)
    return texts


def _pretokenized_to_words(texts: Any, special_tokens: bool) -> Any:
    """Split each word of pre-split input (a word list, or nested lists/tuples of word lists) into OpenAI words.

    A list or tuple of strings is one example: its words are cleaned and split, and the pieces flattened into one list.
    """
    if isinstance(texts, (list, tuple)):
        if all(isinstance(item, str) for item in texts):
            return [word for item in texts for word in openai_words(item, special_tokens)]
        return type(texts)(_pretokenized_to_words(item, special_tokens) for item in texts)
    return texts


class DRLCLIPTokenizer(CLIPTokenizer):
    """transformers' `CLIPTokenizer` that gives the same ids as OpenAI CLIP's `SimpleTokenizer` on any text.

    Every text it encodes, through `__call__`, `encode`, `tokenize` or any other encoding method, for single texts,
    batches, text pairs, targets and pre-split words alike, is first cleaned with `openai_clean_text` and split into
    words with OpenAI's regex (`openai_words`); the `tokenizers` backend then only byte-encodes and BPE-merges each
    word. The vocabulary, merges, special tokens (`<|startoftext|>` / `<|endoftext|>`, which is also the padding
    token), padding, truncation, tensors and decoding are `CLIPTokenizer`'s.

    Because the backend receives pre-split words:

    - character offsets (`return_offsets_mapping`) are relative to each word, and `word_ids()` numbers OpenAI's words,
      not whitespace-separated ones;
    - tokens added with `add_tokens` only match within one such word.

    Build one from OpenAI's merges file with `clip_tokenizer_from_bpe`, or load a saved one with `from_pretrained`.
    Importing this module registers the class for `AutoTokenizer`, so `save_pretrained` writes this file and an
    `auto_map` next to the vocabulary, and `AutoTokenizer.from_pretrained(path, trust_remote_code=True)` loads it back
    where this package is not installed. The saved `tokenizer.json` keeps `CLIPTokenizer`'s normaliser and
    pre-tokenizer, so the folder also loads as a plain `CLIPTokenizer`.

    Args:
        *args:
            Positional arguments of `CLIPTokenizer`.
        **kwargs:
            Keyword arguments of `CLIPTokenizer` (`vocab`, `merges`, special tokens, ...).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Build the tokenizer like `CLIPTokenizer` (same arguments), then leave the backend only BPE to do."""
        super().__init__(*args, **kwargs)
        # CLIPTokenizer's own pipeline, kept for `tokenizer.json`. Read after `super().__init__`, which may have
        # replaced the backend.
        self._clip_normalizer = self._tokenizer.normalizer
        self._clip_pre_tokenizer = self._tokenizer.pre_tokenizer
        # Python does the cleaning and the word splitting; the backend only maps each word's bytes to symbols.
        self._tokenizer.normalizer = None
        self._tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)

    def _encode_plus(self, text: Any, text_pair: Any = None, **kwargs: Any) -> BatchEncoding:
        """Split `text` and `text_pair` into OpenAI's words, then encode those as `CLIPTokenizer` does.

        In transformers 5 every public encoding method (`__call__`, `encode`, `tokenize`, targets, batches, pairs) of a
        `tokenizers`-backed tokenizer ends in this one method, so converting here covers them all.
        """
        if kwargs.get("sanitize_control_tokens") or (isinstance(text, (list, tuple)) and len(text) == 0):
            # Chat templates: the parent re-enters `encode` piece by piece, which converts each piece. Empty batch:
            # nothing to convert (and `[]` would read as one empty pre-split text).
            return super()._encode_plus(text, text_pair=text_pair, **kwargs)
        split_special_tokens = kwargs.get("split_special_tokens")
        if split_special_tokens is None:
            split_special_tokens = self.split_special_tokens
        convert = _pretokenized_to_words if kwargs.get("is_split_into_words") else _texts_to_words
        text = convert(text, not split_special_tokens)
        text_pair = convert(text_pair, not split_special_tokens)
        kwargs["is_split_into_words"] = True
        return super()._encode_plus(text, text_pair=text_pair, **kwargs)

    def _encode_without_added_tokens(self, text: str) -> list[int]:
        """Encode `text` as plain text, without matching any added or special tokens (used for chat templates)."""
        model = self._tokenizer.model
        return [
            token.id
            for word in openai_words(text, special_tokens=False)
            for token in model.tokenize("".join(_BYTE_ENCODER[byte] for byte in word.encode("utf-8")))
        ]

    def _save_pretrained(
        self,
        save_directory: str | os.PathLike,
        file_names: tuple[str, ...],
        legacy_format: bool | None = None,
        filename_prefix: str | None = None,
    ) -> tuple[str, ...]:
        """Write `tokenizer.json` with `CLIPTokenizer`'s normaliser and pre-tokenizer, not the Python-driven ones.

        The file then stays a faithful CLIP tokenizer for `tokenizers` and `CLIPTokenizer`.
        """
        backend = Tokenizer.from_str(self._tokenizer.to_str())
        backend.normalizer = self._clip_normalizer
        backend.pre_tokenizer = self._clip_pre_tokenizer
        tokenizer_file = os.path.join(
            os.fspath(save_directory), (filename_prefix + "-" if filename_prefix else "") + "tokenizer.json"
        )
        backend.save(tokenizer_file)
        return (*file_names, tokenizer_file)


DRLCLIPTokenizer.register_for_auto_class("AutoTokenizer")


def _read_merges_file(path: str) -> str:
    """Return the text of the gzip or plain merges file at `path`, raising clear errors for unusable files."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"BPE merges file not found: {path!r}")
    if not os.path.isfile(path):
        raise ValueError(f"BPE merges path {path!r} is not a file")
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise ValueError(f"{path!r} looks gzip-compressed but cannot be decompressed: {error}") from error
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path!r} is not a BPE merges file: it is not UTF-8 text ({error})") from error


def clip_tokenizer_from_bpe(path: str | os.PathLike, model_max_length: int = CLIP_CONTEXT_LENGTH) -> DRLCLIPTokenizer:
    """Build a `DRLCLIPTokenizer` offline from OpenAI's BPE merges file, as `SimpleTokenizer` builds its own.

    The file (`bpe_simple_vocab_16e6.txt.gz` of OpenAI's CLIP repository, the authors' and open_clip; gzip-compressed or
    plain UTF-8 text) has a header line holding `#version: ...` (OpenAI's reads
    `"bpe_simple_vocab_16e6.txt#version: 0.2`; like `SimpleTokenizer`, the line is skipped), then one merge `a b` per
    line. Like `SimpleTokenizer`, this keeps the first `49152 - 256 - 2` merges after the header, and numbers the
    tokens in this order: the 256 byte symbols of `bytes_to_unicode`, the same symbols with `</w>` appended, the
    concatenation of each merge, then `<|startoftext|>` and `<|endoftext|>`. With OpenAI's file this is CLIP's
    49408-token vocabulary.

    Unlike `SimpleTokenizer`, which would add an empty token for a blank line, this rejects merges files with blank
    lines or lines that are not two symbols (one trailing newline at the end of the file is fine), and merges that use
    a symbol no earlier token produces.

    Args:
        path (`str` or `os.PathLike`):
            Path of the merges file.
        model_max_length (`int`, *optional*, defaults to `CLIP_CONTEXT_LENGTH`):
            Sequence length used by `truncation=True` and `padding="max_length"`; CLIP's text context length (77) by
            default.

    Returns:
        `DRLCLIPTokenizer`: The tokenizer; it can be saved with `save_pretrained` and loaded back with
        `from_pretrained`.

    Raises:
        FileNotFoundError: If `path` does not exist.
        ValueError: If `path` is not a BPE merges file (no `#version` header, not text, malformed merges).
    """
    path = os.fspath(path)
    lines = _read_merges_file(path).split("\n")
    # `SimpleTokenizer` skips line 1 whatever it holds: OpenAI's own file starts with
    # `"bpe_simple_vocab_16e6.txt#version: 0.2`, not `#version: 0.2`. Requiring the version tag somewhere on that line
    # still tells a merges file from any other text file.
    if "#version" not in lines[0]:
        raise ValueError(
            f"{path!r} is not a BPE merges file: its first line should be a header holding '#version: ...' "
            f"(OpenAI's file starts with '\"bpe_simple_vocab_16e6.txt#version: 0.2'), got {lines[0][:80]!r}"
        )
    if len(lines) > 1 and lines[-1] == "":
        lines = lines[:-1]  # the newline that ends the last line

    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [symbol + "</w>" for symbol in symbols]
    known = set(vocab)
    merges: list[tuple[str, str]] = []
    for line_number, line in enumerate(lines[1 : NUM_MERGES + 1], start=2):
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(
                f"{path!r} is not a valid BPE merges file: line {line_number} should hold two symbols separated by a "
                f"space, got {line[:80]!r}"
            )
        unknown = [part for part in parts if part not in known]
        if unknown:
            raise ValueError(
                f"{path!r} is not a valid BPE merges file: the merge on line {line_number} ({line[:80]!r}) uses "
                f"{unknown[0]!r}, which neither the byte symbols nor an earlier merge produce"
            )
        merges.append((parts[0], parts[1]))
        vocab.append(parts[0] + parts[1])
        known.add(parts[0] + parts[1])
    vocab.extend([START_OF_TEXT, END_OF_TEXT])
    # A token listed twice keeps its last id, like `dict(zip(vocab, range(len(vocab))))` in `SimpleTokenizer`.
    token_to_id = {token: index for index, token in enumerate(vocab)}
    return DRLCLIPTokenizer(
        vocab=token_to_id,
        merges=merges,
        unk_token=END_OF_TEXT,
        bos_token=START_OF_TEXT,
        eos_token=END_OF_TEXT,
        pad_token=END_OF_TEXT,
        model_max_length=model_max_length,
    )
