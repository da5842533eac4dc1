"""Chart of the attention scores before the softmax (the attention page's scores view)."""

from __future__ import annotations

import altair as alt

from generator.render.charts.attention import heatmap_step, token_axes
from generator.render.charts.common import to_spec

ROWS = "rows"


def score_heatmap_chart(cells: list[dict], n_queries: int = 0, n_keys: int = 0) -> dict:
    """Query × key heatmap of one head's scores; the page swaps the `rows` dataset.

    Rows: {query, key, score, visible}: "NNNN token" labels as in the weights heatmap, the score
    before the softmax, and whether the softmax sees that key (hidden keys are drawn faded).
    Colours diverge around a score of 0.
    """
    step = heatmap_step(n_keys)
    chart = (
        alt.Chart(alt.NamedData(ROWS))
        .mark_rect()
        .encode(
            **token_axes(),
            color=alt.Color(
                "score:Q",
                title="score",
                scale=alt.Scale(scheme="redblue", reverse=True, domainMid=0),
                legend=alt.Legend(gradientLength=220),
            ),
            opacity=alt.condition("datum.visible", alt.value(1.0), alt.value(0.25)),
            tooltip=[
                alt.Tooltip("query:O", title="query"),
                alt.Tooltip("key:O", title="key"),
                alt.Tooltip("score:Q", title="score before the softmax", format=".4g"),
                alt.Tooltip("visible:N", title="seen by the softmax"),
            ],
        )
        .properties(width=step * max(n_keys, 1), height=step * max(n_queries, 1))
    )
    spec = to_spec(chart)
    spec["datasets"] = {ROWS: cells}
    return spec
