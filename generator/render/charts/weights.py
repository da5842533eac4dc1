"""Charts of the weights page.

Static charts take tidy rows. Interactive charts read the named dataset `rows`, which the page
script fills for the current selection (and swaps when a selector changes).
"""

from __future__ import annotations

import altair as alt

from generator.render.charts.common import DENSE_MARK, thinned_axis, to_spec
from generator.render.charts.overview import block_bars

ROWS = "rows"  # the dataset name every interactive chart of this page reads


def _swappable(chart: alt.TopLevelMixin) -> dict:
    """Return the spec of a chart over the `rows` dataset, empty until the page fills it."""
    spec = to_spec(chart)
    spec["datasets"] = {ROWS: []}
    return spec


def component_counts_chart(rows: list[dict]) -> dict:
    """Horizontal bars: parameters per component, labelled with their share of the model."""
    order = [row["component"] for row in rows]
    base = alt.Chart(alt.Data(values=rows)).encode(
        y=alt.Y("component:N", sort=order, title=None),
        x=alt.X("count:Q", title="parameters", axis=alt.Axis(format="~s")),
        tooltip=[
            alt.Tooltip("component:N"),
            alt.Tooltip("count:Q", title="parameters", format=","),
            alt.Tooltip("share:Q", format=".2%"),
        ],
    )
    bars = base.mark_bar(color="#4c78a8")
    labels = base.mark_text(align="left", dx=4).encode(text=alt.Text("share:Q", format=".1%"))
    chart = alt.layer(bars, labels).properties(
        width="container", height=24 * max(len(rows), 1), title="Parameters by component"
    )
    return to_spec(chart)


def block_counts_chart(rows: list[dict]) -> dict:
    """Stacked bars: parameters per block (embeddings, each layer, the rest) by component."""
    return block_bars(
        rows, "component", x_title="block", height=220, title="Parameters by layer and component"
    )


def histogram_chart() -> dict:
    """Lines: fraction of a tensor's entries per shared bin, one line per tensor, coloured by depth.

    Rows: {label, order, x (bin centre), start, end, fraction}.
    """
    chart = (
        alt.Chart(alt.NamedData(ROWS))
        .mark_line(interpolate="step", strokeWidth=1.5)
        .encode(
            x=alt.X("x:Q", title="weight value (shared bins of this matrix type)"),
            y=alt.Y("fraction:Q", title="fraction of entries", axis=alt.Axis(format="~%")),
            color=alt.Color(
                "order:O",
                title="depth",
                scale=alt.Scale(scheme="viridis"),
                legend=None,
            ),
            detail="label:N",
            tooltip=[
                alt.Tooltip("label:N", title="tensor"),
                alt.Tooltip("start:Q", format=".4g"),
                alt.Tooltip("end:Q", format=".4g"),
                alt.Tooltip("fraction:Q", format=".3%"),
            ],
        )
        .properties(width="container", height=260)
    )
    return _swappable(chart)


def band_chart(value_title: str, x_title: str = "layer") -> dict:
    """Quantile bands across depth: 5–95 % and 25–75 % areas, median line, per series.

    Rows: {block, order, series, q05, q25, q50, q75, q95, ...}; the x axis follows `order`.
    """
    base = alt.Chart(alt.NamedData(ROWS)).encode(
        x=alt.X("block:N", title=x_title, sort=alt.SortField("order"), axis=thinned_axis()),
        color=alt.Color("series:N", title=None),
    )
    outer = base.mark_area(opacity=0.18).encode(y=alt.Y("q05:Q", title=value_title), y2="q95:Q")
    inner = base.mark_area(opacity=0.35).encode(y="q25:Q", y2="q75:Q")
    median = base.mark_line(point=True).encode(
        y="q50:Q",
        tooltip=[
            alt.Tooltip("series:N"),
            alt.Tooltip("block:N", title=x_title),
            alt.Tooltip("q05:Q", title="5 %", format=".4g"),
            alt.Tooltip("q25:Q", title="25 %", format=".4g"),
            alt.Tooltip("q50:Q", title="median", format=".4g"),
            alt.Tooltip("q75:Q", title="75 %", format=".4g"),
            alt.Tooltip("q95:Q", title="95 %", format=".4g"),
            alt.Tooltip("mean:Q", format=".4g"),
            alt.Tooltip("std:Q", format=".4g"),
        ],
    )
    chart = alt.layer(outer, inner, median).properties(width="container", height=240)
    return _swappable(chart)


DEPTH_METRICS = (
    ("effective_rank_ratio", "effective rank / full rank"),
    ("stable_rank", "stable rank"),
    ("alpha", "power-law α of the ESD"),
)


