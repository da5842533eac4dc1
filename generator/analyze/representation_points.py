"""Per-text details of the representation maps: the probe's predictions and nearest neighbours.

Tables (card's own model only):
  representation_predictions: {rows: [evaluated] corpus rows, truth: [evaluated] labels,
    predicted: [{pooling, layer, labels: [evaluated] held-out linear-probe predictions}]}
  representation_neighbours: {pooling, k, layers: [layer][text][k] corpus rows of the k
    nearest other texts by cosine similarity of their pooled embeddings}
"""

from __future__ import annotations

import numpy as np

NEIGHBOURS = 3
CHUNK = 1024  # rows of the similarity matrix computed at once


def prediction_table(
    predicted: dict[str, list[np.ndarray]], labels: np.ndarray, evaluated: np.ndarray
) -> dict:
    """Return `representation_predictions` from per-pooling lists of per-layer predictions."""
    return {
        "rows": [int(row) for row in evaluated],
        "truth": [str(labels[row]) for row in evaluated],
        "predicted": [
            {"pooling": pooling, "layer": layer, "labels": [str(p) for p in layers[layer]]}
            for pooling, layers in predicted.items()
            for layer in range(len(layers))
        ],
    }


def nearest_neighbours(x: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """Return [text, k] rows of each text's k most cosine-similar other texts (ties: lower row).

    Args:
        x: [text, feature] embeddings of one layer.
    """
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    k = min(k, len(x) - 1)
    out = np.zeros((len(x), max(k, 0)), dtype=np.int64)
    for start in range(0, len(x), CHUNK):
        similarity = unit[start : start + CHUNK] @ unit.T
        rows = np.arange(start, start + len(similarity))
        similarity[rows - start, rows] = -np.inf  # never a text's own neighbour
        # stable sort of -similarity: equal similarities keep row order
        out[start : start + len(similarity)] = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return out


def neighbour_table(embeddings: np.ndarray, pooling: str, k: int = NEIGHBOURS) -> dict:
    """Return `representation_neighbours` of [text, layer, d_model] pooled embeddings."""
    return {
        "pooling": pooling,
        "k": min(k, max(len(embeddings) - 1, 0)),
        "layers": [
            nearest_neighbours(embeddings[:, layer], k).tolist()
            for layer in range(embeddings.shape[1])
        ],
    }


def misclassified(table: dict, pooling: str, layer: int) -> list[dict]:
    """Return [{row, truth, predicted}] of the evaluated texts the probe gets wrong there."""
    for entry in table.get("predicted", []):
        if entry["pooling"] == pooling and entry["layer"] == layer:
            return [
                {"row": row, "truth": truth, "predicted": guess}
                for row, truth, guess in zip(
                    table["rows"], table["truth"], entry["labels"], strict=True
                )
                if truth != guess
            ]
    return []
