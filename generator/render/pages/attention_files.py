"""The attention page's on-demand data: one file per head of each showcase example and kind.

Embedding every head's map of every example made the page hundreds of MB at 24 layers x 16
heads and 150+ tokens. The page embeds the examples' tokens and settings; each view's maps
travel in `data/` files (generator/render/datafiles.py) that the page loads when a view needs
them:

- `attention-E-KIND-L-H` (example E, attention kind, layer L, head H): `weights`, the head's
  [query, key] weights packed as on the page before (`encode_weights`: uint16 thousandths), and,
  with scores, `scores`: its [query, key] pre-softmax scores as int16 multiples of the
  example's per-kind scale (kept in the page's `scores-data`);
- `attention-grid-E-KIND`: the layer x head overview of example E: `sums`, per [layer, head,
  query block, key block] the sum of the block's packed weights (an integer; the grid draws
  sum / scale / queries in the block, the mean over the block's queries of their weight on the
  block's keys), `dtype` "u2" or "u4" (little-endian) by its largest sum.

File names mirror `headFile` / `gridFile` in attention.js. The same packed bytes as the embedded
data before: every chart draws the same values.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import numpy as np


def head_file(example: int, kind: str, layer: int, head: int) -> str:
    """Return the data file name of one head's maps (as `headFile` in attention.js)."""
    return f"attention-{example}-{kind}-{layer}-{head}"


def grid_file(example: int, kind: str) -> str:
    """Return the data file name of one example's layer x head grid (as `gridFile`)."""
    return f"attention-grid-{example}-{kind}"


def _unpack(text: str, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Return base64 little-endian `dtype` values as an array of `shape`."""
    return np.frombuffer(base64.b64decode(text), dtype=dtype).reshape(shape)


def _pack(values: np.ndarray) -> str:
    """Return the bytes of `values` (C order) as base64."""
    return base64.b64encode(np.ascontiguousarray(values).tobytes()).decode("ascii")


def block_sums(packed: np.ndarray, size_q: int, size_k: int) -> dict:
    """Return {dtype, sums}: [layer, head, query block, key block] sums of packed weights."""
    q_starts = np.arange(0, packed.shape[2], size_q)
    k_starts = np.arange(0, packed.shape[3], size_k)
    sums = np.add.reduceat(packed.astype(np.int64), q_starts, axis=2)
    sums = np.add.reduceat(sums, k_starts, axis=3)
    dtype = "<u2" if sums.max(initial=0) < 2**16 else "<u4"
    return {"dtype": dtype[1:], "sums": _pack(sums.astype(dtype))}


def attention_files(
    examples: list[dict],
    kinds: list[dict],
    n_heads: int,
    scores: list[dict] | None,
    blocks: Callable[[int], int],
) -> dict[str, dict]:
    """Return {file name: data} of every head and grid of every example and kind.

    Args:
        examples: the attention page's examples, with their packed `weights` per kind id.
        kinds: the page's kinds ({id, query, key, n_layers}).
        n_heads: heads per layer.
        scores: per example, kind id -> {scale, values} (score_section), or None.
        blocks: block size of the overview grid for a token count.
    """
    files: dict[str, dict] = {}
    for example, item in enumerate(examples):
        for kind in kinds:
            nq, nk = len(item["tokens"][kind["query"]]), len(item["tokens"][kind["key"]])
            shape = (kind["n_layers"], n_heads, nq, nk)
            weights = _unpack(item["weights"][kind["id"]], "<u2", shape)
            values = None
            if scores is not None:
                values = _unpack(scores[example][kind["id"]]["values"], "<i2", shape)
            for layer in range(kind["n_layers"]):
                for head in range(n_heads):
                    maps = {"weights": _pack(weights[layer, head])}
                    if values is not None:
                        maps["scores"] = _pack(values[layer, head])
                    files[head_file(example, kind["id"], layer, head)] = maps
            files[grid_file(example, kind["id"])] = block_sums(weights, blocks(nq), blocks(nk))
    return files


def embedded(examples: list[dict]) -> list[dict]:
    """Return the examples as the page embeds them: everything but the packed weights."""
    return [{key: value for key, value in item.items() if key != "weights"} for item in examples]