def depth_metrics_chart(rows: list[dict]) -> dict:
    """Small multiples across depth: relative effective rank, stable rank and α per matrix type.

    Rows: spectra rows of in-layer matrices; a metric whose values are all missing is left out.
    """
    blocks = list(dict.fromkeys(r["block"] for r in sorted(rows, key=lambda r: r["order"])))
    panels = []
    for field, title in DEPTH_METRICS:
        values = [r for r in rows if r.get(field) is not None]
        if not values:
            continue
        panels.append(
            alt.Chart(alt.Data(values=values))
            .mark_line(point=True)
            .encode(
                x=alt.X("block:N", sort=blocks, title="layer", axis=thinned_axis()),
                y=alt.Y(f"{field}:Q", title=title, scale=alt.Scale(zero=False)),
                color=alt.Color("role_label:N", title="matrix"),
                tooltip=[
                    alt.Tooltip("name:N", title="tensor"),
                    alt.Tooltip("shape:N"),
                    alt.Tooltip("effective_rank:Q", title="effective rank", format=".2f"),
                    alt.Tooltip("stable_rank:Q", title="stable rank", format=".2f"),
                    alt.Tooltip("alpha:Q", title="α", format=".2f"),
                    alt.Tooltip("alpha_tail:Q", title="α tail size"),
                    alt.Tooltip("sigma_max:Q", title="σ_max", format=".3g"),
                ],
            )
            .properties(width=260, height=200, title=title)
        )
    chart = alt.hconcat(*panels).resolve_scale(color="shared")
    return to_spec(chart)


HEATMAP_CELL = 5  # pixels per pooled cell; the page sizes the chart to the matrix it shows
BOUNDARY_COLOR = "#222"


def heatmap_size(pooled_rows: int, pooled_cols: int) -> tuple[int, int]:
    """Return the (width, height) in pixels of a pooled matrix's heatmap (mirrors weights.js)."""
    return max(HEATMAP_CELL * pooled_cols, 60), max(HEATMAP_CELL * pooled_rows, 30)


def heatmap_chart() -> dict:
    """Heatmap of one (downsampled) weight matrix, coloured by w / max |w| on a fixed [-1, 1] scale.

    Rows of kind 'cell': {r0, r1, c0, c1 (the block's original row/column range, end
    exclusive), w, relative (w / the matrix's max |w|, 0 for an all-zero matrix: the colour),
    rows, cols (the ranges as text), tip (the tooltip {rows, columns, weight (block max |w|,
    signed)} the page builds)}; rows of kind 'boundary': {axis ('c' or
    'r'), at, what}: a head-band boundary of a projection split by heads (columns of
    W_Q/W_K/W_V, rows of W_O). Both axes count rows and columns of the original matrix, however
    it was pooled. Max-abs pooling keeps the block's extreme entry, so the colour scale is
    symmetric around 0 for every matrix.
    """
    data = alt.NamedData(ROWS)
    x_scale = alt.Scale(nice=False, zero=True)
    y_scale = alt.Scale(nice=False, zero=True, reverse=True)
    cells = (
        alt.Chart(data)
        .transform_filter(alt.FieldEqualPredicate(field="kind", equal="cell"))
        .mark_rect(**DENSE_MARK)
        .encode(
            x=alt.X(
                "c0:Q",
                title="output units (columns)",
                scale=x_scale,
                axis=alt.Axis(format="d", tickMinStep=1, orient="top"),
            ),
            x2="c1:Q",
            y=alt.Y(
                "r0:Q",
                title="input units (rows)",
                scale=y_scale,
                axis=alt.Axis(format="d", tickMinStep=1),
            ),
            y2="r1:Q",
            color=alt.Color(
                "relative:Q",
                title="w / max |w|",
                scale=alt.Scale(scheme="redblue", reverse=True, domain=[-1, 1]),
            ),
        )
    )
    tooltip = [alt.Tooltip("what:N", title="boundary"), alt.Tooltip("at:Q", title="at index")]

    def boundaries(axis: str, channel) -> alt.Chart:
        return (
            alt.Chart(data)
            .transform_filter(alt.FieldEqualPredicate(field="axis", equal=axis))
            .mark_rule(color=BOUNDARY_COLOR, opacity=0.7)
            .encode(
                channel,
                strokeWidth=alt.condition("datum.major", alt.value(2), alt.value(1)),
                tooltip=tooltip,
            )
        )

    chart = alt.layer(
        cells,
        boundaries("c", alt.X("at:Q", scale=x_scale)),
        boundaries("r", alt.Y("at:Q", scale=y_scale)),
    ).properties(width=HEATMAP_CELL * 96, height=HEATMAP_CELL * 96)
    return _swappable(chart)


WHOLE_COLOR = "#333"


def head_colors(n_heads: int) -> alt.Scale:
    """Return a colour scale with a distinct colour for each of `n_heads` heads.

    Up to 10 heads: tableau10; up to 20: tableau20; more: turbo sampled once per head (no
    categorical palette stays readable beyond 20).
    """
    if n_heads <= 10:
        return alt.Scale(scheme="tableau10")
    if n_heads <= 20:
        return alt.Scale(scheme="tableau20")
    return alt.Scale(scheme=alt.SchemeParams(name="turbo", count=n_heads))


