"""Activations page (the debugging panel): value distributions, residual norms, outlier dimensions,
and MLP neurons (built by `neuron_section`).

Needs a corpus: without one the page explains why it is empty. Selector data travels in one
`activations-data` JSON block with rounded floats.
"""

from __future__ import annotations

from generator.artifacts import Artifacts
from generator.render.charts import activations as charts
from generator.render.pages.activation_files import (
    split_dimensions,
    split_neurons,
    split_scores,
)
from generator.render.pages.common import Page, chart
from generator.render.pages.dimension_tokens import dimension_tokens, first_rows, pair_key
from generator.render.pages.neuron_section import histogram_rows, neuron_section
from generator.render.pages.score_section import score_histograms

MAX_PROFILE_DIMS = 1024  # wider residual streams send only their largest dimensions per layer


def sig(value: float, digits: int = 4) -> float:
    """Round to `digits` significant digits."""
    return float(f"{value:.{digits}g}")


def _rounded(row: dict) -> dict:
    """Round every float of a row to 4 significant digits."""
    return {k: sig(v) if isinstance(v, float) else v for k, v in row.items()}


def quantile_data(rows: list[dict]) -> dict[str, list[dict]]:
    """Return the quantile rows per quantity, rounded."""
    out: dict[str, list[dict]] = {}
    for row in rows:
        out.setdefault(row["quantity"], []).append(_rounded(row))
    return out


def histogram_data(histograms: dict[str, list[dict]]) -> dict[str, dict[str, list]]:
    """Return per quantity and layer label the non-empty bins as [start, end, fraction]."""
    out: dict[str, dict[str, list]] = {}
    for quantity, rows in histograms.items():
        layers: dict[str, list] = {}
        for row in rows:
            layers.setdefault(row["layer_label"], []).append(
                [sig(row["start"]), sig(row["end"]), sig(row["fraction"], 3)]
            )
        out[quantity] = layers
    return out


def profile_data(rows: list[dict], threshold: float, dead_ratio: float) -> dict[str, dict]:
    """Return per layer label: the cut line and dims with their max |activation| and ratio.

    Dead dimensions (ratio < `dead_ratio`, listed in the dead-dimensions table) are left out:
    `excluded` counts them.
    """
    layers: dict[str, list[dict]] = {}
    for row in rows:
        layers.setdefault(row["layer_label"], []).append(row)
    out = {}
    for label, dims in layers.items():
        typical = next((r["max_abs"] / r["ratio"] for r in dims if r["ratio"] > 0), 0.0)
        live = [r for r in dims if r["ratio"] >= dead_ratio]
        kept = sorted(live, key=lambda r: -r["max_abs"])[:MAX_PROFILE_DIMS]
        out[label] = {
            "cut": sig(threshold * typical),
            "dims": [r["dim"] for r in kept],
            "max": [sig(r["max_abs"]) for r in kept],
            "ratio": [sig(r["ratio"], 3) for r in kept],
            "flagged": [r["flagged"] for r in kept],
            "excluded": len(dims) - len(live),
            "capped": len(live) > MAX_PROFILE_DIMS,
        }
    return out


QUANTITY_OPTIONS = (
    ("hidden", "hidden states (residual stream)"),
    ("queries", "queries"),
    ("keys", "keys"),
    ("values", "values"),
    ("mlp", "MLP activations (after the non-linearity)"),
)


