"""Strings as the artifacts store them: fixed-width unicode arrays, readable without pickle."""

from __future__ import annotations

import numpy as np

from generator.extract.tokenize import token_strings


def strings_array(values) -> np.ndarray:
    """Return a fixed-width unicode array (readable by numpy without pickle)."""
    values = [str(v) for v in values]
    width = max([1, *(len(v) for v in values)])
    return np.array(values, dtype=f"<U{width}")


def token_rows(tokenizer, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Return [example, token] token strings, "" on padding."""
    text = [
        token_strings(tokenizer, row[: int(m.sum())]) + [""] * int((m == 0).sum())
        for row, m in zip(ids, mask, strict=True)
    ]
    return strings_array(sum(text, [])).reshape(ids.shape)
