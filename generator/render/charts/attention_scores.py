"""Chart of the attention scores before the softmax (the attention page's scores view)."""

from __future__ import annotations

import altair as alt

from generator.render.charts.attention import heatmap_step, token_axes
from generator.render.charts.common import DENSE_MARK, to_spec

ROWS = "rows"
SCORE_TIP = ("query", "key", "score before the softmax", "seen by the softmax")


def score_heatmap_chart(cells: list[dict], n_queries: int = 0, n_keys: int = 0) -> dict:
    """Query × key heatmap of one head's scores; the page swaps the `rows` dataset.

    Rows: {query, key, score, visible, tip}: "NNNN token" labels as in the weights heatmap, the
    score before the softmax, whether the softmax sees that key (hidden keys are drawn faded),
    and the tooltip {query, key, score before the softmax, seen by the softmax} (SCORE_TIP; the
    page builds it).
    Colours diverge around a score of 0.
    """
    step = heatmap_step(n_keys)
    chart = (
        alt.Chart(alt.NamedData(ROWS))
        .mark_rect(**DENSE_MARK)
        .encode(
            **token_axes(),
            color=alt.Color(
                "score:Q",
                title="score",
                scale=alt.Scale(scheme="redblue", reverse=True, domainMid=0),
                legend=alt.Legend(gradientLength=220),
            ),
            opacity=alt.condition("datum.visible", alt.value(1.0), alt.value(0.25)),
        )
        .properties(width=step * max(n_keys, 1), height=step * max(n_queries, 1))
    )
    spec = to_spec(chart)
    spec["datasets"] = {ROWS: cells}
    return spec
