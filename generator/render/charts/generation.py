"""Charts of the attention page's time steps: one step's attention row, next-token
predictions and logit lens. Each reads the named dataset `rows`, which the page swaps."""

from __future__ import annotations

import altair as alt

from generator.render.charts.common import to_spec

ROWS = "rows"
PREFIX_WIDTH = 760
LABEL = "substring(datum.value, 5)"  # "NNNN token" labels sort by position, show the token


def _with_rows(chart: alt.TopLevelMixin, rows: list[dict]) -> dict:
    """Return the chart's spec holding `rows` as its `rows` dataset."""
    spec = to_spec(chart)
    spec["datasets"] = {ROWS: rows}
    return spec


def step_attention_chart(rows: list[dict], title: str = "attention weight") -> dict:
    """Bars: the fed token's attention over the prefix (one head of one layer).

    Rows: {key: "NNNN token", weight, new: "fed token" | "earlier token" | "encoder token"}.
    """
    chart = (
        alt.Chart(alt.NamedData(ROWS))
        .mark_bar()
        .encode(
            x=alt.X(
                "key:O",
                title="key (attended-to token, in order)",
                axis=alt.Axis(labelAngle=-60, labelExpr=LABEL, labelLimit=90),
            ),
            y=alt.Y("weight:Q", title=title, scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("new:N", title="token", scale=alt.Scale(scheme="tableau10")),
            tooltip=[
                alt.Tooltip("key:O", title="key"),
                alt.Tooltip("weight:Q", title="attention weight", format=".3f"),
            ],
        )
        .properties(width=PREFIX_WIDTH, height=180)
    )
    return _with_rows(chart, rows)


def predictions_chart(rows: list[dict]) -> dict:
    """Horizontal bars: the step's 10 most probable next tokens and their probabilities.

    Rows: {rank, label: "N. token", prob, chosen: "greedy choice" | "other"}.
    """
    chart = (
        alt.Chart(alt.NamedData(ROWS))
        .mark_bar()
        .encode(
            y=alt.Y("label:N", title="next token (rank. token)", sort=alt.SortField("rank")),
            x=alt.X("prob:Q", title="probability", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color(
                "chosen:N",
                title="",
                scale=alt.Scale(domain=["greedy choice", "other"], range=["#e45756", "#4c78a8"]),
            ),
            tooltip=[
                alt.Tooltip("label:N", title="token"),
                alt.Tooltip("prob:Q", title="probability", format=".4f"),
            ],
        )
        .properties(width=360, height=alt.Step(18))
    )
    return _with_rows(chart, rows)


def lens_chart(rows: list[dict], n_ranks: int = 5) -> dict:
    """Layer × rank grid: each layer's top tokens for the fed position and their probability.

    Rows: {layer, rank, token, prob}; layer 0 is the embedding output, the last the model's.
    """
    base = alt.Chart(alt.NamedData(ROWS)).encode(
        x=alt.X(
            "rank:O", title="rank of the prediction", scale=alt.Scale(domain=list(range(n_ranks)))
        ),
        y=alt.Y("layer:O", title="layer (0 = embeddings)", sort="descending"),
        tooltip=[
            alt.Tooltip("layer:O", title="layer"),
            alt.Tooltip("rank:O", title="rank"),
            alt.Tooltip("token:N", title="token"),
            alt.Tooltip("prob:Q", title="probability", format=".4f"),
        ],
    )
    cells = base.mark_rect().encode(
        color=alt.Color(
            "prob:Q", title="probability", scale=alt.Scale(domain=[0, 1], scheme="greens")
        )
    )
    text = base.mark_text(fontSize=11, limit=70).encode(
        text="token:N",
        color=alt.condition("datum.prob > 0.5", alt.value("white"), alt.value("black")),
    )
    chart = (cells + text).properties(width=alt.Step(80), height=alt.Step(22))
    return _with_rows(chart, rows)
