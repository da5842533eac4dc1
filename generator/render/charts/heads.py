"""Charts of the heads page: metric heatmap, head map, per-layer summaries, query/key geometry."""

from __future__ import annotations

import altair as alt

from generator.render.charts.common import thinned_axis, to_spec
from generator.render.theme import CATEGORY_COLORS

HEATMAP_DATASET = "cells"
QK_DATASET = "points"
QK_KIND_COLORS = {"query": "#e45756", "key": "#4c78a8"}


def metric_heatmap_chart(cells: list[dict], n_heads: int, dataset: str = HEATMAP_DATASET) -> dict:
    """Layer x head heatmap of one metric; the page swaps the `dataset` {layer, head, value}."""
    size = max(16, min(36, 720 // max(n_heads, 1)))
    chart = (
        alt.Chart(alt.NamedData(dataset))
        .mark_rect()
        .encode(
            x=alt.X("head:O", title="head", axis=alt.Axis(labelAngle=0, orient="top")),
            y=alt.Y("layer:O", title="layer"),
            color=alt.Color("value:Q", title="metric value", scale=alt.Scale(scheme="viridis")),
            tooltip=[
                alt.Tooltip("metric:N", title="metric"),
                alt.Tooltip("layer:O", title="layer"),
                alt.Tooltip("head:O", title="head"),
                alt.Tooltip("value:Q", title="value", format=".4~g"),
            ],
        )
        .properties(width=alt.Step(size), height=alt.Step(size))
    )
    spec = to_spec(chart)
    spec["datasets"] = {dataset: cells}
    return spec


def head_map_chart(rows: list[dict], tooltips: list[tuple[str, str]], explained: list) -> dict:
    """Scatter of every head on the first two principal axes of its standardised metrics.

    Rows: {layer, head, x, y, cluster, METRIC...}; `tooltips` lists (field, title) of metrics.
    """
    pct = [f"{100 * (e or 0):.0f}%" for e in explained]
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_point(filled=True, size=90, opacity=0.85)
        .encode(
            x=alt.X("x:Q", title=f"principal axis 1 ({pct[0]} of variance)"),
            y=alt.Y("y:Q", title=f"principal axis 2 ({pct[1]} of variance)"),
            color=alt.Color("cluster:N", title="cluster", scale=alt.Scale(range=CATEGORY_COLORS)),
            shape=alt.Shape("cluster:N", legend=None),
            tooltip=[
                alt.Tooltip("layer:O", title="layer"),
                alt.Tooltip("head:O", title="head"),
                alt.Tooltip("cluster:N", title="cluster"),
                *(
                    alt.Tooltip(f"{field}:Q", title=title, format=".3~g")
                    for field, title in tooltips
                ),
            ],
        )
        .properties(width=560, height=380, title="Heads by metric profile")
    )
    return to_spec(chart)


SUMMARY_COLUMNS = 4  # panels per row of the per-layer summary


def layer_summary_panel(label: str) -> alt.LayerChart:
    """One metric's panel: mean over a layer's heads (line) and its min-max (band)."""
    base = (
        alt.Chart()
        .transform_filter(alt.FieldEqualPredicate(field="label", equal=label))
        .encode(x=alt.X("layer:O", title="layer", axis=thinned_axis()))
    )
    band = base.mark_area(opacity=0.25).encode(y=alt.Y("min:Q", title=None), y2=alt.Y2("max:Q"))
    line = base.mark_line(point=True).encode(
        y=alt.Y("mean:Q", title=None),
        tooltip=[
            alt.Tooltip("label:N", title="metric"),
            alt.Tooltip("layer:O", title="layer"),
            alt.Tooltip("mean:Q", title="mean over heads", format=".3~g"),
            alt.Tooltip("min:Q", title="lowest head", format=".3~g"),
            alt.Tooltip("max:Q", title="highest head", format=".3~g"),
        ],
    )
    return alt.layer(band, line).properties(width=170, height=110, title=label)


def layer_summary_chart(rows: list[dict]) -> dict:
    """Small multiples, one per metric: mean over a layer's heads (line) and min-max (band).

    Rows: {layer, label, mean, min, max}; panels follow the rows' order of labels. The panels
    are concatenated, not faceted: a wrapped facet draws the x axes under every column, so a
    last row that is not full shows axes of panels that do not exist.
    """
    order = list(dict.fromkeys(row["label"] for row in rows))
    chart = alt.concat(
        *(layer_summary_panel(label) for label in order),
        columns=SUMMARY_COLUMNS,
        data=alt.Data(values=rows),
    ).resolve_scale(y="independent")
    return to_spec(chart)


def qk_chart(color_by: str) -> dict:
    """Joint 2-D map of one head's queries and keys; the page swaps the `points` dataset.

    Points: {x, y, kind, token, position, example, text}. Colour by `kind` (query or key) or
    by `position` (token index); the shape always tells queries from keys.
    """
    if color_by == "kind":
        color = alt.Color(
            "kind:N",
            title="vector",
            scale=alt.Scale(domain=list(QK_KIND_COLORS), range=list(QK_KIND_COLORS.values())),
        )
    elif color_by == "position":
        color = alt.Color("position:Q", title="token position", scale=alt.Scale(scheme="viridis"))
    else:
        raise ValueError(f"color_by must be 'kind' or 'position', not {color_by!r}")
    chart = (
        alt.Chart(alt.NamedData(QK_DATASET))
        .mark_point(filled=True, size=45, opacity=0.8)
        .encode(
            x=alt.X("x:Q", title="joint principal axis 1", scale=alt.Scale(domain=[-1, 1])),
            y=alt.Y("y:Q", title="joint principal axis 2", scale=alt.Scale(domain=[-1, 1])),
            color=color,
            shape=alt.Shape(
                "kind:N",
                title="vector",
                scale=alt.Scale(domain=["query", "key"], range=["circle", "triangle-up"]),
            ),
            tooltip=[
                alt.Tooltip("token:N", title="token"),
                alt.Tooltip("kind:N", title="vector"),
                alt.Tooltip("position:Q", title="position"),
                alt.Tooltip("text:N", title="sentence"),
            ],
        )
        .properties(width=520, height=420)
    )
    spec = to_spec(chart)
    spec["datasets"] = {QK_DATASET: []}
    return spec
