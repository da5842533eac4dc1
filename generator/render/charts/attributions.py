"""Charts of the attributions page."""

from __future__ import annotations

import altair as alt

from generator.render.charts.common import to_spec

SCORES_DATASET = "scores"
LENS_DATASET = "lens"
TOKEN_LABEL = "substring(datum.value, 5)"  # "NNNN token" -> "token"


def token_scores_chart(rows: list[dict]) -> dict:
    """Bars of one example's per-token scores (one method), diverging colour around 0.

    Rows: {token: "NNNN tok", method, score}; the page swaps the `scores` dataset.
    """
    chart = (
        alt.Chart(alt.NamedData(SCORES_DATASET))
        .mark_bar()
        .encode(
            x=alt.X(
                "token:O",
                title=None,
                sort=None,
                axis=alt.Axis(labelAngle=-50, labelExpr=TOKEN_LABEL, labelLimit=90),
            ),
            y=alt.Y("score:Q", title="attribution"),
            color=alt.Color(
                "score:Q",
                title="attribution",
                scale=alt.Scale(scheme="redblue", domainMid=0, reverse=True),
            ),
            tooltip=[alt.Tooltip("token:O"), alt.Tooltip("score:Q", format=".4f")],
        )
        .properties(width=alt.Step(22), height=200)
    )
    spec = to_spec(chart)
    spec["datasets"] = {SCORES_DATASET: rows}
    return spec


def head_tooltips() -> list:
    """Tooltip of one head's importance: where it is, both measures and their standard errors."""
    return [
        alt.Tooltip("kind:N", title="attention"),
        alt.Tooltip("layer:O"),
        alt.Tooltip("head:O"),
        alt.Tooltip("ablation:Q", format=".4f"),
        alt.Tooltip("ablation_se:Q", format=".4f", title="ablation SE"),
        alt.Tooltip("gradient:Q", format=".4f"),
        alt.Tooltip("gradient_se:Q", format=".4f", title="gradient SE"),
    ]


def head_heatmap_chart(rows: list[dict], field: str, title: str, signed: bool = False) -> dict:
    """Layer × head heatmap of one importance measure.

    Rows are drawn in the order given; `row` labels them (the layer, or for encoder-decoders
    the kind of attention and its layer). `signed`: a diverging scale centred on 0, symmetric
    about it (the measure may be negative); else a sequential scale from 0.
    """
    limit = max((abs(r[field]) for r in rows), default=0.0) or 1.0
    scale = (
        alt.Scale(scheme="redblue", reverse=True, domain=[-limit, limit], domainMid=0)
        if signed
        else alt.Scale(scheme="viridis", domainMin=0)
    )
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_rect()
        .encode(
            x=alt.X("head:O", title="head"),
            y=alt.Y("row:O", title="layer", sort=list(dict.fromkeys(r["row"] for r in rows))),
            color=alt.Color(f"{field}:Q", title=title, scale=scale),
            tooltip=head_tooltips(),
        )
        .properties(width=alt.Step(26), height=alt.Step(26), title=title)
    )
    return to_spec(chart)


def agreement_chart(rows: list[dict]) -> dict:
    """Ablation against gradient importance, one point per head, ± one standard error bars."""
    base = alt.Chart(alt.Data(values=rows)).transform_calculate(
        ablation_low="datum.ablation - datum.ablation_se",
        ablation_high="datum.ablation + datum.ablation_se",
        gradient_low="datum.gradient - datum.gradient_se",
        gradient_high="datum.gradient + datum.gradient_se",
    )
    x_title, y_title = "ablation importance (drop)", "gradient importance"
    across = base.mark_rule(opacity=0.45).encode(
        x=alt.X("ablation_low:Q", title=x_title), x2="ablation_high:Q", y="gradient:Q"
    )
    down = base.mark_rule(opacity=0.45).encode(
        x="ablation:Q", y=alt.Y("gradient_low:Q", title=y_title), y2="gradient_high:Q"
    )
    points = base.mark_point(filled=True, size=36).encode(
        x=alt.X("ablation:Q", title=x_title),
        y=alt.Y("gradient:Q", title=y_title),
        color=alt.Color("layer:O", title="layer", scale=alt.Scale(scheme="viridis")),
        tooltip=head_tooltips(),
    )
    return to_spec((across + down + points).properties(width=360, height=280))


def pruning_chart(rows: list[dict]) -> dict:
    """Objective against the fraction of heads removed, importance order vs random order."""
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_line(point=True)
        .encode(
            x=alt.X("fraction:Q", title="fraction of heads removed", axis=alt.Axis(format="%")),
            y=alt.Y("objective:Q", title="mean objective", scale=alt.Scale(zero=False)),
            color=alt.Color("order:N", title="removal order"),
            tooltip=[
                alt.Tooltip("order:N"),
                alt.Tooltip("fraction:Q", format=".0%"),
                alt.Tooltip("objective:Q", format=".4f"),
            ],
        )
        .properties(width=420, height=240, title="Pruning curve")
    )
    return to_spec(chart)


def lens_chart(rows: list[dict]) -> dict:
    """Layer × position: probability of the final prediction, with each layer's top-1 token.

    Rows: {layer, token: "NNNN tok", top, top_prob, final, final_rank, final_prob}.
    """
    base = alt.Chart(alt.NamedData(LENS_DATASET)).encode(
        x=alt.X(
            "token:O",
            title=None,
            sort=None,
            axis=alt.Axis(orient="top", labelAngle=-50, labelExpr=TOKEN_LABEL, labelLimit=90),
        ),
        y=alt.Y("layer:O", title="layer (0 = embeddings)"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color(
            "final_prob:Q",
            title="p(final prediction)",
            scale=alt.Scale(domain=[0, 1], scheme="greens"),
        ),
        tooltip=[
            alt.Tooltip("layer:O"),
            alt.Tooltip("token:O", title="position"),
            alt.Tooltip("top:N", title="layer's top-1"),
            alt.Tooltip("top_prob:Q", format=".3f"),
            alt.Tooltip("final:N", title="final prediction"),
            alt.Tooltip("final_rank:Q", title="rank of final prediction"),
            alt.Tooltip("final_prob:Q", format=".3f"),
        ],
    )
    text = base.mark_text(fontSize=9, limit=44).encode(
        text="top:N",
        color=alt.condition("datum.final_prob > 0.5", alt.value("white"), alt.value("black")),
    )
    spec = to_spec(alt.layer(cells, text).properties(width=alt.Step(48), height=alt.Step(22)))
    spec["datasets"] = {LENS_DATASET: rows}
    return spec
