"""Charts of the input and output embeddings on the weights page (static: data in the spec)."""

from __future__ import annotations

import altair as alt

from generator.render.charts.common import to_spec


def norm_histogram_chart(rows: list[dict]) -> dict:
    """Step lines: share of vocabulary rows per norm bin, one line per matrix (input / output).

    Rows: {matrix, start, end, count, share}; bins shared by both matrices.
    """
    rows = [{**row, "x": (row["start"] + row["end"]) / 2} for row in rows]
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_line(interpolate="step", strokeWidth=1.8)
        .encode(
            x=alt.X("x:Q", title="L2 norm of a token's row"),
            y=alt.Y("share:Q", title="share of the vocabulary", axis=alt.Axis(format="~%")),
            color=alt.Color("matrix:N", title=None),
            tooltip=[
                alt.Tooltip("matrix:N"),
                alt.Tooltip("start:Q", format=".4g"),
                alt.Tooltip("end:Q", format=".4g"),
                alt.Tooltip("count:Q", title="tokens", format=","),
            ],
        )
        .properties(width="container", height=220)
    )
    return to_spec(chart)


def cosine_histogram_chart(rows: list[dict]) -> dict:
    """Bars: tokens per bin of the cosine between their input and output embedding rows.

    Rows: {start, end, count, share} over [-1, 1].
    """
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar()
        .encode(
            x=alt.X(
                "start:Q",
                bin="binned",
                scale=alt.Scale(domain=[-1, 1]),
                title="cosine(input row, output row) of the same token",
            ),
            x2="end:Q",
            y=alt.Y("count:Q", title="tokens"),
            tooltip=[
                alt.Tooltip("start:Q", format=".3f"),
                alt.Tooltip("end:Q", format=".3f"),
                alt.Tooltip("count:Q", title="tokens", format=","),
            ],
        )
        .properties(width="container", height=200)
    )
    return to_spec(chart)
