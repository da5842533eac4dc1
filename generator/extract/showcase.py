"""Choose the showcase examples that keep full per-token captures."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from generator.extract import sharding
from generator.extract.batching import pad_rows


def choose_showcase(
    n_texts: int,
    count: int,
    labels: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
) -> np.ndarray:
    """Return sorted corpus indices of up to `count` showcase examples.

    Held-out rows (split `validation` or `test`) are preferred when a split exists, so the
    showcase shows examples no probe was trained on; labels are taken round-robin in sorted
    order so every label is represented; within a label, corpus order decides. Deterministic.
    """
    rows = np.arange(n_texts)
    if splits is not None:
        held_out = np.array([split in ("validation", "test") for split in splits])
        if held_out.any():
            rows = rows[held_out]
    if labels is None:
        return np.sort(rows[:count])
    by_label: dict[str, list[int]] = {}
    for row in rows:
        by_label.setdefault(str(labels[row]), []).append(int(row))
    queues = [by_label[label] for label in sorted(by_label)]
    chosen: list[int] = []
    depth = 0
    while len(chosen) < min(count, len(rows)):
        for queue in queues:
            if depth < len(queue) and len(chosen) < count:
                chosen.append(queue[depth])
        depth += 1
    return np.sort(np.array(chosen, dtype=np.int64))


def showcase_batch(tokens, showcase: np.ndarray, width: int, pad_id: int, mesh):
    """Return padded showcase ids and mask [example(rounded to the data axis), token]."""
    rows = sharding.round_up(len(showcase), sharding.data_size(mesh))
    return pad_rows([tokens.ids[r] for r in showcase], width, rows, pad_id)
