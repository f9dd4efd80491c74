"""Recall-at-K curves: the numbers, and the PNG drawn with Pillow."""

import numpy as np
import pytest
import torch
from PIL import Image

from modeling_tvr.training.metrics import retrieval_metrics, retrieval_ranks
from modeling_tvr.training.plots import T2V_COLOR, V2T_COLOR, recall_at_k_curve, save_recall_curve


def test_curve_on_hand_worked_ranks():
    curve = recall_at_k_curve(torch.tensor([1, 2, 2, 5]), max_k=6)
    assert curve.shape == (6,)
    np.testing.assert_allclose(curve, [25, 75, 75, 75, 100, 100])


def test_curve_accepts_arrays_and_lists_and_ignores_ranks_past_max_k():
    np.testing.assert_allclose(recall_at_k_curve(np.array([3, 1, 40]), 3), [100 / 3, 100 / 3, 200 / 3])
    np.testing.assert_allclose(recall_at_k_curve([7, 9], 2), [0, 0])


def test_curve_matches_retrieval_metrics_and_is_monotone():
    g = torch.Generator().manual_seed(0)
    sim = torch.randn(60, 25, generator=g).round(decimals=1)
    t2v = torch.randint(0, 25, (60,), generator=g)
    metrics = retrieval_metrics(sim, t2v)
    for direction, ranks in zip(("t2v", "v2t"), retrieval_ranks(sim, t2v), strict=True):
        curve = recall_at_k_curve(ranks, 25)
        assert np.all(np.diff(curve) >= 0)
        assert curve[-1] == pytest.approx(100.0)
        for k in (1, 5, 10):
            assert curve[k - 1] == pytest.approx(metrics[direction][f"R@{k}"])


def test_curve_rejects_bad_ranks():
    with pytest.raises(ValueError, match="1-based"):
        recall_at_k_curve([0, 1], 3)
    with pytest.raises(ValueError, match="empty"):
        recall_at_k_curve([], 3)
    with pytest.raises(ValueError, match="max_k"):
        recall_at_k_curve([1], 0)
    with pytest.raises(ValueError, match="whole numbers"):
        recall_at_k_curve([1.5], 3)


def _colors(image: Image.Image) -> set[tuple[int, int, int]]:
    return {color for _, color in image.getcolors(maxcolors=image.width * image.height)}


def test_png_is_written_with_both_curves(tmp_path):
    g = torch.Generator().manual_seed(1)
    sim = torch.randn(80, 40, generator=g)
    t2v = torch.arange(80) % 40
    sim[torch.arange(80), t2v] += 1.0
    t2v_ranks, v2t_ranks = retrieval_ranks(sim, t2v)
    path = save_recall_curve(t2v_ranks, v2t_ranks, tmp_path / "nested" / "recall.png", title="toy")
    assert path == tmp_path / "nested" / "recall.png" and path.is_file()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (800, 500)
        image = image.convert("RGB")
        colors = _colors(image)
        lower_half = _colors(image.crop((0, 250, 800, 500)))
    assert T2V_COLOR in colors and V2T_COLOR in colors
    assert len(colors) > 3  # text, grid and axes besides the background and the lines
    # The legend sits at the top: both lines, which start below 50 % here, must also show in the lower half.
    assert max(recall_at_k_curve(t2v_ranks, 1)[0], recall_at_k_curve(v2t_ranks, 1)[0]) < 40
    assert T2V_COLOR in lower_half and V2T_COLOR in lower_half


def test_png_size_max_k_and_tiny_inputs(tmp_path):
    path = save_recall_curve([1, 2, 2, 5], [1, 1, 3], tmp_path / "small.png", max_k=5, width=400, height=260)
    with Image.open(path) as image:
        assert image.size == (400, 260)
        assert {T2V_COLOR, V2T_COLOR} <= _colors(image.convert("RGB"))
    # A single K (every query at rank 1) still draws both directions.
    path = save_recall_curve(np.array([1]), np.array([1]), tmp_path / "one.png", width=300, height=200)
    with Image.open(path) as image:
        assert {T2V_COLOR, V2T_COLOR} <= _colors(image.convert("RGB"))


def test_blank_ranks_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        save_recall_curve([], [1], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
