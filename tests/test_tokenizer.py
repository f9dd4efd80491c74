"""DRLCLIPTokenizer must give OpenAI CLIP's `SimpleTokenizer` ids, build from OpenAI's merges file, and travel as code.

OpenAI's `bpe_simple_vocab_16e6.txt.gz` is not available offline, so the tests learn a small merges file in the same
format from a tiny corpus, and compare against a straightforward re-implementation of `SimpleTokenizer` written here
independently of `modeling_tvr.tokenization_drl`.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from modeling_tvr.tokenization_drl import DRLCLIPTokenizer, clip_tokenizer_from_bpe, openai_clean_text

from .openai_tokenizer import (
    LEARNED_MERGES,
    ReferenceSimpleTokenizer,
    reference_byte_table,
    reference_clean,
    write_merges,
)


@pytest.fixture(scope="module")
def bpe_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # No trailing newline: OpenAI's own reading would turn a trailing newline into an empty merge.
    return write_merges(tmp_path_factory.mktemp("bpe") / "bpe_simple_vocab_test.txt.gz", LEARNED_MERGES)


@pytest.fixture(scope="module")
def tokenizer(bpe_file: Path) -> DRLCLIPTokenizer:
    return clip_tokenizer_from_bpe(bpe_file)


@pytest.fixture(scope="module")
def reference(bpe_file: Path) -> ReferenceSimpleTokenizer:
    return ReferenceSimpleTokenizer(bpe_file)


TEXTS = [
    "A man is playing a guitar on the stage.",
    "the children are playing football in the park",
    "Don't stop: it's what they'll say, and we've done it; I'm sure he'd agree, you're right.",
    "DON'T IT'S THE MAN'S",
    "in 2022, 1999 and 100 days (3.14159)",
    "Really?! Yes... :-) !!!??? --- ***",
    "Tom &amp; Jerry",
    "Tom &amp;amp; Jerry &lt;b&gt; &#39;quoted&#39; &quot;x&quot;",
    "caf\u00c3\u00a9 au lait",  # mojibake of "café"
    "\uff46\uff55\uff4c\uff4c \uff37\uff29\uff24\uff34\uff28 \uff11\uff12",  # full-width "ｆｕｌｌ ＷＩＤＴＨ １２"
    "café crème brûlée in Zürich, Ångström, naïve, São Paulo",
    "e\u0301 versus \u00e9 and e&#769;",  # decomposed, precomposed, and an entity that ftfy composes
    "<b>e&#769;</b> &lt;i&gt;",  # ftfy leaves entities alone next to "<", so OpenAI's own unescaping keeps e + U+0301
    "東京の街を歩く人々 日本語 北京 上海 한국어",
    "🎸🎶 guitar 👍🏽 family: 👨‍👩‍👧 flags 🇯🇵",
    "tabs\tand\nnewlines\r\nand   many    spaces\u3000ideographic\u00a0nbsp",
    "   leading and trailing spaces   ",
    "UPPERCASE Words And MiXeD CaSe",
    "",
    "    ",
    "Ελληνικά ΣΟΦΙΑ όσος, русский текст, עברית, العربية, हिन्दी",
    "a\u0345b 'ſ \u017ftraße İstanbul \ua7cb\ua7dc",  # where the regex engines or lowercasing tables disagree
    "unit\u001fseparator\u001cfile",
    "<|startoftext|>a photo<|endoftext|> !<|endoftext|> x<|endoftext|><|endoftext|>",
    "<|StartOfText|>",
    "x" * 200,
]


def _short(text: str) -> str:
    return ascii(text)[:40]


# --------------------------------------------------------------------------------------------------------------------
# Ids
# --------------------------------------------------------------------------------------------------------------------


def test_learned_merges_produce_word_final_tokens(tokenizer: DRLCLIPTokenizer) -> None:
    assert any(merge.endswith("</w>") for merge in LEARNED_MERGES)
    assert tokenizer.tokenize("the") == ["the</w>"]
    assert tokenizer.tokenize("playing") == ["playing</w>"]


@pytest.mark.parametrize("text", TEXTS, ids=_short)
def test_ids_without_special_tokens_match_openai_reference(
    tokenizer: DRLCLIPTokenizer, reference: ReferenceSimpleTokenizer, text: str
) -> None:
    assert tokenizer.encode(text, add_special_tokens=False) == reference.encode(text)
    assert tokenizer(text, add_special_tokens=False)["input_ids"] == reference.encode(text)


@pytest.mark.parametrize("text", TEXTS, ids=_short)
def test_default_encoding_wraps_openai_ids_in_start_and_end_tokens(
    tokenizer: DRLCLIPTokenizer, reference: ReferenceSimpleTokenizer, text: str
) -> None:
    assert tokenizer(text)["input_ids"] == reference.encode_with_specials(text)
    assert tokenizer.encode(text) == reference.encode_with_specials(text)


def test_numbers_split_into_single_digits(tokenizer: DRLCLIPTokenizer) -> None:
    assert tokenizer.tokenize("2022") == ["2</w>", "0</w>", "2</w>", "2</w>"]


def test_cleaning_repairs_entities_mojibake_and_full_width(tokenizer: DRLCLIPTokenizer) -> None:
    assert tokenizer.encode("Tom &amp;amp; Jerry") == tokenizer.encode("tom & jerry")
    assert tokenizer.encode("CAF\u00c3\u00a9") == tokenizer.encode("café")
    assert tokenizer.encode("\uff46\uff55\uff4c\uff4c") == tokenizer.encode("full")


def test_random_unicode_text_matches_openai_reference(
    tokenizer: DRLCLIPTokenizer, reference: ReferenceSimpleTokenizer
) -> None:
    rng = random.Random(0)
    fragments = [" ", "  ", "\t", "\n", "&amp;", "&#769;", "'s", "'LL", "<|endoftext|>", "the ", "2022", "!?", "Ã©"]
    fragments += ["<b>", "\u0345", "'\u017f", "\ua7cb"]

    def random_char() -> str:
        kind = rng.random()
        if kind < 0.3:
            return chr(rng.randint(0x20, 0x7E))
        if kind < 0.5:
            return chr(rng.randint(0xA0, 0x2FFF))
        code = rng.randint(0, sys.maxunicode)
        return chr(code) if not 0xD800 <= code <= 0xDFFF else "?"

    texts = [
        "".join(rng.choice(fragments) if rng.random() < 0.2 else random_char() for _ in range(rng.randint(0, 40)))
        for _ in range(300)
    ]
    batch = tokenizer(texts, add_special_tokens=False)["input_ids"]
    for text, ids in zip(texts, batch, strict=True):
        assert ids == reference.encode(text), ascii(text)


def test_clean_text_follows_openai_steps() -> None:
    for text in TEXTS:
        assert openai_clean_text(text) == reference_clean(text), ascii(text)
    assert openai_clean_text("  Tom &amp;amp;\t\tJERRY  ") == "tom & jerry"


# --------------------------------------------------------------------------------------------------------------------
# Every encoding entry point cleans and splits like OpenAI
# --------------------------------------------------------------------------------------------------------------------


def test_batches_pairs_targets_and_tokenize_all_use_openai_ids(
    tokenizer: DRLCLIPTokenizer, reference: ReferenceSimpleTokenizer
) -> None:
    texts = ["Tom &amp; Jerry", "CAF\u00c3\u00a9 ｆｕｌｌ", "", "Don't stop!"]
    expected = [reference.encode_with_specials(text) for text in texts]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id

    assert tokenizer(texts)["input_ids"] == expected
    assert tokenizer(tuple(texts))["input_ids"] == expected
    assert tokenizer(text_target=texts[0])["input_ids"] == expected[0]
    assert tokenizer.convert_tokens_to_ids(tokenizer.tokenize(texts[1])) == reference.encode(texts[1])

    pair = tokenizer(texts[0], texts[1])["input_ids"]
    assert pair == [bos, *reference.encode(texts[0]), eos, eos, *reference.encode(texts[1]), eos]
    assert tokenizer([texts[0]], [texts[1]])["input_ids"] == [pair]

    padded = tokenizer(texts, padding="max_length", truncation=True, max_length=8, return_tensors="pt")
    assert padded["input_ids"].shape == (4, 8)
    for row, mask, ids in zip(padded["input_ids"].tolist(), padded["attention_mask"].tolist(), expected, strict=True):
        kept = ids[:7] + [eos] if len(ids) > 8 else ids
        assert row == kept + [tokenizer.pad_token_id] * (8 - len(kept))
        assert mask == [1] * len(kept) + [0] * (8 - len(kept))


def test_pre_split_words_are_cleaned_and_split_like_openai(
    tokenizer: DRLCLIPTokenizer, reference: ReferenceSimpleTokenizer
) -> None:
    words = ["Don't", "CAF\u00c3\u00a9!", "&amp;", "2022"]
    encoding = tokenizer(words, is_split_into_words=True, add_special_tokens=False)
    assert encoding["input_ids"] == reference.encode(" ".join(words))
    batch = tokenizer([words, ["the"]], is_split_into_words=True, add_special_tokens=False)
    assert batch["input_ids"] == [reference.encode(" ".join(words)), reference.encode("the")]


def test_special_token_text_is_read_as_plain_text_with_split_special_tokens(tokenizer: DRLCLIPTokenizer) -> None:
    ids = tokenizer.encode("<|endoftext|>", add_special_tokens=False, split_special_tokens=True)
    assert tokenizer.eos_token_id not in ids
    assert ids == tokenizer.encode("<| endoftext |>", add_special_tokens=False)


def test_decode_returns_cleaned_words(tokenizer: DRLCLIPTokenizer) -> None:
    ids = tokenizer("Tom &amp; JERRY  playing")["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "tom & jerry playing"


# --------------------------------------------------------------------------------------------------------------------
# Building from the merges file
# --------------------------------------------------------------------------------------------------------------------


def test_vocab_follows_openai_construction(tokenizer: DRLCLIPTokenizer, reference: ReferenceSimpleTokenizer) -> None:
    assert tokenizer.get_vocab() == reference.encoder
    assert len(tokenizer) == 512 + len(LEARNED_MERGES) + 2
    assert tokenizer.convert_ids_to_tokens([0, 93, 94, 188, 255, 256]) == ["!", "~", "¡", "Ā", "Ń", "!</w>"]
    assert tokenizer.convert_tokens_to_ids("Ġ") == 220  # the space byte
    assert tokenizer.bos_token == "<|startoftext|>" and tokenizer.bos_token_id == 512 + len(LEARNED_MERGES)
    assert tokenizer.eos_token == "<|endoftext|>" and tokenizer.eos_token_id == 512 + len(LEARNED_MERGES) + 1
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    assert tokenizer.model_max_length == 77


def test_merges_after_the_first_48894_are_ignored(tmp_path: Path) -> None:
    symbols = list(reference_byte_table().values())
    filler = [f"{a} {b}" for a in symbols for b in symbols if (a, b) != ("q", "q")][:48894]
    path = write_merges(tmp_path / "long.txt.gz", [*filler, "q q", "z z"], trailing_newline=True)
    tokenizer = clip_tokenizer_from_bpe(path)
    reference = ReferenceSimpleTokenizer(path)
    assert len(tokenizer) == 49408  # CLIP's vocabulary size
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (49406, 49407)
    assert tokenizer.tokenize("qqq") == ["q", "q", "q</w>"]  # "q q" is merge 48895: past the cap
    for text in ["qqq", "A man is playing!", "東京 2022"]:
        assert tokenizer.encode(text, add_special_tokens=False) == reference.encode(text)


def test_plain_text_file_and_trailing_newline_give_the_same_tokenizer(
    tmp_path: Path, tokenizer: DRLCLIPTokenizer
) -> None:
    plain = write_merges(tmp_path / "merges.txt", LEARNED_MERGES, compress=False, trailing_newline=True)
    from_plain = clip_tokenizer_from_bpe(str(plain))
    assert from_plain.get_vocab() == tokenizer.get_vocab()
    assert from_plain.encode(TEXTS[2]) == tokenizer.encode(TEXTS[2])


def test_missing_file_raises_file_not_found_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt.gz"
    with pytest.raises(FileNotFoundError, match="nope.txt.gz"):
        clip_tokenizer_from_bpe(missing)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"not": "merges"}\n', "#version"),
        (b"", "#version"),
        (b"\xff\xfe\x00binary", "UTF-8"),
        (gzip.compress(b"#version: 0.2\nt h\n")[:-6], "gzip"),
        (b"#version: 0.2\nt h\nthe extra part\n", "line 3"),
        (b"#version: 0.2\nt h\n\ne r\n", "line 3"),
        (b"#version: 0.2\nt h\nxyz w\n", "'xyz'"),
    ],
    ids=["json", "empty", "binary", "truncated-gzip", "three-symbols", "blank-line", "unknown-symbol"],
)
def test_file_that_is_not_a_bpe_merges_file_raises_value_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad_merges.bin"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="bad_merges.bin") as error:
        clip_tokenizer_from_bpe(path)
    assert message in str(error.value)


# --------------------------------------------------------------------------------------------------------------------
# Saving and loading
# --------------------------------------------------------------------------------------------------------------------


def test_save_pretrained_writes_code_and_auto_map(tmp_path: Path, tokenizer: DRLCLIPTokenizer) -> None:
    tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "tokenization_drl.py").is_file()
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["auto_map"]["AutoTokenizer"][0] == "tokenization_drl.DRLCLIPTokenizer"
    assert config["tokenizer_class"] == "DRLCLIPTokenizer"
    reloaded = DRLCLIPTokenizer.from_pretrained(tmp_path)
    for text in TEXTS:
        assert reloaded(text)["input_ids"] == tokenizer(text)["input_ids"], ascii(text)


def test_saved_tokenizer_json_keeps_clip_pipeline(tmp_path: Path, tokenizer: DRLCLIPTokenizer) -> None:
    from transformers import CLIPTokenizer

    tokenizer.save_pretrained(tmp_path)
    backend = json.loads((tmp_path / "tokenizer.json").read_text())
    assert backend["pre_tokenizer"]["type"] == "Sequence"
    plain = CLIPTokenizer.from_pretrained(tmp_path)
    assert plain("a man is playing")["input_ids"] == tokenizer("a man is playing")["input_ids"]


_REMOTE_LOAD = textwrap.dedent(
    """
    import json, sys
    sys.modules["modeling_tvr"] = None  # the package must not be needed
    try:
        import modeling_tvr
    except ImportError:
        pass
    else:
        raise AssertionError("modeling_tvr is importable")
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(sys.argv[1], trust_remote_code=True)
    texts = json.loads(sys.argv[2])
    print(json.dumps({
        "class": type(tokenizer).__name__,
        "module": type(tokenizer).__module__,
        "ids": [tokenizer(text)["input_ids"] for text in texts],
        "batch": tokenizer(texts, add_special_tokens=False)["input_ids"],
    }))
    """
)


@pytest.mark.slow
def test_auto_tokenizer_loads_saved_code_without_the_package(
    tmp_path: Path, tokenizer: DRLCLIPTokenizer, reference: ReferenceSimpleTokenizer
) -> None:
    saved = tmp_path / "checkpoint"
    tokenizer.save_pretrained(saved)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
    }
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "-c", _REMOTE_LOAD, str(saved), json.dumps(TEXTS)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["class"] == "DRLCLIPTokenizer"
    assert loaded["module"].startswith("transformers_modules.")
    assert loaded["ids"] == [reference.encode_with_specials(text) for text in TEXTS]
    assert loaded["batch"] == [reference.encode(text) for text in TEXTS]
    assert (tmp_path / "modules").is_dir()
