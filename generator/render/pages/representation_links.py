"""Representations page: what a map point, the search box and the misclassified list need.

Page data (added to `representations-data`): `predicted` {pooling: [layer][evaluated] label
codes} over `evaluated` rows, `neighbours` {pooling, k, layers: [layer][text][k] rows},
`showcase` [example] corpus rows (a point that is a showcase example links to its attention
and attributions).
"""

from __future__ import annotations

from generator.analyze.representation_points import misclassified
from generator.artifacts import Artifacts

MISCLASSIFIED_SHOWN = 50  # rows of the misclassified table


def link_data(artifacts: Artifacts, tables: dict, label_names: list[str]) -> dict:
    """Return the page data of point details: predictions, neighbours, showcase rows."""
    table = tables.get("representation_predictions") or {}
    code = {name: i for i, name in enumerate(label_names)}
    predicted: dict[str, list[list[int]]] = {}
    for entry in table.get("predicted", []):
        layers = predicted.setdefault(entry["pooling"], [])
        layers.append([code.get(label, -1) for label in entry["labels"]])
    rows = artifacts.array("showcase/index") if artifacts.has("showcase/index") else []
    return {
        "evaluated": table.get("rows", []),
        "predicted": predicted,
        "neighbours": tables.get("representation_neighbours") or {},
        "showcase": [int(row) for row in rows],
    }


def misclassified_view(tables: dict, texts: list[str], first: dict, summary: dict) -> dict | None:
    """Return the misclassified texts at the first view's best layer, or None without probes."""
    table = tables.get("representation_predictions") or {}
    best = summary["best"].get(first["pooling"])
    if not table or best is None:
        return None
    wrong = misclassified(table, first["pooling"], best["layer"])
    return {
        "pooling": first["pooling"],
        "layer": best["layer"],
        "evaluated": len(table["rows"]),
        "count": len(wrong),
        "rows": [{**row, "text": texts[row["row"]]} for row in wrong[:MISCLASSIFIED_SHOWN]],
    }
