"""Recall-at-K chart PNGs read back pixel by pixel: the scales from the chart's own grid lines, so a test checks where
the curves are drawn without knowing how the plot lays itself out."""

from dataclasses import dataclass

import numpy as np
from PIL import Image

BACKGROUND, GRID, INK = (255, 255, 255), (225, 225, 225), (0, 0, 0)

# Two directions whose curves stay at least 20 % apart at every K of MAX_K, so that neither hides the other.
KNOWN_T2V = [1, 1, 1, 1, 1, 2, 2, 3, 4, 6]  # R@1..8: 50 70 80 90 90 100 100 100
KNOWN_V2T = [1, 3, 3, 5, 5, 5, 7, 8, 9, 9]  # R@1..8: 10 10 30 30 60 60 70 80 (two ranks past max_k)
MAX_K = 8


@dataclass
class Chart:
    """A written PNG with the scales read from its own grid lines: `x_of(k)` and `y_of(recall)` are pixel
    coordinates, found without knowing how the plot lays itself out."""

    pixels: np.ndarray  # [height, width, 3] uint8
    grid_rows: np.ndarray  # the horizontal grid lines, top (100 %) first
    grid_cols: np.ndarray  # the vertical grid lines, left first
    ticks: list[int]  # the K of each vertical grid line

    def x_of(self, k: float) -> float:
        if len(self.ticks) == 1:
            return float(self.grid_cols[0])
        (k0, x0), (k1, x1) = (self.ticks[0], self.grid_cols[0]), (self.ticks[-1], self.grid_cols[-1])
        return x0 + (k - k0) / (k1 - k0) * (x1 - x0)

    def y_of(self, recall: float) -> float:
        # Grid lines at 100, 80, 60, 40, 20 %; the one at 0 % lies under the x axis.
        y100, y20 = self.grid_rows[0], self.grid_rows[-1]
        return y20 + (recall - 20) / 80 * (y100 - y20)

    def color_near(self, x: float, y: float, color, radius: int = 1) -> bool:
        x, y = round(x), round(y)
        window = self.pixels[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1]
        return bool(np.all(window == color, axis=-1).any())

    def mask(self, color) -> np.ndarray:
        return np.all(self.pixels == color, axis=-1)

    def dark(self) -> np.ndarray:
        """Text and axes: black, or the grey edges of anti-aliased glyphs (the curves' colours are not dark)."""
        return self.pixels.max(axis=-1) < 128


def read_chart(path, ticks: list[int]) -> Chart:
    """Reads the PNG; `ticks` are the K values the chart should mark with a vertical grid line (the y axis covers
    the one at K = 1 when there are several)."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB"))
    height, width, _ = pixels.shape
    grid = np.all(pixels == GRID, axis=-1)
    rows, cols = np.flatnonzero(grid.sum(1) > 0.5 * width), np.flatnonzero(grid.sum(0) > 0.3 * height)
    assert len(rows) == 5, f"grid lines at 20, 40, ..., 100 % expected, found rows {rows}"
    assert np.ptp(np.diff(rows)) <= 1, f"the recall grid lines are not evenly spaced: {rows}"
    visible = ticks if len(ticks) == 1 else ticks[1:]
    assert len(cols) == len(visible), f"grid lines at K = {visible} expected, found columns {cols}"
    chart = Chart(pixels, rows, cols, visible)
    for k, col in zip(visible, cols, strict=True):
        assert abs(chart.x_of(k) - col) <= 1, f"the K grid lines are not at a linear scale: {cols}"
    return chart
