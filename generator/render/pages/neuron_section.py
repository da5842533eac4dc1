"""The "MLP neurons" section of the activations page (not a page of its own).

Per layer: the histogram of MLP activations, the most active neurons (by corpus-wide max) with
their top-activating tokens in context, and a token x neuron heatmap of a showcase example.
Selector data travels in the page's `activations-data` block under `neurons`; the heatmap sends
at most MAX_HEATMAP_TOKENS tokens per example, fewer when examples x layers x neurons x tokens
would pass HEATMAP_BUDGET values (32 layers, 8 examples, 32 neurons: 16 tokens), rounded to 3
significant digits.
"""

from __future__ import annotations

import numpy as np

from generator.artifacts import Artifacts
from generator.render.charts import activations as charts
from generator.render.pages.common import chart
from generator.showcase_rows import showcase_texts

MAX_HEATMAP_TOKENS = 64
MIN_HEATMAP_TOKENS = 8
HEATMAP_BUDGET = 1 << 17  # values of the heatmap sent to the page (~1 MB of JSON at most)


def heatmap_tokens(examples: int, layers: int, neurons: int) -> int:
    """Return the tokens per example the heatmap sends within HEATMAP_BUDGET values."""
    fit = HEATMAP_BUDGET // max(examples * layers * neurons, 1)
    return int(min(MAX_HEATMAP_TOKENS, max(MIN_HEATMAP_TOKENS, fit)))


def sig(value: float, digits: int = 4) -> float:
    """Round to `digits` significant digits."""
    return float(f"{value:.{digits}g}")


def token_label(index: int, token: str) -> str:
    """Return the axis label of a token: zero-padded position, space, token (as attention.js)."""
    return f"{index:04d} {token}"


def layer_tables(rows: list[dict]) -> list[dict]:
    """Group the top-neuron rows by layer: [{label, neurons: [rounded rows]}] in layer order."""
    layers: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: (r["layer"], r["rank"])):
        contexts = [{**c, "value": sig(c["value"])} for c in row["contexts"]]
        rounded = {k: sig(row[k]) for k in ("max", "mean", "min", "positive")}
        layers.setdefault(row["layer_label"], []).append({**row, **rounded, "contexts": contexts})
    return [{"label": label, "neurons": neurons} for label, neurons in layers.items()]


def bar_data(tables: list[dict]) -> dict[str, list]:
    """Return per layer label [[neuron, max, mean, positive], ...] in rank order."""
    return {
        t["label"]: [[n["neuron"], n["max"], n["mean"], n["positive"]] for n in t["neurons"]]
        for t in tables
    }


def bar_rows(layer: list | None) -> list[dict]:
    """Return the rows of one layer's neuron bars (mirrors `barRows` in activations.js)."""
    return [
        {"neuron": n, "rank": i, "max": m, "mean": a, "positive": p}
        for i, (n, m, a, p) in enumerate(layer or [])
    ]


def showcase_data(artifacts: Artifacts) -> dict | None:
    """Return the showcase heatmap data, or None without `showcase/mlp_top`.

    Returns:
        {neurons: [layer][neuron] ids, examples: [{row, text, tokens, truncated,
        values: [layer] flat token-major [token * neuron] lists}], bound: colour-scale bound}.
    """
    if not artifacts.has("showcase/mlp_top"):
        return None
    values = artifacts.array("showcase/mlp_top")  # [example, layer, token, neuron]
    mask = artifacts.array("showcase/attention_mask")
    tokens = artifacts.array("showcase/tokens")
    limit = heatmap_tokens(values.shape[0], values.shape[1], values.shape[3])
    examples = []
    for example, item in enumerate(showcase_texts(artifacts)):
        length = int(mask[example].sum())
        n = min(length, limit)
        block = np.asarray(values[example, :, :n, :], dtype=np.float32)
        examples.append(
            {
                "row": item.row,
                "text": item.text,
                "tokens": [str(t) for t in tokens[example, :n]],
                "truncated": length > n,
                "values": [[sig(float(v), 3) for v in layer.ravel()] for layer in block],
            }
        )
    ids = np.asarray(artifacts.array("showcase/mlp_top_neurons"))
    return {
        "neurons": ids.tolist(),
        "examples": examples,
        "bound": colour_bound(examples),
        "max_tokens": limit,
    }


def colour_bound(examples: list[dict]) -> float:
    """Return the 99th percentile of |activation| over the sent showcase values (> 0)."""
    values = np.abs([v for e in examples for layer in e["values"] for v in layer])
    return sig(float(np.quantile(values, 0.99)) if values.size else 1.0, 3) or 1.0


