"""Charts of the activations page: quantile bands, histograms, residual norms, outlier dimensions.

Interactive charts read the named dataset `rows`, filled and swapped by the page script.
"""

from __future__ import annotations

import altair as alt

from generator.render.charts.common import THINNED_LABELS, thinned_axis, to_spec

ROWS = "rows"


def _swappable(chart: alt.TopLevelMixin) -> dict:
    """Return the spec of a chart over the `rows` dataset, empty until the page fills it."""
    spec = to_spec(chart)
    spec["datasets"] = {ROWS: []}
    return spec


def _quantile_layers(value_title: str) -> list[alt.Chart]:
    """Bands 0.1–99.9 %, 1–99 %, 5–95 %, 25–75 % and the median line over `layer_label`."""
    base = alt.Chart(alt.NamedData(ROWS)).encode(
        x=alt.X(
            "layer_label:N",
            title="layer",
            sort=alt.SortField("layer"),
            axis=thinned_axis(),
        )
    )
    bands = [
        base.mark_area(opacity=opacity, color="#4c78a8").encode(
            y=alt.Y(f"{low}:Q", title=value_title), y2=f"{high}:Q"
        )
        for low, high, opacity in (
            ("p0_1", "p99_9", 0.12),
            ("p1", "p99", 0.18),
            ("p5", "p95", 0.28),
            ("p25", "p75", 0.45),
        )
    ]
    median = base.mark_line(point=True, color="#1d2330").encode(
        y="p50:Q",
        tooltip=[
            alt.Tooltip("layer_label:N", title="layer"),
            alt.Tooltip("p0_1:Q", title="0.1 %", format=".4g"),
            alt.Tooltip("p1:Q", title="1 %", format=".4g"),
            alt.Tooltip("p5:Q", title="5 %", format=".4g"),
            alt.Tooltip("p25:Q", title="25 %", format=".4g"),
            alt.Tooltip("p50:Q", title="median", format=".4g"),
            alt.Tooltip("p75:Q", title="75 %", format=".4g"),
            alt.Tooltip("p95:Q", title="95 %", format=".4g"),
            alt.Tooltip("p99:Q", title="99 %", format=".4g"),
            alt.Tooltip("p99_9:Q", title="99.9 %", format=".4g"),
        ],
    )
    return [*bands, median]


def quantile_bands_chart() -> dict:
    """Quantile bands of one quantity's values across layers (the page picks the quantity)."""
    chart = alt.layer(*_quantile_layers("value")).properties(width="container", height=260)
    return _swappable(chart)


def histogram_chart() -> dict:
    """Density over the fixed logarithmic bins of one quantity at one layer.

    Rows: {start, end, fraction}. The y axis is the density (fraction of values per unit of
    value, log scale, so tails stay visible); the x axis is symmetric-log (linear within ±1).
    """
    chart = (
        alt.Chart(alt.NamedData(ROWS))
        .transform_calculate(density="datum.fraction / (datum.end - datum.start)")
        .mark_bar(color="#4c78a8")
        .encode(
            x=alt.X(
                "start:Q",
                title="value (symmetric-log axis: linear within ±1)",
                scale=alt.Scale(type="symlog", constant=1),
            ),
            x2="end:Q",
            y=alt.Y("density:Q", title="density (fraction per unit)", scale=alt.Scale(type="log")),
            tooltip=[
                alt.Tooltip("start:Q", title="from", format=".4g"),
                alt.Tooltip("end:Q", title="to", format=".4g"),
                alt.Tooltip("fraction:Q", title="fraction of values", format=".3%"),
                alt.Tooltip("density:Q", format=".3g"),
            ],
        )
        .properties(width="container", height=220)
    )
    return _swappable(chart)


