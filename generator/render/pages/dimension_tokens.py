"""Activations page: per-token values of the outlier table's dimensions over the showcase.

Page data `dimension_tokens`: {pairs: [[key, label]], examples: [text], tokens: [example]
[token], values: {key: [example][token] values}}; key "LAYER_LABEL:DIM", label as shown.
Tokens are the non-padding tokens, at most MAX_TOKENS per example.
"""

from __future__ import annotations

import numpy as np

from generator.artifacts import Artifacts
from generator.showcase_rows import showcase_texts

MAX_TOKENS = 128


def pair_key(row: dict) -> str:
    """Return the select value of an outlier row's (layer, dimension)."""
    return f"{row['layer_label']}:{row['dim']}"


def dimension_tokens(artifacts: Artifacts, outliers: list[dict]) -> dict | None:
    """Return the per-token values of every (layer, dimension) of `outliers`, or None."""
    if not outliers or not artifacts.has("showcase/hidden_states"):
        return None
    hidden = artifacts.array("showcase/hidden_states")  # [example, layer, token, d_model]
    mask = np.asarray(artifacts.array("showcase/attention_mask")).astype(bool)
    tokens = artifacts.array("showcase/tokens")
    lengths = np.minimum(mask.sum(axis=1), MAX_TOKENS)
    pairs, values = [], {}
    for row in outliers:
        key = pair_key(row)
        if key in values:
            continue
        pairs.append([key, f"{row['layer_label']} · dimension {row['dim']}"])
        block = np.asarray(hidden[:, row["layer"], :, row["dim"]], dtype=np.float64)
        values[key] = [
            [float(f"{v:.4g}") for v in block[e, : lengths[e]]] for e in range(len(block))
        ]
    return {
        "pairs": pairs,
        "examples": [item.text for item in showcase_texts(artifacts)],
        "tokens": [[str(t) for t in tokens[e, : lengths[e]]] for e in range(len(lengths))],
        "values": values,
    }


def first_rows(data: dict) -> list[dict]:
    """Return the chart rows of the first pair and example (mirrors `dimensionRows`)."""
    key = data["pairs"][0][0]
    return [
        {"position": i, "token_label": f"{i:04d} {token}", "value": value}
        for i, (token, value) in enumerate(
            zip(data["tokens"][0], data["values"][key][0], strict=True)
        )
    ]
