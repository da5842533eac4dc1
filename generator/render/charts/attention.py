"""Charts of the attention page."""

from __future__ import annotations

import altair as alt

from generator.render.charts.common import to_spec

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