def singular_values_chart(n_heads: int) -> dict:
    """Log-log singular values by rank: the whole matrix (thick dark line) and each head's slice.

    Rows: {series, rank, sigma, whole (bool), head (index; None for the whole matrix)}. Heads
    are coloured by index (an ordinal field, so the legend runs 0, 1, 2, … 10, 11), with one
    colour per head; the slices of a fused q|k|v kernel share their head's colour.
    """
    x = alt.X("rank:Q", title="rank", scale=alt.Scale(type="log"))
    y = alt.Y("sigma:Q", title="singular value σ", scale=alt.Scale(type="log"))
    tooltip = [
        alt.Tooltip("series:N"),
        alt.Tooltip("rank:Q"),
        alt.Tooltip("sigma:Q", title="σ", format=".4g"),
    ]
    base = alt.Chart(alt.NamedData(ROWS))
    heads = (
        base.transform_filter("!datum.whole")
        .mark_line(strokeWidth=1, point=alt.OverlayMarkDef(size=10))
        .encode(
            x=x,
            y=y,
            color=alt.Color("head:O", title="head", scale=head_colors(n_heads)),
            detail="series:N",
            tooltip=tooltip,
        )
    )
    whole = base.transform_filter("datum.whole").encode(x=x, y=y)
    whole_line = whole.mark_line(
        color=WHOLE_COLOR, strokeWidth=3, point=alt.OverlayMarkDef(size=12, color=WHOLE_COLOR)
    ).encode(tooltip=tooltip)
    whole_label = (
        whole.transform_joinaggregate(last="max(rank)")
        .transform_filter("datum.rank === datum.last")
        .mark_text(align="right", dx=-6, dy=-8, color=WHOLE_COLOR)
        .encode(text="series:N")
    )
    chart = alt.layer(heads, whole_line, whole_label).properties(width="container", height=260)
    return _swappable(chart)


def head_ranks_chart(d_head: int) -> dict:
    """Layer × head grid coloured by the effective rank of each head's slice of one projection.

    The colour scale runs from 0 to `d_head`, the largest effective rank a slice can have, so
    heads that are all close to full rank look alike rather than spread over the palette.
    Rows: {block, order, head, effective_rank, stable_rank, sigma_max, frobenius}.
    """
    chart = (
        alt.Chart(alt.NamedData(ROWS))
        .mark_rect()
        .encode(
            x=alt.X("head:O", title="head", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("block:N", title="layer", sort=alt.SortField("order")),
            color=alt.Color(
                "effective_rank:Q",
                title=f"effective rank (0 to d_head = {d_head})",
                scale=alt.Scale(scheme="viridis", domain=[0, d_head]),
                legend=alt.Legend(titleLimit=0),
            ),
            tooltip=[
                alt.Tooltip("block:N", title="layer"),
                alt.Tooltip("head:O"),
                alt.Tooltip("effective_rank:Q", title="effective rank", format=".2f"),
                alt.Tooltip("stable_rank:Q", title="stable rank", format=".2f"),
                alt.Tooltip("sigma_max:Q", title="σ_max", format=".3g"),
                alt.Tooltip("frobenius:Q", title="‖W‖_F", format=".3g"),
            ],
        )
        .properties(width=alt.Step(24), height=alt.Step(20))
    )
    return _swappable(chart)


def embedding_map_chart() -> dict:
    """Scatter of sampled token embeddings in 2-D; hover shows the token.

    Rows: {x, y, token, id, count, source ('in corpus' / 'not in corpus')}.
    """
    chart = (
        alt.Chart(alt.NamedData(ROWS))
        .mark_circle(size=14, opacity=0.65)
        .encode(
            x=alt.X("x:Q", title=None, axis=alt.Axis(labels=False, ticks=False)),
            y=alt.Y("y:Q", title=None, axis=alt.Axis(labels=False, ticks=False)),
            color=alt.Color(
                "source:N",
                title="token",
                scale=alt.Scale(
                    domain=["in corpus", "not in corpus"], range=["#e45756", "#9aa3b2"]
                ),
            ),
            tooltip=[
                alt.Tooltip("token:N"),
                alt.Tooltip("id:Q", title="id"),
                alt.Tooltip("count:Q", title="in corpus (times)"),
            ],
        )
        .properties(width="container", height=420)
    )
    return _swappable(chart)


def head_map_chart() -> dict:
    """Scatter of heads (flattened weight slices) on their first two principal components.

    Rows: {x, y, block, order, head}; colour follows depth.
    """
    chart = (
        alt.Chart(alt.NamedData(ROWS))
        .mark_circle(size=70, opacity=0.85)
        .encode(
            x=alt.X("x:Q", title="principal component 1"),
            y=alt.Y("y:Q", title="principal component 2"),
            color=alt.Color("order:Q", title="layer", scale=alt.Scale(scheme="viridis")),
            tooltip=[
                alt.Tooltip("block:N", title="layer"),
                alt.Tooltip("head:Q"),
                alt.Tooltip("x:Q", title="PC1", format=".3g"),
                alt.Tooltip("y:Q", title="PC2", format=".3g"),
            ],
        )
        .properties(width="container", height=320)
    )
    return _swappable(chart)
