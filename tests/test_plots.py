"""Recall-at-K curves: the numbers, and the PNG drawn with Pillow, read back pixel by pixel."""

import numpy as np
import pytest
import torch
from PIL import Image

from modeling_tvr.training.metrics import retrieval_metrics, retrieval_ranks
from modeling_tvr.training.plots import T2V_COLOR, V2T_COLOR, recall_at_k_curve, save_recall_curve

from .recall_charts import BACKGROUND, GRID, INK, KNOWN_T2V, KNOWN_V2T, MAX_K, Chart, read_chart


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


def _segment_distance(points: np.ndarray, polyline: np.ndarray) -> np.ndarray:
    """Distance of each of `points` [N, 2] to the nearest segment of `polyline` [M, 2]."""
    if len(polyline) == 1:
        return np.linalg.norm(points - polyline[0], axis=1)
    start, end = polyline[:-1], polyline[1:]
    direction = end - start
    t = ((points[:, None] - start) * direction).sum(-1) / np.maximum((direction**2).sum(-1), 1e-9)
    nearest = start + np.clip(t, 0, 1)[..., None] * direction
    return np.linalg.norm(points[:, None] - nearest, axis=-1).min(1)


def _polyline(chart: Chart, curve: np.ndarray) -> np.ndarray:
    return np.array([(chart.x_of(k), chart.y_of(r)) for k, r in enumerate(curve, start=1)])


@pytest.mark.parametrize(("width", "height"), [(800, 500), (400, 260), (1600, 1000), (200, 150)])
def test_each_direction_is_drawn_in_its_colour_where_its_recall_puts_it(tmp_path, width, height):
    path = save_recall_curve(
        torch.tensor(KNOWN_T2V), torch.tensor(KNOWN_V2T), tmp_path / "recall.png", MAX_K, width=width, height=height
    )
    chart = read_chart(path, ticks=list(range(1, MAX_K + 1)))
    assert chart.pixels.shape == (height, width, 3)
    curves = {T2V_COLOR: recall_at_k_curve(KNOWN_T2V, MAX_K), V2T_COLOR: recall_at_k_curve(KNOWN_V2T, MAX_K)}
    np.testing.assert_allclose(curves[T2V_COLOR], [50, 70, 80, 90, 90, 100, 100, 100])
    np.testing.assert_allclose(curves[V2T_COLOR], [10, 10, 30, 30, 60, 60, 70, 80])

    # Axes: the y axis at K = 1 from 0 to 100 %, the x axis at 0 % from K = 1 to MAX_K.
    # Where the scales put them, to a pixel of rounding.
    ink = chart.mask(INK)
    x_last, y100 = round(chart.x_of(MAX_K)), round(chart.y_of(100))
    y0 = max(range(round(chart.y_of(0)) - 1, round(chart.y_of(0)) + 2), key=lambda y: ink[y].sum())
    x1 = max(range(round(chart.x_of(1)) - 1, round(chart.x_of(1)) + 2), key=lambda x: ink[y100:y0, x].sum())
    assert ink[y100 : y0 + 1, x1].mean() > 0.7  # the curves' first points sit on it
    assert ink[y0, x1 : x_last + 1].all()
    assert not ink[y0, x_last + 5 :].any() and not ink[: y100 - 5, x1].any()  # nothing past the plot's corners

    # At every K each direction's colour lies on its own R@K and not on the other's.
    for color, curve in curves.items():
        other = V2T_COLOR if color == T2V_COLOR else T2V_COLOR
        for k, recall in enumerate(curve, start=1):
            assert chart.color_near(chart.x_of(k), chart.y_of(recall), color), (color, k, recall)
            assert not chart.color_near(chart.x_of(k), chart.y_of(recall), other), (color, k, recall)
        # The line joins the points: samples every pixel along it all show its colour.
        line = _polyline(chart, curve)
        for start, end in zip(line[:-1], line[1:], strict=True):
            for t in np.linspace(0, 1, int(np.linalg.norm(end - start)) + 1):
                assert chart.color_near(*(start + t * (end - start)), color), (color, start, end, t)

    # Inside the plot area there is only background, grid and the two curves; each curve's pixels hug its
    # polyline and the grid's lie on the grid lines: background everywhere else.
    area = (slice(y100, y0 - 3), slice(x1 + 3, x_last + 1))
    inside = chart.pixels[area].reshape(-1, 3)
    assert {tuple(c) for c in np.unique(inside, axis=0)} <= {BACKGROUND, GRID, T2V_COLOR, V2T_COLOR}
    scale = min(width / 800, height / 500)
    for color, curve in curves.items():
        ys, xs = np.nonzero(chart.mask(color)[area])
        points = np.stack([xs + x1 + 3, ys + y100], axis=1).astype(float)
        assert len(points) > 0
        assert _segment_distance(points, _polyline(chart, curve)).max() <= 3 + 4 * scale, color
    grid_ys, grid_xs = np.nonzero(chart.mask(GRID)[area])
    on_a_line = np.isin(grid_ys + y100, chart.grid_rows) | np.isin(grid_xs + x1 + 3, chart.grid_cols)
    assert on_a_line.all()


