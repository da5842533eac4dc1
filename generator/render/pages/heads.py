"""Heads page: corpus-wide per-head attention metrics and the query/key geometry of each head."""

from __future__ import annotations

from generator.analyze.heads import definitions
from generator.artifacts import Artifacts
from generator.render.charts import heads as charts
from generator.render.pages.common import Page, chart
from generator.render.pages.heads_seq2seq import seq2seq_section


def format_value(value: float | None) -> str:
    """Format a metric for the table: 3 decimals below 1, 3 significant digits up to 100."""
    if value is None:
        return "n/a"
    if abs(value) < 1:
        return f"{value:.3f}"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def table_rows(rows: list[dict], clusters: list[dict], metrics: list[str]) -> list[dict]:
    """Return rows {layer, head, cluster, cells[{value, text}]} for the sortable table."""
    cluster_of = {(c["layer"], c["head"]): c["cluster"] for c in clusters}
    return [
        {
            "layer": row["layer"],
            "head": row["head"],
            "cluster": cluster_of.get((row["layer"], row["head"]), 0),
            "cells": [
                {"value": "" if row[m] is None else row[m], "text": format_value(row[m])}
                for m in metrics
            ],
        }
        for row in rows
    ]


def metric_cells(rows: list[dict], metric: str, label: str) -> list[dict]:
    """Return the heatmap dataset of one metric: {layer, head, value, metric}."""
    return [
        {"layer": r["layer"], "head": r["head"], "value": r[metric], "metric": label}
        for r in rows
        if r[metric] is not None
    ]


def metric_charts(tables: dict, metrics: list[str], labels: dict, n_heads: int) -> list[dict]:
    """The metric heatmap, head map and per-layer summary charts."""
    rows = tables["head_metrics"]
    first = metrics[0]
    info = tables["head_cluster_info"]
    metric_of = {(r["layer"], r["head"]): r for r in rows}
    points = [{**metric_of[(c["layer"], c["head"])], **c} for c in tables["head_clusters"]]
    summary = [{**row, "label": labels[row["metric"]]} for row in tables["head_layer_summary"]]
    return [
        chart(
            "heads-heatmap",
            charts.metric_heatmap_chart(metric_cells(rows, first, labels[first]), n_heads),
            "Heatmap of the selected metric for every layer and head",
            "The selected metric for every head (columns) of every layer (rows), averaged over "
            "the whole corpus. Click a cell to open that head on the attention page.",
            interactive=True,
        ),
        chart(
            "heads-map",
            charts.head_map_chart(points, [(m, labels[m]) for m in metrics], info["explained"]),
            "Scatter plot of every head on two principal axes of its metric profile, "
            "coloured by cluster",
            f"Each point is a head, placed by a PCA of its standardised metrics "
            f"({len(info['metrics'])} metrics with a value for every head) and coloured by "
            f"its cluster (Ward clustering, {info['clusters']} clusters chosen by silhouette). "
            "Nearby heads attend in similar ways.",
        ),
        chart(
            "heads-layers",
            charts.layer_summary_chart(summary),
            "Small line charts of each metric's mean over the heads of each layer",
            "Each metric per layer: the line is the mean over the layer's heads, the band spans "
            "its lowest to its highest head.",
        ),
    ]


def qk_points(table: dict, layer: int, head: int) -> list[dict]:
    """Return the `points` dataset of one head (mirrors `qkPoints` in heads.js)."""
    entry = next((h for h in table["heads"] if h["layer"] == layer and h["head"] == head), None)
    if entry is None:
        return []
    n = len(table["tokens"])
    points = []
    for i in range(2 * n):
        t = i % n
        text = table["texts"][table["example"][t]]
        if len(text) > 90:
            text = text[:89] + "…"
        points.append(
            {
                "x": entry["x"][i],
                "y": entry["y"][i],
                "kind": "query" if i < n else "key",
                "token": table["tokens"][t],
                "position": table["position"][t],
                "example": table["example"][t],
                "text": text,
            }
        )
    return points


def qk_figure(table: dict) -> dict:
    """Return the static figure of the page's first query/key view: layer 0, head 0."""
    spec = charts.qk_chart("kind")
    spec["datasets"] = {name: qk_points(table, 0, 0) for name in spec["datasets"]}
    spec["title"] = "Queries and keys, layer 0, head 0"
    return spec


def qk_section(tables: dict) -> tuple[dict | None, list[dict], dict | None]:
    """Return (page data, charts, alternative spec) of the query/key geometry section."""
    table = tables.get("qk_geometry")
    if not table or not table["heads"]:
        return None, [], None
    figure = chart(
        "qk-geometry",
        charts.qk_chart("kind"),
        "Scatter plot of the selected head's query and key vectors on two joint principal axes",
        "Queries (circles) and keys (triangles) of the showcase tokens for the selected head, "
        "projected together by PCA after shifting the keys onto the queries' mean and equalising "
        "their mean norms (neither changes the attention). Queries tend to lie near the keys "
        "they attend to most.",
        interactive=True,
        figure_spec=qk_figure(table),
    )
    return table, [figure], charts.qk_chart("position")


def heads_context(artifacts: Artifacts, tables: dict) -> dict:
    """Context of the heads page: metric data, charts, table rows, query/key geometry."""
    config = artifacts.manifest["model"]["config"]
    attention = artifacts.manifest.get("attention") or {}
    qk, qk_charts, qk_position = qk_section(tables)
    context = {
        "heads": None,
        "no_metrics_reason": (
            "this card names no corpus; add a corpus to the card and rebuild to see what every "
            "head does"
            if not artifacts.manifest.get("corpus")
            else "these artifacts hold no per-head metrics (they predate the metrics, or the "
            "card's `analyses` leaves out heads: rebuild with --force)"
        ),
        "qk": qk,
        "qk_position_spec": qk_position,
        "n_layers": config["n_layers"],
        "n_heads": config["n_heads"],
        "seq2seq_heads": None,
        "seq2seq_chart": None,
        "charts": list(qk_charts),  # every chart of the page, for the figure export
        "qk_charts": qk_charts,
    }
    if not tables.get("head_metrics"):
        return context
    metrics = list(attention.get("head_metrics") or [])
    meaning = definitions(metrics, attention.get("sparsity_threshold", 0.01))
    labels = {d["name"]: d["label"] for d in meaning}
    context["heads"] = {
        "metrics": meaning,
        "rows": tables["head_metrics"],
        "table": table_rows(tables["head_metrics"], tables["head_clusters"], metrics),
        "profiles": tables["head_cluster_info"]["profiles"],
        "causal": bool(attention.get("causal", False)),
        "texts": int((artifacts.manifest.get("corpus") or {}).get("n_texts", 0)),
    }
    context["charts"] = metric_charts(tables, metrics, labels, config["n_heads"]) + qk_charts
    examples = len(artifacts.array("showcase/index")) if artifacts.has("showcase/index") else 0
    s2s, s2s_chart = seq2seq_section(tables, meaning, config["n_heads"], examples)
    context["seq2seq_heads"], context["seq2seq_chart"] = s2s, s2s_chart
    context["charts"] += [s2s_chart] if s2s_chart else []
    return context


PAGE = Page(
    "heads.html",
    "Heads",
    "model_heads.html",
    heads_context,
    scripts=("heads.js", "selectors.js", "heads_seq2seq.js"),
    analysis="heads",
)
