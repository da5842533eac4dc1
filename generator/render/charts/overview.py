"""Charts of the overview page: parameters per block, corpus lengths and labels."""

from __future__ import annotations

import altair as alt

from generator.render.charts.common import thinned_axis, to_spec

COMPONENT_ORDER = ("embeddings", "attention", "mlp", "norms", "pooler", "head", "lm head", "other")
LEGEND = "legend"  # the field holding a component's legend label, e.g. 'norms (0.08 %)'


def format_share(share: float) -> str:
    """Format a share of the model for a legend: two significant digits, '< 0.01 %' below."""
    percent = 100 * share
    return "< 0.01 %" if 0 < percent < 0.01 else f"{percent:.2g} %"


def with_share_legend(rows: list[dict], field: str) -> tuple[list[dict], list[str]]:
    """Label each row's component with its share of all parameters; return (rows, legend order).

    A component too small to see as a bar segment (the norms: well under 1 % of a layer)
    still names its size in the legend, so an entry without a visible bar is explained.
    """
    total = sum(row["count"] for row in rows) or 1
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[field]] = counts.get(row[field], 0) + row["count"]
    label = {name: f"{name} ({format_share(count / total)})" for name, count in counts.items()}
    rank = {name: i for i, name in enumerate(COMPONENT_ORDER)}
    order = sorted(counts, key=lambda name: (rank.get(name, len(rank)), name))
    return [{**row, LEGEND: label[row[field]]} for row in rows], [label[n] for n in order]


def thin_note(rows: list[dict], field: str, limit: float = 0.005) -> str:
    """Return a sentence naming the components under `limit` of all parameters ('' if none).

    Their bar segments are under a pixel tall, so the caption says why they cannot be seen.
    """
    total = sum(row["count"] for row in rows) or 1
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[field]] = counts.get(row[field], 0) + row["count"]
    thin = [
        f"{name} ({count:,} parameters)" for name, count in counts.items() if count / total < limit
    ]
    if not thin:
        return ""
    return f" Too few to see as bars, named in the legend with their share: {', '.join(thin)}."


def parameter_counts_chart(rows: list[dict]) -> dict:
    """Stacked bars: parameters per block (embeddings, each layer, pooler) split by component kind."""
    return block_bars(
        rows, "kind", x_title=None, height=240, title="Parameters by block and component"
    )


def block_bars(
    rows: list[dict], field: str, *, x_title: str | None, height: int, title: str
) -> dict:
    """Stacked bars of parameters per block (in `order`), split by the component in `field`."""
    blocks = list(dict.fromkeys(row["block"] for row in sorted(rows, key=lambda r: r["order"])))
    rows, legend = with_share_legend(rows, field)
    # the tooltip names the field "component" whatever the rows call it
    component = alt.Tooltip(
        f"{field}:N", **({} if field == "component" else {"title": "component"})
    )
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar()
        .encode(
            x=alt.X("block:N", sort=blocks, title=x_title, axis=thinned_axis()),
            y=alt.Y("sum(count):Q", title="parameters", axis=alt.Axis(format="~s")),
            color=alt.Color(
                f"{LEGEND}:N",
                title="component (share of all parameters)",
                sort=legend,
                legend=alt.Legend(titleLimit=0),
            ),
            tooltip=[
                alt.Tooltip("block:N"),
                component,
                alt.Tooltip("sum(count):Q", title="parameters", format=","),
            ],
        )
        .properties(width="container", height=height, title=title)
    )
    return to_spec(chart)


def length_histogram_chart(rows: list[dict], max_length: int) -> dict:
    """Histogram of tokens per text, stacked by split; the max_length cut-off is marked when near.

    The rule is drawn only when the longest bin reaches half of max_length, so a short corpus
    keeps a readable scale (the page states max_length in words either way).
    """
    bars = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar(binSpacing=1)
        .encode(
            x=alt.X(
                "start:Q",
                bin="binned",
                title="tokens per text (special tokens included)",
                axis=alt.Axis(tickMinStep=1, format="d"),
            ),
            x2="end:Q",
            y=alt.Y("sum(texts):Q", title="texts"),
            color=alt.Color("split:N", title="split"),
            tooltip=[
                alt.Tooltip("start:Q", title="from"),
                alt.Tooltip("end:Q", title="to (excl.)"),
                alt.Tooltip("split:N"),
                alt.Tooltip("sum(texts):Q", title="texts"),
            ],
        )
    )
    layers = [bars]
    if rows and max(row["end"] for row in rows) * 2 >= max_length:
        layers.append(
            alt.Chart(alt.Data(values=[{"max_length": max_length}]))
            .mark_rule(strokeDash=[4, 3], color="#888")
            .encode(x="max_length:Q", tooltip=[alt.Tooltip("max_length:Q", title="max_length")])
        )
    chart = alt.layer(*layers).properties(
        width="container", height=200, title="Token length per text"
    )
    return to_spec(chart)


def label_counts_chart(rows: list[dict]) -> dict:
    """Horizontal bars: texts per label, stacked by split."""
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar()
        .encode(
            y=alt.Y("label:N", title=None, sort="ascending"),
            x=alt.X("sum(texts):Q", title="texts"),
            color=alt.Color("split:N", title="split"),
            tooltip=[
                alt.Tooltip("label:N"),
                alt.Tooltip("split:N"),
                alt.Tooltip("sum(texts):Q", title="texts"),
            ],
        )
        .properties(width=560, height=alt.Step(22), title="Texts per label")
    )
    return to_spec(chart)
