"""Charts of the activations page: quantile bands, histograms, residual norms, outlier dimensions.

Interactive charts read the named dataset `rows`, filled and swapped by the page script.
"""

from __future__ import annotations

import altair as alt

from generator.render.charts.common import to_spec

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
            axis=alt.Axis(labelAngle=0),
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


def outlier_profile_chart(threshold: float) -> dict:
    """Per-dimension max |activation| at one layer (log y); flagged dimensions highlighted.

    Rows: {dim, max_abs, ratio, flagged, typical}; a rule marks `threshold` × the typical max.
    """
    base = alt.Chart(alt.NamedData(ROWS))
    points = base.mark_circle(size=22).encode(
        x=alt.X("dim:Q", title="dimension of the residual stream"),
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
    chart = alt.layer(points, rule).properties(width="container", height=240)
    return _swappable(chart)


def outlier_overview_chart(rows: list[dict], threshold: float) -> dict:
    """Top dimensions per layer by max |activation| relative to the layer's typical dimension."""
    layers = list(dict.fromkeys(r["layer_label"] for r in sorted(rows, key=lambda r: r["layer"])))
    points = (
        alt.Chart(alt.Data(values=rows))
        .mark_point(filled=True, size=60)
        .encode(
            x=alt.X("layer_label:N", title="layer", sort=layers, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("ratio:Q", title="max |activation| / typical", scale=alt.Scale(type="log")),
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
