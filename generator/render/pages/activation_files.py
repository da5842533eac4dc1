"""The activations page's on-demand data: score histograms per layer, dimension values per pair.

At 24 layers x 16 heads the page's per-head score histograms and the per-token values of every
outlier dimension over the showcase are most of its weight, yet a view shows one head and one
dimension. They travel in `data/` files (generator/render/datafiles.py), loaded when a view
needs them; the page embeds the rest. Every chart draws the same rows as before.

- `activations-scores-L`: {head: bins} of layer L (bins as `score_histograms` makes them);
- `activations-dimension-I`: the values of the I-th pair of `dimension_tokens` (0-based, the
  order of its `pairs`): [example][token].
- `activations-neurons-I`: the showcase's top-neuron values at the I-th layer of the neuron
  section's `layers`: [example][token x neuron] (as `values[I]` of each example before).
"""

from __future__ import annotations


def scores_file(layer: int | str) -> str:
    """Return the data file name of one layer's score histograms (as in scores.js)."""
    return f"activations-scores-{layer}"


def dimension_file(index: int) -> str:
    """Return the data file name of the `index`-th dimension pair (as in activations.js)."""
    return f"activations-dimension-{index}"


def split_scores(scores: dict | None) -> tuple[dict | None, dict[str, dict]]:
    """Return (scores without their bins, {file name: {head: bins}} of every layer)."""
    if not scores:
        return scores, {}
    files: dict[str, dict] = {scores_file(layer): {} for layer in scores["layers"]}
    for key, bins in scores["bins"].items():
        layer, head = key.split("/")
        files[scores_file(layer)][head] = bins
    return {key: value for key, value in scores.items() if key != "bins"}, files


def split_dimensions(dims: dict | None) -> tuple[dict | None, dict[str, list]]:
    """Return (dimension data without its values, {file name: values} of every pair)."""
    if not dims:
        return dims, {}
    files = {dimension_file(i): dims["values"][key] for i, (key, _) in enumerate(dims["pairs"])}
    return {key: value for key, value in dims.items() if key != "values"}, files


def neurons_file(index: int) -> str:
    """Return the data file name of the neuron heatmap's `index`-th layer (as in activations.js)."""
    return f"activations-neurons-{index}"


def split_neurons(neurons: dict | None) -> tuple[dict | None, dict[str, list]]:
    """Return (neuron data without the showcase values, {file name: values} of every layer)."""
    showcase = (neurons or {}).get("showcase")
    if not showcase:
        return neurons, {}
    examples = showcase["examples"]
    files = {
        neurons_file(i): [item["values"][i] for item in examples]
        for i in range(len(showcase["neurons"]))
    }
    kept = [{k: v for k, v in item.items() if k != "values"} for item in examples]
    return {**neurons, "showcase": {**showcase, "examples": kept}}, files