def heatmap_rows(showcase: dict | None, example: int, layer: int) -> list[dict]:
    """Return one example's token x neuron rows at one layer (mirrors `heatmapRows`)."""
    if not showcase or example >= len(showcase["examples"]):
        return []
    ids = showcase["neurons"][layer]
    case = showcase["examples"][example]
    flat = case["values"][layer]
    return [
        {
            "position": t,
            "token_label": token_label(t, token),
            "neuron": neuron,
            "rank": j,
            "value": flat[t * len(ids) + j],
        }
        for t, token in enumerate(case["tokens"])
        for j, neuron in enumerate(ids)
    ]


def _reason(artifacts: Artifacts) -> str:
    """Say why a model has no neuron statistics."""
    details = artifacts.manifest.get("neurons") or {}
    return details.get("skipped") or (
        "these artifacts hold no MLP neuron statistics (rebuild with --force)"
    )


def neuron_section(artifacts: Artifacts, tables: dict, histograms: dict) -> tuple[dict, dict]:
    """Return (template context, chart descriptions) of the MLP-neuron section.

    Args:
        artifacts: the artifact folder (showcase arrays).
        tables: the analysis tables (neuron_top, neuron_facts, neuron_layers).
        histograms: per layer label the MLP histogram bins [start, end, fraction].
    """
    if "neuron_top" not in tables:
        return {"layers": [], "reason": _reason(artifacts)}, {}
    facts = tables["neuron_facts"]
    by_layer = layer_tables(tables["neuron_top"])
    labels = [t["label"] for t in by_layer]
    showcase = showcase_data(artifacts)
    figures = {
        "neuron_histogram": chart(
            "neurons-histogram",
            charts.histogram_chart(),
            "Histogram of MLP activations at one layer",
            "Every MLP hidden activation (after the non-linearity; for gated MLPs the product "
            "act(gate)·up) of every non-padding token of the corpus, at the selected layer, over "
            "the fixed logarithmic bins of the distributions above.",
            interactive=True,
        ),
        "neuron_bars": chart(
            "neurons-bars",
            charts.neuron_bars_chart(facts["shown_neurons"]),
            "Bar chart of the most active MLP neurons of one layer",
            f"The {facts['shown_neurons']} neurons of the selected layer with the largest "
            "activation anywhere in the corpus (bars: that maximum; red ticks: their mean "
            "over all tokens).",
            interactive=True,
        ),
    }
    if showcase:
        figures["neuron_heatmap"] = chart(
            "neurons-heatmap",
            charts.neuron_heatmap_chart(showcase["bound"]),
            "Heatmap of MLP activations, tokens by neurons, for one showcase example",
            f"Activations of the {len(showcase['neurons'][0])} neurons of largest corpus-wide "
            f"max at the selected layer, for each token of the selected example (its first "
            f"{showcase['max_tokens']} tokens at most); orange positive, blue negative, on one symmetric "
            f"scale for every example and layer, ±{showcase['bound']:g} (the 99th percentile "
            "of |activation| over the showcase; larger values take the end colours).",
            interactive=True,
        )
    first = labels[0] if labels else ""
    initial = {
        "neuron_histogram": (histogram_rows(histograms.get(first)), f"MLP activations, {first}"),
        "neuron_bars": (bar_rows(bar_data(by_layer).get(first)), f"Most active neurons, {first}"),
        "neuron_heatmap": (heatmap_rows(showcase, 0, 0), f"Showcase example 0, layer {first}"),
    }
    for key, figure in figures.items():
        rows, title = initial[key]
        spec = figure["spec"]
        figure["figure_spec"] = (
            {**spec, "datasets": {charts.ROWS: rows}, "title": title} if rows else None
        )
    context = {
        "facts": facts,
        "layers": labels,
        "tables": by_layer,
        "summary": tables.get("neuron_layers", []),
        "examples": [[i, e["text"]] for i, e in enumerate(showcase["examples"])]
        if showcase
        else [],
        "data": {"layers": labels, "bars": bar_data(by_layer), "showcase": showcase},
        "reason": "",
    }
    return context, figures


def histogram_rows(bins: list | None) -> list[dict]:
    """Return the rows of one layer's histogram (mirrors `histogramRows` in activations.js)."""
    return [{"start": s, "end": e, "fraction": f} for s, e, f in bins or []]
