"""The tokenizer built from OpenAI's real merges file gives the ids of the `SimpleTokenizer` shipped beside it.

Both files come from the pinned `open_clip_torch` wheel (`tests/real_artifacts.py`); its `tokenizer.py` is loaded
as a file, never through `import open_clip` (whose dependencies pull torchvision).
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from modeling_tvr import clip_tokenizer_from_bpe
from modeling_tvr.tokenization_drl import DRLCLIPTokenizer

from .real_artifacts import open_clip_files

CAPTIONS = [
    "a man is playing a guitar on stage",
    "A woman slices tomatoes & onions in the kitchen.",
    "kids play in the &amp; park &lt;3 &quot;fun&quot;",
    "Café crème brûlée — naïve façade, jalapeño piñata",
    "cafÃ© au lait, donâ€™t worry",  # mojibake that ftfy repairs
    "ｆｕｌｌ－ｗｉｄｔｈ ＴＥＸＴ １２３",
    "🐶 a dog runs 🏃‍♂️ after a ball ⚽️!!!",
    "東京の街を歩く人々 and 北京 traffic, 서울 야경",
    "Привет, мир! Γειά σου κόσμε. مرحبا بالعالم",
    "numbers 1234567890 and 3.14159 and 1,000,000",
    "it's what they'd've done; you're right, I'm sure we'll see",
    "<b>bold</b> &#233;t&#233; &#x1F600; &nbsp;spaces\t\tand\nnewlines",
    "don't STOP me NOW, I'M having SUCH a GOOD time",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    " ".join(["a long caption about a very long video in which many things happen one after another"] * 12),
    "",
    "   ",
]


@pytest.fixture(scope="module")
def real_files() -> tuple[Path, Path]:
    return open_clip_files()


@pytest.fixture(scope="module")
def tokenizer(real_files: tuple[Path, Path]) -> DRLCLIPTokenizer:
    return clip_tokenizer_from_bpe(real_files[0])


@pytest.fixture(scope="module")
def open_clip_tokenizer_module(real_files: tuple[Path, Path]) -> ModuleType:
    spec = importlib.util.spec_from_file_location("open_clip_tokenizer_file", real_files[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_real_merges_file_starts_with_a_name_before_the_version_tag(real_files: tuple[Path, Path]) -> None:
    # The file as OpenAI ships it: what an earlier version of the reader rejected.
    with gzip.open(real_files[0], "rt", encoding="utf-8") as handle:
        assert handle.readline().rstrip("\n") == '"bpe_simple_vocab_16e6.txt#version: 0.2'


def test_real_merges_file_gives_clips_vocabulary(tokenizer: DRLCLIPTokenizer) -> None:
    assert len(tokenizer) == 49408
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (49406, 49407, 49407)
    assert tokenizer.convert_tokens_to_ids("the</w>") == 518  # CLIP's id for "the"


@pytest.mark.parametrize("caption", CAPTIONS, ids=range(len(CAPTIONS)))
def test_ids_equal_open_clips_simple_tokenizer(
    tokenizer: DRLCLIPTokenizer, open_clip_tokenizer_module: ModuleType, real_files: tuple[Path, Path], caption: str
) -> None:
    reference = open_clip_tokenizer_module.SimpleTokenizer(bpe_path=str(real_files[0]), context_length=None)
    expected = reference.encode(caption)
    assert tokenizer.encode(caption, add_special_tokens=False) == expected
    # With the special tokens, as DRL's data loaders wrap every caption.
    assert tokenizer.encode(caption) == [reference.sot_token_id, *expected, reference.eot_token_id]


def test_real_merges_file_with_a_foreign_first_line_is_still_rejected(tmp_path: Path, real_files: tuple[Path, Path]):
    lines = gzip.decompress(real_files[0].read_bytes()).split(b"\n")
    path = tmp_path / "not_merges.txt.gz"
    path.write_bytes(gzip.compress(b"\n".join([b'{"vocab": {}}', *lines[1:]])))
    with pytest.raises(ValueError, match="#version"):
        clip_tokenizer_from_bpe(path)
