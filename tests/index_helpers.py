"""Helpers of the search index tests: clips, queries, synthetic features, and the index kinds the tests run on."""

import itertools
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np
import torch

from modeling_tvr.interaction_drl import l2_normalize
from modeling_tvr.search.features import PreparedSide

QUERIES = ["a red circle moves left", "the blue square slides up", "a green dot"]


class IndexSetup(NamedTuple):
    """A tiny model, its processor, clips written for it, and the folder they are in."""

    model: object
    processor: object
    videos: list[str]
    folder: Path


def write_clip(path: Path, seed: int, seconds: float = 3.0, fps: int = 8, size: int = 32) -> Path:
    """A short clip of random coloured blocks; different seeds give different content."""
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for _ in range(int(seconds * fps)):
            blocks = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
            image = np.kron(blocks, np.ones((size // 4, size // 4, 1), np.uint8))
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def exhaustive(model, processor, texts: list[str], videos: list[str]) -> torch.Tensor:
    """Scores of every text against every video, straight through the model."""
    inputs = processor(text=texts, videos=videos)
    with torch.no_grad():
        text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).text_embeds
        video = model.get_video_features(inputs["pixel_values_videos"], inputs["video_mask"]).video_embeds
        return model.similarity(text, inputs["attention_mask"], video, inputs["video_mask"])


def random_side(n: int, positions: int, dim: int, seed: int) -> PreparedSide:
    """`n` random prepared items of up to `positions` unit vectors (the rest zero padding) with softmax weights."""
    g = torch.Generator().manual_seed(seed)
    vectors = torch.nn.functional.normalize(torch.randn(n, positions, dim, generator=g), dim=-1)
    mask = torch.arange(positions) < torch.randint(1, positions + 1, (n, 1), generator=g)
    vectors = vectors * mask.unsqueeze(-1)
    weights = torch.softmax(torch.randn(n, positions, generator=g).masked_fill(~mask, float("-inf")), dim=-1)
    summary = torch.nn.functional.normalize(torch.randn(n, dim, generator=g), dim=-1)
    return PreparedSide(vectors, weights, summary)


def in_subspace(side: PreparedSide, rank: int, seed: int) -> PreparedSide:
    """The same items with their vectors moved into a random `rank`-dimensional subspace (renormalised), as trained
    features concentrate in few directions."""
    dim = side.vectors.shape[-1]
    basis, _ = torch.linalg.qr(torch.randn(dim, rank, generator=torch.Generator().manual_seed(seed)))
    vectors = torch.nn.functional.normalize(side.vectors @ basis @ basis.T, dim=-1)  # zero padding stays zero
    return PreparedSide(vectors, side.weights, side.summary)


def near_duplicates(bases: int, copies: int, frames: int, dim: int, frame_noise: float, seed: int) -> PreparedSide:
    """`copies` of each of `bases` random videos (in a 12-dimensional subspace), each copy with its own per-frame
    noise (in every direction): the case a summary vector per video gets wrong, as WTI's maxima follow single
    frames."""
    base = in_subspace(random_side(bases, frames, dim, seed), rank=12, seed=seed)
    rows = torch.arange(bases * copies) % bases
    generator = torch.Generator().manual_seed(seed + 1)
    valid = (base.weights[rows] > 0).unsqueeze(-1)
    noise = torch.randn(len(rows), frames, dim, generator=generator) * frame_noise / dim**0.5
    vectors = l2_normalize(base.vectors[rows] + noise) * valid
    weights = base.weights[rows]
    summary = l2_normalize(torch.bmm(weights.unsqueeze(1), vectors).squeeze(1))
    return PreparedSide(vectors, weights, summary)


class InProcessQdrant:
    """`QdrantVideoIndex` with `VideoIndex`'s `build` / `load` signatures, on one in-process client: each
    build gets a collection of its own, which loads find again from the index folder."""

    def __init__(self):
        from qdrant_client import QdrantClient

        self.client = QdrantClient(location=":memory:")
        self._numbers = itertools.count()

    def build(self, model, processor, videos, **options):
        from modeling_tvr.search import QdrantVideoIndex

        collection = f"c{next(self._numbers)}"
        return QdrantVideoIndex.build(model, processor, videos, client=self.client, collection=collection, **options)

    def load(self, path, model=None, processor=None, root=None):
        from modeling_tvr.search import QdrantVideoIndex

        return QdrantVideoIndex.load(path, model, processor, root, client=self.client)
