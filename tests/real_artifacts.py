"""Real files from other projects that the tests check against, fetched once and verified by SHA-256.

Tests built only on files written to this project's own assumptions passed while OpenAI's real merges file failed, so
the tokenizer tests also run on the real one: ``bpe_simple_vocab_16e6.txt.gz`` (the file OpenAI, the DRL authors and
open_clip ship) and open_clip's ``tokenizer.py`` (a ``SimpleTokenizer`` to compare ids with), both from the
``open_clip_torch`` wheel. The model also runs transformers' own common model tests, which ship only in the sdist of
the installed transformers version (``transformers_common_tests``). Both are fetched with ``pip download --no-deps``
(installing open_clip would pull torchvision, which breaks this environment) into ``.test-artifacts/`` at the
repository root, or ``$MODELING_TVR_TEST_ARTIFACTS``. A missing network is an error, not a skip: CI must never pass
without these checks.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

OPEN_CLIP_WHEEL = "open_clip_torch-3.3.0-py3-none-any.whl"
OPEN_CLIP_WHEEL_SHA256 = "c549ad5ed6bfc119cc11105033c0a2b9d7a2a4afeb40a58a09aab3da1a0043ce"
#: SHA-256 of OpenAI's `bpe_simple_vocab_16e6.txt.gz` (1,356,917 bytes), the same in OpenAI's CLIP repository.
OPENAI_BPE_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"


def artifacts_dir() -> Path:
    default = Path(__file__).resolve().parents[1] / ".test-artifacts"
    return Path(os.environ.get("MODELING_TVR_TEST_ARTIFACTS", default))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fetch_open_clip_wheel(folder: Path) -> Path:
    wheel = folder / OPEN_CLIP_WHEEL
    if wheel.is_file() and _sha256(wheel) == OPEN_CLIP_WHEEL_SHA256:
        return wheel
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "open_clip_torch==3.3.0", "-d", str(folder)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not wheel.is_file():
        raise RuntimeError(
            f"Could not fetch {OPEN_CLIP_WHEEL} (needed for the real-tokenizer tests) with `{' '.join(command)}`:\n"
            f"{result.stderr.strip()[-2000:]}\nFetch it by hand into {folder} and rerun."
        )
    if _sha256(wheel) != OPEN_CLIP_WHEEL_SHA256:
        raise RuntimeError(f"{wheel} does not have the expected SHA-256 {OPEN_CLIP_WHEEL_SHA256}: delete it and rerun.")
    return wheel


def open_clip_files() -> tuple[Path, Path]:
    """(OpenAI's ``bpe_simple_vocab_16e6.txt.gz``, open_clip's ``tokenizer.py``), extracted from the pinned wheel."""
    folder = artifacts_dir() / "open_clip_torch-3.3.0"
    bpe, tokenizer = folder / "bpe_simple_vocab_16e6.txt.gz", folder / "tokenizer.py"
    if not (bpe.is_file() and _sha256(bpe) == OPENAI_BPE_SHA256 and tokenizer.is_file()):
        with zipfile.ZipFile(_fetch_open_clip_wheel(artifacts_dir())) as wheel:
            for name, target in (("bpe_simple_vocab_16e6.txt.gz", bpe), ("tokenizer.py", tokenizer)):
                folder.mkdir(parents=True, exist_ok=True)
                target.write_bytes(wheel.read(f"open_clip/{name}"))
    if _sha256(bpe) != OPENAI_BPE_SHA256:
        raise RuntimeError(f"{bpe} is not OpenAI's merges file (SHA-256 {OPENAI_BPE_SHA256} expected).")
    return bpe, tokenizer


#: SHA-256 of transformers' sdists whose common tests this project has run; another version is still fetched (pip
#: checks PyPI's hash), this only pins the ones known.
TRANSFORMERS_SDIST_SHA256 = {"5.24.0": "906cb8c3cb2123575e263962586a4d21a979ce97feeb95fe6aaf66fe6ae88bf3"}
#: Files the sdist's `tests/test_modeling_common.py` / `test_configuration_common.py` import from transformers'
#: repository but the sdist leaves out; each is replaced by this project's stand-in (tests/transformers_standins/).
TRANSFORMERS_STANDINS = {
    "exporters/test_export.py": "export_mixin.py",
    "generation/test_utils.py": "generation_mixin.py",
    "utils/test_configuration_utils.py": "configuration_kwargs.py",
}
#: The package name the sdist's `tests/` folder is imported under (this repository's own tests are `tests`).
TRANSFORMERS_TESTS_PACKAGE = "transformers_common_tests"


def _fetch_transformers_sdist(folder: Path, version: str) -> Path:
    sdist = folder / f"transformers-{version}.tar.gz"
    expected = TRANSFORMERS_SDIST_SHA256.get(version)
    if sdist.is_file() and (expected is None or _sha256(sdist) == expected):
        return sdist
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
        f"transformers=={version}", "-d", str(folder),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not sdist.is_file():
        raise RuntimeError(
            f"Could not fetch {sdist.name} (transformers' common model tests) with `{' '.join(command)}`:\n"
            f"{result.stderr.strip()[-2000:]}\nFetch it by hand into {folder} and rerun."
        )
    if expected is not None and _sha256(sdist) != expected:
        raise RuntimeError(f"{sdist} does not have the expected SHA-256 {expected}: delete it and rerun.")
    return sdist


def transformers_common_tests() -> Path:
    """A folder to put on `sys.path` that holds the package `transformers_common_tests`: the `tests/*.py` files of
    the installed transformers version's sdist, plus this project's stand-ins for the three files they import that
    the sdist lacks."""
    version = importlib.metadata.version("transformers")
    root = artifacts_dir() / f"transformers-{version}-tests"
    package = root / TRANSFORMERS_TESTS_PACKAGE
    stamp = package / ".complete"
    if not stamp.is_file():
        sdist = _fetch_transformers_sdist(artifacts_dir(), version)
        shutil.rmtree(package, ignore_errors=True)
        package.mkdir(parents=True)
        prefix = f"transformers-{version}/tests/"
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                name = member.name.removeprefix(prefix)
                if member.name.startswith(prefix) and member.isfile() and "/" not in name and name.endswith(".py"):
                    (package / name).write_bytes(archive.extractfile(member).read())
        (package / "__init__.py").touch()
        stamp.touch()
    # Copied on every run, so that an edited stand-in is never shadowed by an older copy.
    standins = Path(__file__).resolve().parent / "transformers_standins"
    for target, source in TRANSFORMERS_STANDINS.items():
        path = package / target
        path.parent.mkdir(exist_ok=True)
        (path.parent / "__init__.py").touch()
        shutil.copyfile(standins / source, path)
    return root
