"""Heads page section of an encoder-decoder: decoder self-attention and cross-attention metrics.

The page's main sections show the encoder's self-attention over the whole corpus; this section
shows the other two kinds over the showcase examples (the only texts with decoder targets).
"""

from __future__ import annotations

from generator.extract.head_metrics import CROSS_UNDEFINED
from generator.render.charts import heads as charts
from generator.render.pages.common import chart

KINDS = (
    ("decoder", "Decoder self-attention"),
    ("cross", "Cross-attention (decoder queries, encoder keys)"),
)
UNDEFINED_WHY = (
    "they compare a query's position with a key's, but cross-attention's queries are decoder "
    "positions and its keys encoder positions, two different sequences"
)


def kind_cells(rows: list[dict], metric: str, label: str) -> list[dict]:
    """Return the heatmap rows {layer, head, value, metric} (as `kindCells` in heads_seq2seq.js)."""
    return [
        {"layer": r["layer"], "head": r["head"], "value": r[metric], "metric": label}
        for r in rows
        if r[metric] is not None
    ]


def seq2seq_section(tables: dict, meaning: list[dict], n_heads: int, examples: int):
    """Return (page data, chart) of the decoder/cross section, or (None, None) without tables."""
    kinds = [(kind, label) for kind, label in KINDS if tables.get(f"head_metrics_{kind}")]
    if not kinds:
        return None, None
    labels = {m["name"]: m["label"] for m in meaning}
    data = {
        "kinds": [{"id": kind, "label": label} for kind, label in kinds],
        "rows": {kind: tables[f"head_metrics_{kind}"] for kind, _ in kinds},
        "labels": labels,
        "undefined": [labels[m] for m in CROSS_UNDEFINED if m in labels],
        "undefined_why": UNDEFINED_WHY,
        "examples": examples,
    }
    first_kind, first_metric = kinds[0][0], meaning[0]["name"]
    cells = kind_cells(data["rows"][first_kind], first_metric, labels[first_metric])
    figure = charts.metric_heatmap_chart(cells, n_heads)
    figure["title"] = f"{kinds[0][1]}: {labels[first_metric]}"
    heatmap = chart(
        "heads-seq2seq",
        charts.metric_heatmap_chart([], n_heads, dataset="rows"),
        "Heatmap of the selected metric for every head of the selected decoder attention",
        "The selected metric for every head (columns) of every decoder layer (rows), for the "
        "decoder's self-attention or its cross-attention, averaged over the showcase examples.",
        interactive=True,
        figure_spec=figure if cells else None,
    )
    return data, heatmap
