"""The weights page's gradient section: context, chart descriptions and the data its script swaps."""

from __future__ import annotations

from generator.analyze.weights import COMPONENT_ORDER
from generator.render.charts import gradients as charts
from generator.render.pages.common import chart

VIEWS = ("cells", "ratios", "examples")  # the datasets of one checkpoint, one per chart


def _round(rows: list[dict]) -> list[dict]:
    """Round the floats of rows to 4 significant digits."""
    return [
        {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in row.items()}
        for row in rows
    ]


def gradient_data(views: list[dict]) -> dict[str, dict]:
    """Return per checkpoint label its rounded chart rows."""
    return {view["checkpoint"]: {key: _round(view[key]) for key in VIEWS} for view in views}


def gradient_section(tables: dict) -> tuple[dict | None, dict, dict | None, dict]:
    """Return (template context, chart descriptions by key, page data, figure rows) of the section.

    Figure rows: per chart key (rows, title) of its exported figure (the card model's view).
    (None, {}, None, {}) when the artifacts hold no gradients.
    """
    views = tables.get("gradient_views")
    if not views:
        return None, {}, None, {}
    summary = tables["gradient_summary"]
    data = gradient_data(views)
    first = views[0]["checkpoint"]
    present = {row["component"] for view in views for row in view["cells"]}
    components = [c for c in COMPONENT_ORDER if c in present]
    figures = {
        "grad_heatmap": chart(
            "weights-grad-heatmap",
            charts.gradient_heatmap_chart(components, len({r["block"] for r in views[0]["cells"]})),
            "Heatmap of the gradient norm per layer and component",
            "The L2 norm of the loss gradient over all parameters of each block and component "
            "(log colour scale; blank: no gradient, parameters the loss does not reach): where "
            "the loss would move the weights most.",
            interactive=True,
        ),
        "grad_ratios": chart(
            "weights-grad-ratios",
            charts.ratio_histogram_chart(),
            "Histograms of the gradient-to-weight norm ratio per tensor, by kind",
            "For every tensor ‖∇W‖ / ‖W‖ on a log10 axis, one histogram each for weight "
            "matrices, biases and norm gains: the relative step a unit learning rate would take.",
            interactive=True,
        ),
        "grad_examples": chart(
            "weights-grad-examples",
            charts.example_norms_chart(),
            "Histogram of the per-text gradient norms of the whole model",
            "The gradient norm of each sampled text's own loss over all parameters; single "
            "texts pull much harder than their mean, whose gradient the other charts show.",
            interactive=True,
        ),
    }
    titles = {
        "grad_heatmap": ("cells", "Gradient norm by layer and component"),
        "grad_ratios": ("ratios", "Gradient / weight norm ratio by kind"),
        "grad_examples": ("examples", "Per-text gradient norms"),
    }
    figure_rows = {key: (data[first][view], title) for key, (view, title) in titles.items()}
    context = {
        **summary,
        "checkpoints": [
            [v["checkpoint"], v["checkpoint"], v["loss_value"], v["total_norm"]] for v in views
        ],
        "tensors": tables["parameter_gradients"],
    }
    return context, figures, data, figure_rows
