"""Charts of the attention page."""

from __future__ import annotations

import altair as alt

from generator.render.charts.common import to_spec
from generator.render.theme import CATEGORY_COLORS

ATTENTION_DATASET = "cells"


def attention_heatmap_chart(cells: list[dict]) -> dict:
    """Query × key heatmap of one head's attention; the page swaps the `cells` dataset in place.

    Rows: {query, key, weight}; query/key are "NNNN token" labels so repeated tokens stay
    distinct and sort in sequence order; the axis shows only the token.
    """
    label = "substring(datum.value, 5)"
    chart = (
        alt.Chart(alt.NamedData(ATTENTION_DATASET))
        .mark_rect()
        .encode(
            x=alt.X(
                "key:O",
                title="key (attended-to token)",
                axis=alt.Axis(orient="top", labelAngle=-60, labelExpr=label, labelLimit=90),
            ),
            y=alt.Y(
                "query:O",
                title="query (attending token)",
                axis=alt.Axis(labelExpr=label, labelLimit=90),
            ),
            color=alt.Color(
                "weight:Q", title="attention weight", scale=alt.Scale(domain=[0, 1], scheme="blues")
            ),
            tooltip=[
                alt.Tooltip("query:O", title="query"),
                alt.Tooltip("key:O", title="key"),
                alt.Tooltip("weight:Q", title="weight", format=".3f"),
            ],
        )
        .properties(width=alt.Step(16), height=alt.Step(16))
    )
    spec = to_spec(chart)
    spec["datasets"] = {ATTENTION_DATASET: cells}
    return spec


HEAD_VIEW_DATASETS = ("lines", "left", "right")
OVERVIEW_DATASET = "grid"
EXTRA_HEAD_COLORS = [
    "#1b9e77",
    "#7570b3",
    "#d95f02",
    "#66a61e",
    "#e7298a",
    "#a6761d",
    "#17becf",
    "#8c564b",
    "#bcbd22",
    "#393b79",
]


def head_colors(n_heads: int) -> list[str]:
    """Return one colour per head (20 distinct colours, repeated beyond)."""
    palette = CATEGORY_COLORS + EXTRA_HEAD_COLORS
    return [palette[head % len(palette)] for head in range(n_heads)]


def head_view_chart(n_heads: int, width: int = 540) -> dict:
    """Token-to-token lines between two token columns (the bertviz head view).

    Datasets the page fills: `lines` {src, dst, head, weight} (one line per query -> key weight),
    `left` / `right` {src|dst, token}. Opacity is the weight, colour the head; hovering a token
    on the left keeps only its lines.
    """
    left_x, right_x = 130, width - 130
    focus = alt.selection_point(
        name="focus", fields=["src"], on="pointerover", clear="pointerout", empty=True
    )
    y_src = alt.Y("src:O", axis=None, title=None)
    lines = (
        alt.Chart(alt.NamedData("lines"))
        .mark_rule(strokeWidth=2)
        .encode(
            x=alt.value(left_x),
            x2=alt.value(right_x),
            y=y_src,
            y2=alt.Y2("dst:O"),
            color=alt.Color(
                "head:N",
                title="head",
                scale=alt.Scale(domain=list(range(n_heads)), range=head_colors(n_heads)),
            ),
            # strokeOpacity, not opacity: SVG renderers composite an element with `opacity` in
            # a layer of its own, which makes thousands of lines take a minute to rasterise.
            strokeOpacity=alt.condition(
                focus,
                alt.StrokeOpacity(
                    "weight:Q", scale=alt.Scale(domain=[0, 1], range=[0, 1]), legend=None
                ),
                alt.value(0.0),
            ),
            tooltip=[
                alt.Tooltip("head:N", title="head"),
                alt.Tooltip("from:N", title="query"),
                alt.Tooltip("to:N", title="key"),
                alt.Tooltip("weight:Q", title="weight", format=".3f"),
            ],
        )
    )
    left = (
        alt.Chart(alt.NamedData("left"))
        .mark_text(align="right", baseline="middle", fontSize=12, cursor="pointer")
        .encode(x=alt.value(left_x - 6), y=y_src, text="token:N")
        .add_params(focus)
    )
    right = (
        alt.Chart(alt.NamedData("right"))
        .mark_text(align="left", baseline="middle", fontSize=12)
        .encode(x=alt.value(right_x + 6), y=alt.Y("dst:O", axis=None), text="token:N")
    )
    chart = (
        alt.layer(lines, left, right)
        .resolve_scale(y="shared")
        .properties(width=width, height=alt.Step(18))
    )
    spec = to_spec(chart)
    spec["datasets"] = {name: [] for name in HEAD_VIEW_DATASETS}
    return spec


def attention_overview_chart(n_layers: int, n_heads: int) -> dict:
    """Every layer x head of one example as small heatmaps (rows: layers, columns: heads).

    Dataset `grid` {layer, head, q, k, weight, query, key}: q/k are cell indices (token blocks
    when the page downsamples a long example), query/key their token labels for the tooltip.
    """
    size = max(28, min(64, 900 // max(n_heads, 1)))
    cells = (
        alt.Chart()
        .mark_rect()
        .encode(
            x=alt.X("k:O", axis=None),
            y=alt.Y("q:O", axis=None),
            color=alt.Color(
                "weight:Q",
                title="attention weight",
                scale=alt.Scale(domain=[0, 1], scheme="blues"),
            ),
            tooltip=[
                alt.Tooltip("layer:O", title="layer"),
                alt.Tooltip("head:O", title="head"),
                alt.Tooltip("query:N", title="query"),
                alt.Tooltip("key:N", title="key"),
                alt.Tooltip("weight:Q", title="weight", format=".3f"),
            ],
        )
        .properties(width=size, height=size)
    )
    chart = cells.facet(
        row=alt.Row("layer:O", title="layer", header=alt.Header(labelOrient="left")),
        column=alt.Column("head:O", title="head"),
        data=alt.NamedData(OVERVIEW_DATASET),
        spacing=4,
    )
    spec = to_spec(chart)
    spec["datasets"] = {OVERVIEW_DATASET: []}
    return spec
