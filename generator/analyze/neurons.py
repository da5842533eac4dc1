"""MLP neuron tables: per layer, the most active neurons and the tokens that drive them.

Inputs are the corpus-wide arrays of `generator.extract.neurons` (neurons/mean, max, min,
positive [layer, d_mlp]; neurons/ranked [layer, rank]; neurons/top_* [layer, rank, k]) and the
corpus token ids. "Most active" ranks neurons by their largest activation over the corpus (max,
not mean: a neuron that fires hard on a few tokens is what the contexts explain; the mean is
listed beside it). Layer labels are block indices "0".."L-1".
"""

from __future__ import annotations

import numpy as np

from generator.analyze.activations import layer_labels, token_lookup

SHOWN_NEURONS = 16  # neurons listed per layer
SHOWN_CONTEXTS = 5  # top-activating tokens shown per neuron
CONTEXT = 4  # tokens either side of the activating token


def context_window(ids: np.ndarray, position: int, token_of, width: int = CONTEXT) -> dict:
    """Return {left, token, right}: the token at `position` of one text and `width` either side.

    Args:
        ids: [token] the text's ids (-1 past its end).
        position: the activating token's position.
        token_of: id -> token string.
    """
    length = int(np.sum(ids >= 0))
    start, stop = max(0, position - width), min(length, position + width + 1)
    return {
        "left": [token_of(i) for i in ids[start:position]],
        "token": token_of(ids[position]),
        "right": [token_of(i) for i in ids[position + 1 : stop]],
    }


def top_neuron_rows(arrays: dict, input_ids: np.ndarray, token_of) -> list[dict]:
    """Return per layer the SHOWN_NEURONS neurons of largest max with their top contexts.

    Args:
        arrays: mean, max, min, positive [layer, d_mlp]; ranked [layer, rank];
            top_values, top_text, top_position [layer, rank, k].
        input_ids: [text, token] corpus ids (-1 past the end).
        token_of: id -> token string.
    """
    n_layers = arrays["max"].shape[0]
    labels = layer_labels(n_layers, False)
    rows = []
    for layer in range(n_layers):
        for rank, neuron in enumerate(arrays["ranked"][layer][:SHOWN_NEURONS]):
            contexts = []
            for j in range(min(SHOWN_CONTEXTS, arrays["top_values"].shape[-1])):
                text = int(arrays["top_text"][layer, rank, j])
                if text < 0:
                    continue
                position = int(arrays["top_position"][layer, rank, j])
                contexts.append(
                    {
                        "value": float(arrays["top_values"][layer, rank, j]),
                        "text": text,
                        "position": position,
                        **context_window(input_ids[text], position, token_of),
                    }
                )
            rows.append(
                {
                    "layer": layer,
                    "layer_label": labels[layer],
                    "rank": rank,
                    "neuron": int(neuron),
                    **{k: float(arrays[k][layer, neuron]) for k in ("max", "mean", "min")},
                    "positive": float(arrays["positive"][layer, neuron]),
                    "contexts": contexts,
                }
            )
    return rows


def layer_summary(arrays: dict) -> list[dict]:
    """Return per layer: neurons, never-positive neurons, and quantiles of the neurons' max/mean."""
    labels = layer_labels(arrays["max"].shape[0], False)
    rows = []
    for layer, label in enumerate(labels):
        peak, mean = arrays["max"][layer], arrays["mean"][layer]
        rows.append(
            {
                "layer": layer,
                "layer_label": label,
                "neurons": int(peak.size),
                "never_positive": int(np.sum(peak <= 0)),
                "max_median": float(np.median(peak)),
                "max_top": float(peak.max()),
                "mean_median": float(np.median(mean)),
                "positive_median": float(np.median(arrays["positive"][layer])),
            }
        )
    return rows


NAMES = ("mean", "max", "min", "positive", "ranked", "top_values", "top_text", "top_position")


def neurons_analysis(artifacts) -> dict:
    """Compute the neuron tables of an artifact folder ({} when no neuron statistics exist)."""
    if not artifacts.has("neurons/max"):
        return {}
    arrays = {name: np.asarray(artifacts.array(f"neurons/{name}")) for name in NAMES}
    token_of = token_lookup(
        artifacts.array("corpus/vocab_ids"), artifacts.array("corpus/vocab_tokens")
    )
    facts = dict(artifacts.manifest.get("neurons") or {})
    facts.update(
        {
            "layers": int(arrays["max"].shape[0]),
            "d_mlp": int(arrays["max"].shape[1]),
            "shown_neurons": min(SHOWN_NEURONS, int(arrays["ranked"].shape[1])),
            "shown_contexts": SHOWN_CONTEXTS,
            "context": CONTEXT,
            "ranking": "max",
        }
    )
    return {
        "neuron_top": top_neuron_rows(
            arrays, np.asarray(artifacts.array("corpus/input_ids")), token_of
        ),
        "neuron_layers": layer_summary(arrays),
        "neuron_facts": facts,
    }
