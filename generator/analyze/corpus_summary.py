"""Corpus summary tables: token-length histogram and label counts."""

from __future__ import annotations

from collections import Counter

import numpy as np


def length_histogram(
    lengths: np.ndarray, splits: np.ndarray | None, max_length: int, n_bins: int = 24
) -> list[dict]:
    """Histogram of token counts per text as rows {start, end, split, texts}.

    Bins are integer-aligned and cover 1..max(lengths); texts at max_length were truncated.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    top = int(max(lengths.max(), 1))
    width = max(1, int(np.ceil(top / n_bins)))
    edges = np.arange(0, top + width + 1, width)
    groups = np.asarray(splits) if splits is not None else np.array(["all"] * len(lengths))
    rows = []
    for group in sorted(set(groups.tolist())):
        counts, _ = np.histogram(lengths[groups == group], bins=edges)
        for start, count in zip(edges[:-1], counts, strict=True):
            if count:
                rows.append(
                    {
                        "start": int(start),
                        "end": int(start + width),
                        "split": str(group),
                        "texts": int(count),
                    }
                )
    return rows


def label_counts(labels: np.ndarray | None, splits: np.ndarray | None) -> list[dict]:
    """Return rows {label, split, texts}, sorted by label then split."""
    if labels is None:
        return []
    groups = splits if splits is not None else ["all"] * len(labels)
    counts = Counter(zip((str(x) for x in labels), (str(s) for s in groups), strict=True))
    return [
        {"label": label, "split": split, "texts": n} for (label, split), n in sorted(counts.items())
    ]


def corpus_facts(lengths: np.ndarray, full_lengths: np.ndarray, max_length: int) -> dict:
    """Return headline numbers: texts, tokens, mean/median/max length, truncated texts."""
    lengths = np.asarray(lengths)
    return {
        "texts": int(len(lengths)),
        "tokens": int(lengths.sum()),
        "mean_length": round(float(lengths.mean()), 1),
        "median_length": float(np.median(lengths)),
        "max_length_seen": int(np.max(full_lengths)),
        "max_length": int(max_length),
        "truncated": int(np.sum(np.asarray(full_lengths) > max_length)),
    }