def residual_norm_chart(rows: list[dict]) -> dict:
    """Residual-stream norm per layer: quantile bands, median line and the exact mean (dashed)."""
    layers = _quantile_layers("L2 norm of a token's hidden state")
    mean = (
        alt.Chart(alt.NamedData(ROWS))
        .mark_line(strokeDash=[5, 3], color="#e45756")
        .encode(
            x=alt.X("layer_label:N", sort=alt.SortField("layer")),
            y="mean:Q",
            tooltip=[
                alt.Tooltip("layer_label:N", title="layer"),
                alt.Tooltip("mean:Q", format=".4g"),
            ],
        )
    )
    chart = alt.layer(*layers, mean).properties(width="container", height=240)
    spec = to_spec(chart)
    spec["datasets"] = {ROWS: rows}
    return spec


def outlier_profile_chart(threshold: float, n_dims: int) -> dict:
    """Per-dimension max |activation| at one layer (log y); flagged dimensions highlighted.

    Rows: {dim, max_abs, ratio, flagged, cut, excluded}: dead dimensions are left out of the
    rows (their ~0 maximum would stretch the log axis); `excluded` counts them and a note in
    the chart says so. The x axis spans exactly the `n_dims` dimensions, 0 .. n_dims - 1.
    A rule marks `threshold` × the typical max.
    """
    base = alt.Chart(alt.NamedData(ROWS))
    points = base.mark_circle(size=22).encode(
        x=alt.X(
            "dim:Q",
            title="dimension of the residual stream",
            scale=alt.Scale(domain=[0, max(n_dims - 1, 1)], nice=False, zero=False),
        ),
        y=alt.Y("max_abs:Q", title="max |activation| over the corpus", scale=alt.Scale(type="log")),
        color=alt.Color(
            "flagged:N",
            title=f"≥ {threshold:g}× typical",
            scale=alt.Scale(domain=[False, True], range=["#9aa3b2", "#e45756"]),
        ),
        tooltip=[
            alt.Tooltip("dim:Q", title="dimension"),
            alt.Tooltip("max_abs:Q", title="max |activation|", format=".4g"),
            alt.Tooltip("ratio:Q", title="× typical dimension", format=".2f"),
        ],
    )
    rule = base.mark_rule(strokeDash=[4, 3], color="#e45756").encode(
        y=alt.Y("max(cut):Q"), tooltip=[alt.Tooltip("max(cut):Q", title="threshold", format=".4g")]
    )
    note = (
        base.transform_aggregate(excluded="max(excluded)")
        .transform_calculate(
            note="datum.excluded > 0 ? datum.excluded + (datum.excluded == 1 ? ' dead dimension'"
            " : ' dead dimensions') + ' not drawn (see the Dead dimensions table)' : ''"
        )
        .mark_text(align="left", baseline="top", fontSize=11, color="#5b6472")
        .encode(x=alt.value(4), y=alt.value(4), text="note:N")
    )
    chart = alt.layer(points, rule, note).properties(width="container", height=240)
    return _swappable(chart)


def outlier_overview_chart(rows: list[dict], threshold: float) -> dict:
    """Top dimensions per layer by max |activation| relative to the layer's typical dimension."""
    layers = list(dict.fromkeys(r["layer_label"] for r in sorted(rows, key=lambda r: r["layer"])))
    points = (
        alt.Chart(alt.Data(values=rows))
        .mark_point(filled=True, size=60)
        .encode(
            x=alt.X("layer_label:N", title="layer", sort=layers, axis=thinned_axis()),
            y=alt.Y(
                "ratio:Q",
                title="max |activation| / typical",
                scale=alt.Scale(type="log"),
                axis=alt.Axis(labelOverlap="greedy"),  # 9 and 10 touch on a short log axis
            ),
            color=alt.Color(
                "flagged:N",
                title=f"≥ {threshold:g}× typical",
                scale=alt.Scale(domain=[False, True], range=["#9aa3b2", "#e45756"]),
            ),
            tooltip=[
                alt.Tooltip("layer_label:N", title="layer"),
                alt.Tooltip("dim:Q", title="dimension"),
                alt.Tooltip("value:Q", title="peak value", format=".4g"),
                alt.Tooltip("ratio:Q", title="× typical", format=".2f"),
                alt.Tooltip("token:N", title="token at peak"),
                alt.Tooltip("usual_token:N", title="most common peak token"),
                alt.Tooltip("usual_share:Q", title="share of texts", format=".0%"),
            ],
        )
    )
    labels = points.mark_text(dx=9, align="left", fontSize=10).encode(text="dim:Q")
    rule = (
        alt.Chart(alt.Data(values=[{"cut": threshold}]))
        .mark_rule(strokeDash=[4, 3], color="#e45756")
        .encode(y="cut:Q")
    )
    chart = alt.layer(points, labels, rule).properties(width="container", height=260)
    return to_spec(chart)


