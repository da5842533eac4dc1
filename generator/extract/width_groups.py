"""Split a batch of texts into at most two width groups, when the padding saved pays a compile.

Attribution programs run a batch at its longest text's `trimmed_width`; the shorter texts' padding
is wasted work. Each text's result depends on its own tokens only (padded keys get no attention,
pooling skips padding), so running the short texts apart at their own width changes nothing but
float rounding. Every extra width compiles its programs again (1-3 s each for a bert-base-size
model on a CPU), so a batch is split only when the FLOPs saved reach `MIN_SAVED_FLOPS`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from generator.extract.batching import trimmed_width

# ~5 s of a 2-core CPU's matmul rate: more than the extra programs of a second width compile in.
MIN_SAVED_FLOPS = 1e12


def width_groups(
    lengths: np.ndarray,
    limit: int,
    cost: Callable[[int, int], float],
    min_saved: float | None = None,
) -> list[tuple[np.ndarray, int]]:
    """Group rows by trimmed width into one or two groups of the cheapest total cost.

    Args:
        lengths: [row] real token counts.
        limit: the widest width allowed (the batch's padded width).
        cost: FLOPs of running `rows` texts at `width` tokens, (rows, width) -> FLOPs.
        min_saved: the FLOPs a split must save over one group (None: `MIN_SAVED_FLOPS`).

    Returns:
        (row indices, width) per group, narrowest first; one group of every row at the
        batch's trimmed width when splitting does not save `min_saved`.
    """
    widths = np.array([trimmed_width(int(n), limit) for n in lengths])
    whole = [(np.arange(len(widths)), int(widths.max()))]
    best, best_cost = whole, cost(len(widths), int(widths.max()))
    single = best_cost
    for split in sorted(set(widths.tolist()))[:-1]:  # narrow group: widths <= split
        narrow = np.flatnonzero(widths <= split)
        wide = np.flatnonzero(widths > split)
        total = cost(len(narrow), split) + cost(len(wide), int(widths.max()))
        if total < best_cost:
            best, best_cost = [(narrow, int(split)), (wide, int(widths.max()))], total
    min_saved = MIN_SAVED_FLOPS if min_saved is None else min_saved
    return best if single - best_cost >= min_saved else whole