def _strokes(chart: Chart, color, rows: slice) -> tuple[int, int, int, int]:
    """Bounding box (left, top, right, bottom) of `color` within `rows`."""
    ys, xs = np.nonzero(chart.mask(color)[rows])
    assert len(xs) > 0, f"{color} missing"
    return xs.min(), ys.min() + (rows.start or 0), xs.max(), ys.max() + (rows.start or 0)


def test_legend_above_the_plot_shows_each_direction_in_its_colour_and_order(tmp_path):
    path = save_recall_curve(KNOWN_T2V, KNOWN_V2T, tmp_path / "recall.png", MAX_K, title="toy test")
    chart = read_chart(path, ticks=list(range(1, MAX_K + 1)))
    header = slice(0, chart.grid_rows[0] - 8)  # above the 100 % line and the markers on it
    ink = chart.dark()
    t2v, v2t = _strokes(chart, T2V_COLOR, header), _strokes(chart, V2T_COLOR, header)
    for left, top, right, bottom in (t2v, v2t):
        assert 15 <= right - left <= 30 and bottom - top <= 4  # a short horizontal swatch
        # Its label (black text) follows it on the same row.
        assert ink[top - 4 : bottom + 5, right + 2 : right + 40].any()
    assert t2v[2] < v2t[0]  # text-to-video first, as in `labels`
    assert abs(t2v[1] - v2t[1]) <= 1  # on one row
    assert v2t[0] > chart.x_of(1) + 0.5 * (chart.x_of(MAX_K) - chart.x_of(1))  # in the right half
    # The legend's text ends at the plot's right edge; the title starts at its left edge.
    header_ink = np.nonzero(ink[header])[1]
    assert abs(header_ink.max() - chart.x_of(MAX_K)) <= 3
    assert abs(header_ink.min() - chart.x_of(1)) <= 3

    # Longer labels push the legend leftwards, right-aligned to the same edge.
    path = save_recall_curve(
        KNOWN_T2V, KNOWN_V2T, tmp_path / "labels.png", MAX_K, title="", labels=("texts to videos", "videos to texts")
    )
    labelled = read_chart(path, ticks=list(range(1, MAX_K + 1)))
    bare_header = slice(0, labelled.grid_rows[0] - 8)
    assert _strokes(labelled, T2V_COLOR, bare_header)[0] < t2v[0]
    assert abs(np.nonzero(labelled.dark()[bare_header])[1].max() - chart.x_of(MAX_K)) <= 3
    # No title: nothing drawn at the top left, above the plot.
    assert not labelled.dark()[
        bare_header, round(chart.x_of(1)) : _strokes(labelled, T2V_COLOR, bare_header)[0] - 5
    ].any()


