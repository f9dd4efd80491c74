"""Shared fixtures. Tests run offline: nothing may reach the Hub."""

import os
from pathlib import Path

import pytest
import torch

# Before any test module imports huggingface_hub or datasets, which read these once: nothing may reach the Hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_EVALUATE_OFFLINE"] = "1"

from modeling_tvr import DRLModel  # noqa: E402

from .helpers import random_batch, tiny_model  # noqa: E402
from .stand_in_hub import stand_in_hub  # noqa: E402


@pytest.fixture
def model() -> DRLModel:
    return tiny_model()


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    return random_batch()


@pytest.fixture
def isolated_datasets_cache(tmp_path, monkeypatch) -> None:
    """`datasets` writes the Arrow files of a test's builds under its tmp_path, not the user's cache."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))


@pytest.fixture
def dataset_hub(monkeypatch, tmp_path) -> dict[str, Path]:
    """A stand-in Hub for dataset repos (`stand_in_hub`): pushes land under tmp_path/hub, loads read them back."""
    return stand_in_hub(monkeypatch, tmp_path / "hub")
