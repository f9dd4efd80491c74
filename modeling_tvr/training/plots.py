"""
Recall-at-K curves for text-video retrieval, drawn as a PNG with Pillow only (no matplotlib).

`recall_at_k_curve` turns the 1-based ranks of `modeling_tvr.metrics.retrieval_ranks` into R@1..R@K (percent);
`save_recall_curve` plots both retrieval directions on one chart.
"""

from __future__ import annotations

from collections.abc import Sequence
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
            returned by `modeling_tvr.metrics.retrieval_ranks`.
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

    scale = min(width / 800, height / 500)
    font = _font(max(10, round(13 * scale)))
    title_font = _font(max(11, round(17 * scale)))
    line_width = max(2, round(3 * scale))

    image = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    _, tick_h = _text_size(draw, "100", font)
    left = round(60 * scale) + tick_h + _text_size(draw, "100", font)[0]
    right = width - round(25 * scale)
    title_y = round(16 * scale)
    title_w, title_h = _text_size(draw, title, title_font)
    # Legend entries, right-aligned above the plot area so they never hide a curve; on a row of their own under
    # the title when the two would collide.
    swatch, swatch_gap, entry_gap = round(22 * scale), 6, round(18 * scale)
    entries = [f"{name}  (R@1 {values[0]:.1f})" for name, (values, _) in zip(labels, curves, strict=True)]
    entry_widths = [_text_size(draw, text, font)[0] for text in entries]
    legend_w = sum(entry_widths) + len(entries) * (swatch + swatch_gap) + (len(entries) - 1) * entry_gap
    legend_y = round(20 * scale)
    header_bottom = title_y + title_h
    if title and left + title_w + entry_gap > right - legend_w:
        legend_y = header_bottom + round(10 * scale)
        header_bottom = legend_y + tick_h
    top = header_bottom + round(20 * scale)
    bottom = height - round(22 * scale) - 2 * tick_h - round(18 * scale)

    def x_of(k: float) -> float:
        return (left + right) / 2 if max_k == 1 else left + (k - 1) / (max_k - 1) * (right - left)

    def y_of(recall: float) -> float:
        return bottom - recall / 100 * (bottom - top)

    # Grid, y ticks and labels every 20 %.
    tick_len = round(5 * scale)
    for recall in range(0, 101, 20):
        y = y_of(recall)
        draw.line([(left, y), (right, y)], fill=_GRID, width=1)
        draw.line([(left - tick_len, y), (left, y)], fill=_INK, width=1)
        text_w, text_h = _text_size(draw, str(recall), font)
        draw.text((left - tick_len - 4 - text_w, y - text_h / 2), str(recall), fill=_INK, font=font, anchor="la")
    # x ticks and labels.
    for k in _k_ticks(max_k):
        x = x_of(k)
        draw.line([(x, top), (x, bottom)], fill=_GRID, width=1)
        draw.line([(x, bottom), (x, bottom + tick_len)], fill=_INK, width=1)
        text_w, _ = _text_size(draw, str(k), font)
        draw.text((x - text_w / 2, bottom + tick_len + 3), str(k), fill=_INK, font=font)
    # Axes.
    draw.line([(left, top), (left, bottom), (right, bottom)], fill=_INK, width=max(1, line_width // 2))

    # Curves, with markers while the points are few enough to tell apart.
    radius = line_width + 1
    for values, color in curves:
        points = [(x_of(k), y_of(r)) for k, r in enumerate(values.tolist(), start=1)]
        if len(points) > 1:
            draw.line(points, fill=color, width=line_width, joint="curve")
        if max_k <= 30:
            for x, y in points:
                draw.ellipse([(x - radius, y - radius), (x + radius, y + radius)], fill=color)

    # Axis labels.
    x_label = "K (rank cut-off)"
    text_w, text_h = _text_size(draw, x_label, font)
    draw.text(((left + right - text_w) / 2, height - round(12 * scale) - text_h), x_label, fill=_INK, font=font)
    y_label = "Recall@K (%)"
    text_w, text_h = _text_size(draw, y_label, font)
    label = Image.new("RGB", (text_w + 4, text_h + 6), _BACKGROUND)
    ImageDraw.Draw(label).text((2, 0), y_label, fill=_INK, font=font, anchor="la")
    label = label.rotate(90, expand=True)
    image.paste(label, (round(12 * scale), round((top + bottom - label.height) / 2)))

    # Title (top left) and legend (top right, or its own row).
    draw.text((left, title_y), title, fill=_INK, font=title_font)
    legend_x = right
    for text, text_w, (_, color) in reversed(list(zip(entries, entry_widths, curves, strict=True))):
        legend_x -= text_w
        draw.text((legend_x, legend_y), text, fill=_INK, font=font)
        legend_x -= swatch + swatch_gap
        y_mid = legend_y + _text_size(draw, text, font)[1] / 2 + 2
        draw.line([(legend_x, y_mid), (legend_x + swatch, y_mid)], fill=color, width=line_width)
        legend_x -= entry_gap

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path
