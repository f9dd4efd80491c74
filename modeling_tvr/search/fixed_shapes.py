"""bfloat16 products in a few fixed shapes.

On CPU, oneDNN compiles a kernel for every new shape of a bfloat16 matrix product, each time a query brings a new
token count or a search a new number of rows: for the small blocks the sketch and the frame lists score, the
compilation costs more than the product itself. Rounding both dimensions up to powers of two keeps the shapes, and so
the compilations, to a few dozen per process. The extra columns repeat a real token (maxima over tokens are unchanged,
and their weight is zero); the extra rows are real neighbouring rows whose scores are dropped.
"""

from __future__ import annotations

import torch

# Fewest rows in one product (smaller counts are rounded up to it).
MIN_ROWS = 256
# Fewest columns (query tokens).
MIN_COLUMNS = 8


def next_power_of_two(count: int, least: int) -> int:
    return max(least, 1 << max(count - 1, 0).bit_length())


def padded_query(tokens: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The query `[T, d]` as bfloat16 columns `[d, T']`, `T'` a power of two, the extra columns copies of the first
    token; its weights `[T']` with zeros there."""
    count = len(tokens)
    columns = next_power_of_two(count, MIN_COLUMNS)
    index = torch.cat([torch.arange(count), torch.zeros(columns - count, dtype=torch.long)])
    padded_weights = torch.cat([weights.float(), weights.new_zeros(columns - count, dtype=torch.float32)])
    return tokens[index].to(torch.bfloat16).T.contiguous(), padded_weights


def row_products(rows: torch.Tensor, start: int, end: int, query: torch.Tensor, block: int) -> list[torch.Tensor]:
    """`rows[start:end] @ query` in float32, in products of at most `block` rows (a power of two) whose row counts
    are powers of two: a short piece is computed on a window of `rows` around it and cut out."""
    out = []
    for piece in range(start, end, block):
        count = min(block, end - piece)
        size = min(next_power_of_two(count, MIN_ROWS), len(rows))
        window = max(0, min(piece, len(rows) - size))
        products = (rows[window : window + size] @ query).float()
        out.append(products[piece - window : piece - window + count])
    return out
