"""
Recall-at-K curves for text-video retrieval, drawn as a PNG with Pillow only (no matplotlib).

`recall_at_k_curve` turns the 1-based ranks of `modeling_tvr.training.metrics.retrieval_ranks` into R@1..R@K (percent);
`save_recall_curve` plots both retrieval directions on one chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

T2V_COLOR = (31, 119, 180)  # blue
V2T_COLOR = (255, 127, 14)  # orange
_BACKGROUND = (255, 255, 255)
_INK = (0, 0, 0)
_GRID = (225, 225, 225)
_DEFAULT_MAX_K = 100

Color = tuple[int, int, int]
Curve = tuple[np.ndarray, Color]  # R@1..R@max_k in percent, and the colour it is drawn in


def _as_ranks(ranks: Any) -> np.ndarray:
    """1-D int64 array of 1-based ranks from a tensor (any device), an array or a sequence."""
    if hasattr(ranks, "detach"):  # torch.Tensor, without importing torch
        ranks = ranks.detach().cpu().numpy()
    array = np.asarray(ranks)
    if array.ndim != 1:
        raise ValueError(f"ranks must be one-dimensional, got shape {array.shape}.")
    if array.size == 0:
        raise ValueError("ranks is empty: there is no query to compute a recall over.")
    if not np.issubdtype(array.dtype, np.integer) and not (
        np.all(np.isfinite(array)) and np.all(array == np.round(array))
    ):
        raise ValueError("ranks must be whole numbers.")
    array = array.astype(np.int64)
    if array.min() < 1:
        raise ValueError(f"ranks are 1-based, got a rank of {array.min()}.")
    return array


def recall_at_k_curve(ranks: Any, max_k: int) -> np.ndarray:
    """
    Recall at every cut-off K = 1..max_k, in percent.

    Args:
        ranks: 1-based ranks of the correct item, one per query (a tensor, an array or a sequence of ints), as
            returned by `modeling_tvr.training.metrics.retrieval_ranks`.
        max_k: the largest cut-off.

    Returns:
        A float64 array of shape `[max_k]` whose entry `k - 1` is R@k = 100 * (fraction of queries with rank <= k);
        it is non-decreasing and agrees with the R@1/5/10 of `retrieval_metrics`.
    """
    if max_k < 1:
        raise ValueError(f"max_k must be at least 1, got {max_k}.")
    array = _as_ranks(ranks)
    # Ranks past max_k all land in the overflow bin max_k + 1, which the cumulative sum below never reaches.
    counts = np.bincount(np.minimum(array, max_k + 1), minlength=max_k + 2)
    return np.cumsum(counts[1 : max_k + 1]) / array.size * 100


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's default font, scalable where Pillow has FreeType (>= 10.1), else its fixed bitmap font."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no size argument
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font: Any) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def _k_ticks(max_k: int, max_ticks: int = 11) -> list[int]:
    """Readable K ticks: 1, then multiples of the smallest 1-2-5 step giving at most `max_ticks` ticks, then max_k."""
    steps = (m * 10**e for e in range(12) for m in (1, 2, 5))
    step = next(s for s in steps if max_k // s + 1 <= max_ticks)
    ticks = [1] + [k for k in range(step, max_k + 1, step) if k > 1]
    if max_k - ticks[-1] >= step / 2:  # max_k lies well off the step: label it too
        ticks.append(max_k)
    return ticks


@dataclass(frozen=True)
class _Layout:
    """Where each part of the chart goes. Every length scales with the image against the 800x500 default."""

    max_k: int
    scale: float
    font: Any
    title_font: Any
    line_width: int
    tick_len: int
    left: int
    right: int
    top: int
    bottom: int
    title_y: int
    legend_y: int

    def x_of(self, k: float) -> float:
        if self.max_k == 1:
            return (self.left + self.right) / 2
        return self.left + (k - 1) / (self.max_k - 1) * (self.right - self.left)

    def y_of(self, recall: float) -> float:
        return self.bottom - recall / 100 * (self.bottom - self.top)


@dataclass(frozen=True)
class _Legend:
    entries: list[str]
    widths: list[int]
    colors: list[Color]
    swatch: int
    swatch_gap: int
    entry_gap: int

    @property
    def width(self) -> int:
        count = len(self.entries)
        return sum(self.widths) + count * (self.swatch + self.swatch_gap) + (count - 1) * self.entry_gap


def _legend(draw: ImageDraw.ImageDraw, scale: float, font: Any, labels: Sequence[str], curves: list[Curve]) -> _Legend:
    """One entry per direction, its R@1 appended: the figure a reader looks for first."""
    entries = [f"{name}  (R@1 {values[0]:.1f})" for name, (values, _) in zip(labels, curves, strict=True)]
    return _Legend(
        entries=entries,
        widths=[_text_size(draw, text, font)[0] for text in entries],
        colors=[color for _, color in curves],
        swatch=round(22 * scale),
        swatch_gap=6,
        entry_gap=round(18 * scale),
    )


def _layout(
    draw: ImageDraw.ImageDraw, width: int, height: int, max_k: int, title: str, legend: _Legend, scale: float, font: Any
) -> _Layout:
    """The plot area between the y tick labels, the header (title and legend) and the footer (x ticks and label)."""
    title_font = _font(max(11, round(17 * scale)))
    tick_w, tick_h = _text_size(draw, "100", font)
    left = round(60 * scale) + tick_h + tick_w
    right = width - round(25 * scale)
    title_y = round(16 * scale)
    title_w, title_h = _text_size(draw, title, title_font)
    # The legend sits right-aligned above the plot area so that it never hides a curve, on a row of its own under
    # the title when the two would collide.
    legend_y = round(20 * scale)
    header_bottom = title_y + title_h
    if title and left + title_w + legend.entry_gap > right - legend.width:
        legend_y = header_bottom + round(10 * scale)
        header_bottom = legend_y + tick_h
    return _Layout(
        max_k=max_k,
        scale=scale,
        font=font,
        title_font=title_font,
        line_width=max(2, round(3 * scale)),
        tick_len=round(5 * scale),
        left=left,
        right=right,
        top=header_bottom + round(20 * scale),
        bottom=height - round(22 * scale) - 2 * tick_h - round(18 * scale),
        title_y=title_y,
        legend_y=legend_y,
    )


def _draw_grid_and_axes(draw: ImageDraw.ImageDraw, layout: _Layout) -> None:
    """Grid lines with ticks and labels every 20 % of recall and at the readable K values, then the two axes."""
    font, left, right, top, bottom = layout.font, layout.left, layout.right, layout.top, layout.bottom
    for recall in range(0, 101, 20):
        y = layout.y_of(recall)
        draw.line([(left, y), (right, y)], fill=_GRID, width=1)
        draw.line([(left - layout.tick_len, y), (left, y)], fill=_INK, width=1)
        text_w, text_h = _text_size(draw, str(recall), font)
        draw.text((left - layout.tick_len - 4 - text_w, y - text_h / 2), str(recall), fill=_INK, font=font, anchor="la")
    for k in _k_ticks(layout.max_k):
        x = layout.x_of(k)
        draw.line([(x, top), (x, bottom)], fill=_GRID, width=1)
        draw.line([(x, bottom), (x, bottom + layout.tick_len)], fill=_INK, width=1)
        text_w, _ = _text_size(draw, str(k), font)
        draw.text((x - text_w / 2, bottom + layout.tick_len + 3), str(k), fill=_INK, font=font)
    # Drawn last so that the axes cover the grid lines at K = 1 and at 0 %.
    draw.line([(left, top), (left, bottom), (right, bottom)], fill=_INK, width=max(1, layout.line_width // 2))


def _draw_curves(draw: ImageDraw.ImageDraw, layout: _Layout, curves: list[Curve]) -> None:
    """Each direction's R@1..R@max_k as a polyline, with a marker per K while the points are few enough to tell
    apart."""
    radius = layout.line_width + 1
    for values, color in curves:
        points = [(layout.x_of(k), layout.y_of(r)) for k, r in enumerate(values.tolist(), start=1)]
        if len(points) > 1:
            draw.line(points, fill=color, width=layout.line_width, joint="curve")
        if layout.max_k <= 30:
            for x, y in points:
                draw.ellipse([(x - radius, y - radius), (x + radius, y + radius)], fill=color)


def _draw_axis_labels(image: Image.Image, draw: ImageDraw.ImageDraw, layout: _Layout) -> None:
    """The x label centred under the tick labels; the y label rotated to read bottom to top beside the y ticks."""
    font, scale = layout.font, layout.scale
    x_label = "K (rank cut-off)"
    text_w, text_h = _text_size(draw, x_label, font)
    bottom_y = image.height - round(12 * scale) - text_h
    draw.text(((layout.left + layout.right - text_w) / 2, bottom_y), x_label, fill=_INK, font=font)
    # ImageDraw cannot draw rotated text: draw it on a patch of its own, rotate the patch and paste it.
    y_label = "Recall@K (%)"
    text_w, text_h = _text_size(draw, y_label, font)
    label = Image.new("RGB", (text_w + 4, text_h + 6), _BACKGROUND)
    ImageDraw.Draw(label).text((2, 0), y_label, fill=_INK, font=font, anchor="la")
    label = label.rotate(90, expand=True)
    image.paste(label, (round(12 * scale), round((layout.top + layout.bottom - label.height) / 2)))


def _draw_title_and_legend(draw: ImageDraw.ImageDraw, layout: _Layout, title: str, legend: _Legend) -> None:
    """The title top left; the legend entries laid out leftwards from the plot's right edge, each a coloured
    swatch then its label."""
    draw.text((layout.left, layout.title_y), title, fill=_INK, font=layout.title_font)
    legend_x = layout.right
    for text, text_w, color in reversed(list(zip(legend.entries, legend.widths, legend.colors, strict=True))):
        legend_x -= text_w
        draw.text((legend_x, layout.legend_y), text, fill=_INK, font=layout.font)
        legend_x -= legend.swatch + legend.swatch_gap
        y_mid = layout.legend_y + _text_size(draw, text, layout.font)[1] / 2 + 2
        draw.line([(legend_x, y_mid), (legend_x + legend.swatch, y_mid)], fill=color, width=layout.line_width)
        legend_x -= legend.entry_gap


def save_recall_curve(
    t2v_ranks: Any,
    v2t_ranks: Any,
    path: str | PathLike[str],
    max_k: int | None = None,
    title: str = "Recall@K",
    *,
    width: int = 800,
    height: int = 500,
    labels: Sequence[str] = ("text-to-video", "video-to-text"),
) -> Path:
    """
    Plot R@K (percent, y from 0 to 100) against K = 1..max_k for both retrieval directions and save it as a PNG.

    Args:
        t2v_ranks: 1-based rank of the correct video for every text query (from `retrieval_ranks`).
        v2t_ranks: 1-based rank of the correct caption group for every video query (from `retrieval_ranks`).
        path: where to write the PNG (its folder is created if needed). The file is PNG whatever its suffix.
        max_k: the largest K on the x axis. Defaults to the number of candidates, capped at 100. The number of
            candidates is taken as the largest of the highest rank seen and the number of video queries (one per
            captioned video), which is the number of videos whenever every video has a caption.
        title: the chart title, drawn top left.
        width: image width in pixels.
        height: image height in pixels.
        labels: legend labels of the text-to-video and video-to-text lines; each gets its R@1 appended.

    Returns:
        The path of the written PNG.
    """
    t2v = _as_ranks(t2v_ranks)
    v2t = _as_ranks(v2t_ranks)
    if max_k is None:
        max_k = min(_DEFAULT_MAX_K, max(int(t2v.max()), int(v2t.max()), v2t.size))
    if max_k < 1:
        raise ValueError(f"max_k must be at least 1, got {max_k}.")
    if width < 200 or height < 150:
        raise ValueError(f"The image must be at least 200x150 pixels, got {width}x{height}.")
    curves = [(recall_at_k_curve(t2v, max_k), T2V_COLOR), (recall_at_k_curve(v2t, max_k), V2T_COLOR)]

    image = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    scale = min(width / 800, height / 500)
    font = _font(max(10, round(13 * scale)))
    legend = _legend(draw, scale, font, labels, curves)
    layout = _layout(draw, width, height, max_k, title, legend, scale, font)
    _draw_grid_and_axes(draw, layout)
    _draw_curves(draw, layout, curves)
    _draw_axis_labels(image, draw, layout)
    _draw_title_and_legend(draw, layout, title, legend)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path