def test_a_title_too_long_for_the_legend_pushes_the_legend_onto_its_own_row(tmp_path):
    short = read_chart(save_recall_curve(KNOWN_T2V, KNOWN_V2T, tmp_path / "a.png", MAX_K), list(range(1, 9)))
    title = "a very long title that cannot share its row with the legend, " * 2
    long = read_chart(
        save_recall_curve(KNOWN_T2V, KNOWN_V2T, tmp_path / "b.png", MAX_K, title=title), list(range(1, 9))
    )
    header = slice(0, long.grid_rows[0] - 8)
    title_rows = np.flatnonzero(long.dark()[header, : round(long.x_of(2))].any(1))
    swatch = _strokes(long, T2V_COLOR, header)
    assert swatch[1] > title_rows.max()  # under the title
    assert long.grid_rows[0] > short.grid_rows[0]  # the plot moves down to make room
    assert long.y_of(0) == pytest.approx(short.y_of(0), abs=1)  # its bottom stays put
    for k, recall in enumerate(recall_at_k_curve(KNOWN_T2V, MAX_K), start=1):
        assert long.color_near(long.x_of(k), long.y_of(recall), T2V_COLOR)


def test_default_max_k_is_the_number_of_candidates_capped_at_100(tmp_path):
    # The highest rank sets it: 40 candidates, ticks every 5.
    t2v, v2t = list(range(1, 41)), [1] * 3 + [35] * 7  # R@K = 2.5 K; 30 % up to K = 34, then 100 %
    chart = read_chart(save_recall_curve(t2v, v2t, tmp_path / "a.png"), ticks=[1, *range(5, 41, 5)])
    for k in (1, 10, 20, 30):
        assert chart.color_near(chart.x_of(k), chart.y_of(2.5 * k), T2V_COLOR, radius=2), k
    for k, recall in ((20, 30), (34, 30), (35, 100), (40, 100)):
        assert chart.color_near(chart.x_of(k), chart.y_of(recall), V2T_COLOR, radius=2), k
    assert chart.mask(INK)[round(chart.y_of(0)), round(chart.x_of(40)) + 3 :].sum() == 0  # the x axis ends at 40
    # Or the number of video queries, when it is larger (6 videos, none ranked past 5: still 6 candidates).
    read_chart(save_recall_curve([1, 1, 5], [1, 2, 3, 4, 5, 5], tmp_path / "b.png"), ticks=[1, 2, 3, 4, 5, 6])
    # At most 100, ticks every 10.
    read_chart(save_recall_curve([1, 300], [250, 1, 2], tmp_path / "c.png"), ticks=[1, *range(10, 101, 10)])


def test_a_single_k_puts_both_points_mid_axis(tmp_path):
    path = save_recall_curve(np.array([1, 2]), np.array([1]), tmp_path / "one.png", max_k=1, width=300, height=200)
    chart = read_chart(path, ticks=[1])
    _, width, _ = chart.pixels.shape
    x = chart.x_of(1)
    x_axis = np.flatnonzero(chart.mask(INK)[round(chart.y_of(0))])
    assert abs(x - (x_axis.min() + x_axis.max()) / 2) <= 6  # tick marks widen the axis row a little to the left
    assert chart.color_near(x, chart.y_of(50), T2V_COLOR) and chart.color_near(x, chart.y_of(100), V2T_COLOR)


def test_png_is_written_where_asked_whatever_the_suffix(tmp_path):
    path = save_recall_curve(KNOWN_T2V, KNOWN_V2T, tmp_path / "nested" / "deeper" / "recall.jpg", title="toy")
    assert path == tmp_path / "nested" / "deeper" / "recall.jpg" and path.is_file()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (800, 500) and image.mode == "RGB"


def test_bad_arguments_are_rejected_before_writing(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        save_recall_curve([], [1], tmp_path / "x.png")
    with pytest.raises(ValueError, match="max_k"):
        save_recall_curve([1], [1], tmp_path / "x.png", max_k=0)
    with pytest.raises(ValueError, match="200x150"):
        save_recall_curve([1], [1], tmp_path / "x.png", width=199)
    with pytest.raises(ValueError, match="1-based"):
        save_recall_curve([1], [0], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