def neuron_bars_chart(n_neurons: int) -> dict:
    """The most active MLP neurons of one layer: bars of their max, ticks at their mean.

    Rows: {neuron, rank, max, mean, positive}; neurons are listed by rank (decreasing max).
    The height fits `n_neurons` bars.
    """
    base = alt.Chart(alt.NamedData(ROWS)).encode(
        y=alt.Y("neuron:N", title="neuron", sort=alt.EncodingSortField("rank", op="min")),
        tooltip=[
            alt.Tooltip("neuron:N"),
            alt.Tooltip("max:Q", title="max activation", format=".4g"),
            alt.Tooltip("mean:Q", title="mean activation", format=".4g"),
            alt.Tooltip("positive:Q", title="tokens with activation > 0", format=".1%"),
        ],
    )
    bars = base.mark_bar(color="#4c78a8").encode(x=alt.X("max:Q", title="activation"))
    means = base.mark_tick(color="#e45756", thickness=2).encode(x="mean:Q")
    chart = alt.layer(bars, means).properties(width="container", height=18 * max(n_neurons, 1))
    return _swappable(chart)


def neuron_heatmap_chart(bound: float) -> dict:
    """Token x neuron heatmap of one showcase example at one layer.

    Rows: {position, token_label, neuron, rank, value}; tokens down, neurons across by rank.
    The colour scale is symmetric, [-bound, bound] (values beyond are clamped), and the same
    for every example and layer, so a colour means one activation everywhere.
    """
    chart = (
        alt.Chart(alt.NamedData(ROWS))
        .mark_rect()
        .encode(
            x=alt.X(
                "neuron:N",
                title="neuron (by corpus max)",
                sort=alt.EncodingSortField("rank", op="min"),
            ),
            y=alt.Y(
                "token_label:N", title="token", sort=alt.EncodingSortField("position", op="min")
            ),
            color=alt.Color(
                "value:Q",
                title="activation",
                scale=alt.Scale(scheme="blueorange", domain=[-bound, bound], clamp=True),
            ),
            tooltip=[
                alt.Tooltip("token_label:N", title="token"),
                alt.Tooltip("neuron:N"),
                alt.Tooltip("value:Q", title="activation", format=".3g"),
            ],
        )
        .properties(width=alt.Step(22), height=alt.Step(14))
    )
    return _swappable(chart)


def dimension_tokens_chart() -> dict:
    """One hidden-state dimension's value at every token of one showcase example.

    Rows: {position, token_label, value}; bars in token order, signed.
    """
    chart = (
        alt.Chart(alt.NamedData(ROWS))
        .mark_bar()
        .encode(
            x=alt.X(
                "token_label:N",
                title="token",
                sort=alt.SortField("position"),
                # 128+ tokens in the page's width: every other label dropped until none
                # overlap (THINNED_LABELS); the tooltip names every bar's token
                axis=alt.Axis(labelAngle=-90, **THINNED_LABELS),
            ),
            y=alt.Y("value:Q", title="value of the dimension"),
            color=alt.condition("datum.value < 0", alt.value("#2166ac"), alt.value("#b2182b")),
            tooltip=[
                alt.Tooltip("token_label:N", title="token"),
                alt.Tooltip("value:Q", format=".4g"),
            ],
        )
        .properties(width="container", height=220)
    )
    return _swappable(chart)
