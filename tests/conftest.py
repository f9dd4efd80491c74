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


@pytest.fixture(scope="module")
def index_setup(tmp_path_factory):
    """A tiny model, its processor and eight clips of one to four seconds (`index_helpers.IndexSetup`)."""
    from .helpers import tiny_model_for, tiny_processor
    from .index_helpers import IndexSetup, write_clip

    folder = tmp_path_factory.mktemp("index")
    processor = tiny_processor(folder)
    model = tiny_model_for(processor.tokenizer, seed=3)
    videos = [str(write_clip(folder / f"clip{i}.mp4", seed=i, seconds=1 + i % 4)) for i in range(8)]
    return IndexSetup(model, processor, videos, folder)


@pytest.fixture(params=["memory", "qdrant"])
def index_api(request):
    """What builds and loads the index under test: `VideoIndex` (features in memory), or `QdrantVideoIndex` on an
    in-process Qdrant (`index_helpers.InProcessQdrant`)."""
    if request.param == "memory":
        from modeling_tvr.search import VideoIndex

        return VideoIndex
    from .index_helpers import InProcessQdrant

    return InProcessQdrant()
