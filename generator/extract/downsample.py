"""Downsample a weight matrix for a heatmap, keeping its extremes visible.

Block max-abs pooling: the [rows, cols] matrix is cut into blocks of ceil(rows / limit) ×
ceil(cols / limit) entries (the last row/column of blocks may be smaller), and each block is
replaced by its entry of largest magnitude, sign kept. An outlier weight therefore survives
downsampling at its block's position instead of being averaged away, and a head's band of
columns stays a band. Matrices already within `limit` × `limit` are returned unchanged.
"""

from __future__ import annotations

import numpy as np

HEATMAP_LIMIT = 96


def block_shape(rows: int, cols: int, limit: int = HEATMAP_LIMIT) -> tuple[int, int]:
    """Return the (block rows, block cols) that bring a matrix to at most limit × limit."""
    return max(1, -(-rows // limit)), max(1, -(-cols // limit))


def max_abs_pool(matrix: np.ndarray, limit: int = HEATMAP_LIMIT) -> np.ndarray:
    """Return the signed max-abs pooled matrix, [ceil(rows/br), ceil(cols/bc)] float32.

    Args:
        matrix: 2-D [rows, cols] array.
        limit: the largest output side.
    """
    matrix = np.asarray(matrix, dtype=np.float32)
    rows, cols = matrix.shape
    br, bc = block_shape(rows, cols, limit)
    out_r, out_c = -(-rows // br), -(-cols // bc)
    padded = np.zeros((out_r * br, out_c * bc), dtype=np.float32)  # |0| never beats a real entry
    padded[:rows, :cols] = matrix
    blocks = padded.reshape(out_r, br, out_c, bc).transpose(0, 2, 1, 3).reshape(out_r, out_c, -1)
    pick = np.argmax(np.abs(blocks), axis=-1)
    return np.take_along_axis(blocks, pick[..., None], axis=-1)[..., 0]
