"""Charts of the weights page's gradient section.

Every chart reads the named dataset `rows`, which the page script fills for the selected
checkpoint (the card's model first); the figures are the card model's view.
"""

from __future__ import annotations

import altair as alt

from generator.render.charts.weights import ROWS, _swappable

KIND_ORDER = ("weights", "biases", "gains")


def gradient_heatmap_chart(components: list[str], n_blocks: int) -> dict:
    """Heatmap: L2 norm of the gradient per block (rows, in depth order) and component.

    Rows: {block, order, component, grad_norm, tensors, count}; colour on a log scale, so
    cells without any gradient (parameters the loss does not reach) stay blank.
    """
    chart = (
        alt.Chart(alt.NamedData(ROWS))
        .transform_filter("datum.grad_norm > 0")
        .mark_rect()
        .encode(
            x=alt.X("component:N", sort=components, title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("block:N", sort=alt.SortField("order"), title="block"),
            color=alt.Color(
                "grad_norm:Q",
                title="‖∇L‖",
                scale=alt.Scale(type="log", scheme="viridis"),
            ),
            tooltip=[
                alt.Tooltip("block:N"),
                alt.Tooltip("component:N"),
                alt.Tooltip("grad_norm:Q", title="gradient norm", format=".4g"),
                alt.Tooltip("tensors:Q"),
                alt.Tooltip("count:Q", title="parameters", format=","),
            ],
        )
        .properties(width="container", height=22 * max(n_blocks, 1))
    )
    return _swappable(chart)


def ratio_histogram_chart() -> dict:
    """Histograms of log10(‖∇W‖ / ‖W‖) per tensor, one row per kind (weights, biases, gains).

    Rows: {kind, name, ratio, log_ratio}.
    """
    chart = (
        alt.Chart(alt.NamedData(ROWS))
        .mark_bar()
        .encode(
            x=alt.X(
                "log_ratio:Q",
                bin=alt.Bin(maxbins=30),
                title="log10(gradient norm / weight norm) per tensor",
            ),
            y=alt.Y("count():Q", title="tensors"),
            color=alt.Color("kind:N", sort=list(KIND_ORDER), title="kind"),
            row=alt.Row("kind:N", sort=list(KIND_ORDER), title=None),
            tooltip=[alt.Tooltip("kind:N"), alt.Tooltip("count():Q", title="tensors")],
        )
        .properties(width=520, height=80)
    )
    return _swappable(chart)


def example_norms_chart() -> dict:
    """Histogram of the per-text gradient norms ‖∇L_i‖ of the whole model.

    Rows: {text, label, grad_norm}.
    """
    chart = (
        alt.Chart(alt.NamedData(ROWS))
        .mark_bar()
        .encode(
            x=alt.X(
                "grad_norm:Q", bin=alt.Bin(maxbins=24), title="gradient norm of one text's loss"
            ),
            y=alt.Y("count():Q", title="texts"),
            tooltip=[alt.Tooltip("count():Q", title="texts")],
        )
        .properties(width="container", height=200)
    )
    return _swappable(chart)
