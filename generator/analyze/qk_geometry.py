"""Query/key geometry per head (the AttentionViz idea): one joint 2-D PCA of queries and keys.

For each head, the query and key vectors of the showcase tokens are projected together onto the
first two principal axes of their union, after two changes that leave every attention pattern
unchanged (AttentionViz, Yeh et al. 2023):
  translation  keys are shifted so their mean equals the queries' mean; q·(k + c) differs from
               q·k by q·c, the same for every key of a query, which softmax ignores;
  scaling      queries are divided and keys multiplied by one factor so both have the same mean
               norm; every dot product q·k stays the same.
Near points then mean "this query attends to this key" rather than an artefact of offsets.

Input: showcase/queries, showcase/keys [example, layer, head, token, d_head], attention_mask,
tokens. Table `qk_geometry`: {tokens, example, position, texts, labels, points_per_head,
total_tokens, heads: [{layer, head, explained, x, y}]} where x/y list the queries first, then
the keys, of the same tokens, scaled to [-1, 1] and rounded.
"""

from __future__ import annotations

import numpy as np

from generator.artifacts import Artifacts
from generator.showcase_rows import showcase_texts

COORDINATE_BUDGET = 160_000  # x and y numbers over all heads (about 1 MB of JSON)
DIGITS = 3


def align_keys(queries: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Translate keys onto the queries' mean and equalise mean norms; q·k patterns unchanged."""
    keys = keys - keys.mean(axis=0) + queries.mean(axis=0)
    q_norm = float(np.mean(np.linalg.norm(queries, axis=1)))
    k_norm = float(np.mean(np.linalg.norm(keys, axis=1)))
    if q_norm > 0 and k_norm > 0:
        factor = np.sqrt(q_norm / k_norm)
        queries, keys = queries / factor, keys * factor
    return queries, keys


def joint_projection(queries: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Project [token, d_head] queries and keys jointly -> ([2 * token, 2], explained ratios).

    Rows: the queries, then the keys. Coordinates are scaled so the largest magnitude is 1;
    signs are fixed (largest loading positive).
    """
    queries, keys = align_keys(np.asarray(queries, np.float64), np.asarray(keys, np.float64))
    points = np.concatenate([queries, keys])
    centred = points - points.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt[:2]
    axes = axes * np.where(np.take_along_axis(axes, np.abs(axes).argmax(1)[:, None], 1) < 0, -1, 1)
    coords = centred @ axes.T
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    scale = float(np.max(np.abs(coords))) or 1.0
    total = float(np.sum(s**2))
    explained = [float(s[j] ** 2 / total) if total > 0 and j < len(s) else 0.0 for j in range(2)]
    return coords / scale, explained


def chosen_tokens(mask: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """Return (example, position) of real tokens, examples in order, at most `limit` of them."""
    chosen = []
    for example in range(mask.shape[0]):
        for position in np.flatnonzero(mask[example] > 0):
            if len(chosen) == limit:
                return chosen
            chosen.append((example, int(position)))
    return chosen


def qk_geometry(
    queries: np.ndarray,
    keys: np.ndarray,
    mask: np.ndarray,
    tokens: np.ndarray,
    texts: list[str],
    *,
    labels: list[str],
    budget: int = COORDINATE_BUDGET,
) -> dict:
    """Build the `qk_geometry` table from showcase arrays (see the module docstring)."""
    _, layers, heads, _, _ = queries.shape
    group = max(1, heads // keys.shape[2])  # grouped-query attention: heads share a key head
    total = int((mask > 0).sum())
    per_head = max(1, budget // (4 * layers * heads))  # x and y for a query and a key
    chosen = chosen_tokens(mask, min(total, per_head))
    examples = np.array([e for e, _ in chosen])
    positions = np.array([p for _, p in chosen])
    rows = []
    for layer in range(layers):
        for head in range(heads):
            q = np.asarray(queries[examples, layer, head, positions], np.float64)
            k = np.asarray(keys[examples, layer, head // group, positions], np.float64)
            coords, explained = joint_projection(q, k)
            rows.append(
                {
                    "layer": layer,
                    "head": head,
                    "explained": [round(e, 4) for e in explained],
                    "x": np.round(coords[:, 0], DIGITS).tolist(),
                    "y": np.round(coords[:, 1], DIGITS).tolist(),
                }
            )
    return {
        "tokens": [str(tokens[e, p]) for e, p in chosen],
        "example": examples.tolist(),
        "position": positions.tolist(),
        "texts": list(texts),
        "labels": list(labels),
        "points_per_head": len(chosen),
        "total_tokens": total,
        "heads": rows,
    }


def qk_analysis(artifacts: Artifacts) -> dict:
    """Analysis entry point: the `qk_geometry` table when queries and keys were captured."""
    if not (artifacts.has("showcase/queries") and artifacts.has("showcase/keys")):
        return {}
    shown = showcase_texts(artifacts)
    table = qk_geometry(
        artifacts.array("showcase/queries"),
        artifacts.array("showcase/keys"),
        np.asarray(artifacts.array("showcase/attention_mask")),
        artifacts.array("showcase/tokens"),
        [item.text for item in shown],
        labels=[item.label for item in shown],
    )
    return {"qk_geometry": table}