def activations_context(artifacts: Artifacts, tables: dict) -> dict:
    """Context of the activations page ({'activations': None} without a corpus)."""
    if "activation_quantiles" not in tables:
        reason = (
            "this card names no corpus"
            if not artifacts.manifest.get("corpus")
            else "these artifacts hold no activation statistics (rebuild with --force)"
        )
        return {"activations": None, "reason": reason, "charts": [], "panel": {}}
    facts = tables["activation_facts"]
    threshold = facts["outlier_ratio"]
    quantiles = quantile_data(tables["activation_quantiles"])
    layers = {
        quantity: [row["layer_label"] for row in rows] for quantity, rows in quantiles.items()
    }
    data = {
        "quantiles": quantiles,
        "layers": layers,
        "histograms": histogram_data(tables["activation_histograms"]),
        "profile": profile_data(
            tables["activation_outlier_profile"], threshold, facts["dead_ratio"]
        ),
    }
    n_dims = 1 + max((r["dim"] for r in tables["activation_outlier_profile"]), default=0)
    outliers = tables["activation_outliers"]
    figures = {
        "bands": chart(
            "activations-bands",
            charts.quantile_bands_chart(),
            "Quantile bands of activation values across layers",
            "Distribution of every value of the selected quantity over all non-padding tokens "
            "of the corpus, per layer: median (line) and the 25–75, 5–95, 1–99 and 0.1–99.9 % "
            "bands (darker to lighter). Read from exact corpus-wide histograms.",
            interactive=True,
        ),
        "histogram": chart(
            "activations-histogram",
            charts.histogram_chart(),
            "Histogram of activation values at one layer",
            f"Corpus-wide histogram over {facts['bins']} fixed logarithmic bins (16 per decade, "
            "mirrored for negative values, a central bin around 0), on a symmetric-log axis.",
            interactive=True,
        ),
        "norms": chart(
            "activations-norms",
            charts.residual_norm_chart(_norm_rows(tables["activation_residual_norms"])),
            "Residual-stream norm per layer with quantile bands",
            "L2 norm of each token's hidden state per layer: median (line), quantile bands as "
            "above, and the exact mean (dashed red).",
        ),
        "overview": chart(
            "activations-overview",
            charts.outlier_overview_chart([_rounded(r) for r in outliers], threshold),
            "Dot plot of the largest residual-stream dimensions per layer",
            f"Per layer, the {facts['top_dims']} dimensions with the largest |activation| and "
            f"every dimension flagged as an outlier (≥ {threshold:g}× the median over "
            "dimensions of the per-dimension maximum), labelled with the dimension index.",
        ),
        "profile": chart(
            "activations-profile",
            charts.outlier_profile_chart(threshold, n_dims),
            "Scatter plot of max |activation| per residual-stream dimension at one layer",
            f"Each point is one of the {n_dims} dimensions of the residual stream: its largest "
            "|value| over the corpus. The dashed line is the outlier threshold. Dead dimensions "
            "are not drawn (their near-zero maximum would flatten the log axis); the chart "
            "says how many, and the Dead dimensions table below lists them.",
            interactive=True,
        ),
    }
    data["dimension_tokens"] = dimension_tokens(artifacts, outliers)
    if data["dimension_tokens"]:
        spec = charts.dimension_tokens_chart()
        first_pair = data["dimension_tokens"]["pairs"][0][1]
        figures["dimension"] = chart(
            "activations-dimension",
            spec,
            "Bar chart of one dimension's value at every token of a showcase example",
            "The selected dimension of the residual stream at each token of the selected "
            "showcase example (red positive, blue negative): where a massive activation sits. "
            "Choose a dimension here or with “per token” in the table above.",
            interactive=True,
            figure_spec={
                **spec,
                "datasets": {charts.ROWS: first_rows(data["dimension_tokens"])},
                "title": f"{first_pair}, showcase example 1",
            },
        )
    hidden = layers.get("hidden", [])
    first = {
        "bands": (quantiles.get("hidden", []), "Hidden states (residual stream)"),
        "histogram": (
            histogram_rows(data["histograms"].get("hidden", {}).get(hidden[0] if hidden else "")),
            f"Hidden states, {hidden[0]}" if hidden else "",
        ),
        "profile": (
            profile_rows(data["profile"].get(hidden[-1] if hidden else "")),
            f"Max |activation| per dimension, {hidden[-1]}" if hidden else "",
        ),
    }
    for key, (rows, title) in first.items():
        spec = figures[key]["spec"]
        figures[key]["figure_spec"] = (
            {**spec, "datasets": {charts.ROWS: rows}, "title": title} if rows else None
        )
    neurons, neuron_figures = neuron_section(artifacts, tables, data["histograms"].get("mlp", {}))
    figures.update(neuron_figures)
    data["scores"], score_figure = score_histograms(tables, bool(artifacts.manifest.get("seq2seq")))
    if score_figure:
        figures["scores"] = score_figure
    data["neurons"] = neurons.pop("data", None)
    data["scores"], score_files = split_scores(data["scores"])
    data["dimension_tokens"], dimension_files = split_dimensions(data["dimension_tokens"])
    data["neurons"], neuron_files = split_neurons(data["neurons"])
    return {
        "data_files": {**score_files, **dimension_files, **neuron_files},
        "activations": {
            "facts": facts,
            "quantities": [[q, label] for q, label in QUANTITY_OPTIONS if q in quantiles],
            "hidden_layers": layers.get("hidden", []),
            "outliers": [{**_rounded(r), "key": pair_key(r)} for r in outliers],
            "dead": _dead_by_layer(tables.get("activation_dead_dimensions", [])),
            "flagged": sum(1 for r in outliers if r["flagged"]),
            "data": data,
            "neurons": neurons,
        },
        "reason": "",
        "charts": list(figures.values()),
        "panel": figures,
    }


def profile_rows(layer: dict | None) -> list[dict]:
    """Return the rows of one layer's dimension profile (mirrors `profileRows`)."""
    if not layer:
        return []
    return [
        {
            "dim": d,
            "max_abs": m,
            "ratio": r,
            "flagged": f,
            "cut": layer["cut"],
            "excluded": layer["excluded"],
        }
        for d, m, r, f in zip(
            layer["dims"], layer["max"], layer["ratio"], layer["flagged"], strict=True
        )
    ]


def _dead_by_layer(rows: list[dict]) -> list[list]:
    """Return [layer label, [dims]] of the dead dimensions, in layer order."""
    layers: dict[str, list[int]] = {}
    for row in sorted(rows, key=lambda r: (r["layer"], r["dim"])):
        layers.setdefault(row["layer_label"], []).append(row["dim"])
    return [[label, dims] for label, dims in layers.items()]


def _norm_rows(rows: list[dict]) -> list[dict]:
    """Return the residual-norm rows, rounded."""
    return [_rounded(r) for r in rows]


PAGE = Page(
    "activations.html",
    "Activations",
    "model_activations.html",
    activations_context,
    scripts=("selectors.js", "activations.js", "scores.js"),
    analysis="activations",
)
