"""Attention page: per-head heatmaps of the showcase examples, chosen in the page."""

from __future__ import annotations

import base64

import numpy as np

from generator.artifacts import Artifacts
from generator.render.charts import attention as charts
from generator.render.pages.common import Page, chart

WEIGHT_SCALE = 1000  # attention weights travel as uint16 thousandths (3 decimals)


def encode_weights(weights: np.ndarray) -> str:
    """Pack attention weights in [0, 1] as base64 little-endian uint16 thousandths."""
    scaled = np.rint(np.clip(weights, 0.0, 1.0) * WEIGHT_SCALE).astype("<u2")
    return base64.b64encode(scaled.tobytes()).decode("ascii")


def attention_examples(artifacts: Artifacts) -> list[dict]:
    """Return per showcase example: text, label, tokens and packed [layer, head, query, key] weights."""
    rows = artifacts.array("showcase/index")
    mask = artifacts.array("showcase/attention_mask")
    tokens = artifacts.array("showcase/tokens")
    attentions = artifacts.array("showcase/attentions")
    texts = artifacts.array("corpus/texts")
    labels = artifacts.array("corpus/labels") if artifacts.has("corpus/labels") else None
    examples = []
    for example, row in enumerate(rows):
        n = int(mask[example].sum())
        weights = np.asarray(attentions[example, :, :, :n, :n], dtype=np.float32)
        examples.append(
            {
                "row": int(row),
                "text": str(texts[row]),
                "label": str(labels[row]) if labels is not None else "",
                "tokens": [str(t) for t in tokens[example, :n]],
                "weights": encode_weights(weights),
            }
        )
    return examples


def token_label(index: int, token: str) -> str:
    """Return the axis label of a token: zero-padded position, space, token (as attention.js)."""
    return f"{index:04d} {token}"


def heatmap_cells(example: dict, n_heads: int, layer: int, head: int) -> list[dict]:
    """Return the {query, key, weight} rows of one head, decoded from the packed weights.

    Mirrors `attentionCells` in attention.js, so the figure shows what the page first shows.
    """
    packed = np.frombuffer(base64.b64decode(example["weights"]), dtype="<u2")
    n = len(example["tokens"])
    weights = packed.reshape(-1, n_heads, n, n)[layer, head]  # [query, key]
    labels = [token_label(i, t) for i, t in enumerate(example["tokens"])]
    return [
        {"query": labels[q], "key": labels[k], "weight": int(weights[q, k]) / WEIGHT_SCALE}
        for q in range(n)
        for k in range(n)
    ]


def heatmap_figure(example: dict, n_heads: int) -> dict:
    """Return the static heatmap of the page's initial view: first example, layer 0, head 0."""
    spec = charts.attention_heatmap_chart(heatmap_cells(example, n_heads, 0, 0))
    text = example["text"] if len(example["text"]) <= 60 else example["text"][:59] + "…"
    spec["title"] = {"text": "Attention, layer 0, head 0", "subtitle": text}
    return spec


def attention_context(artifacts: Artifacts, tables: dict) -> dict:
    """Context of the attention page: showcase data and the heatmap whose data the page swaps."""
    config = artifacts.manifest["model"]["config"]
    if not artifacts.has("showcase/attentions"):
        return {"attention": None, "charts": []}
    data = {
        "n_layers": config["n_layers"],
        "n_heads": config["n_heads"],
        "scale": WEIGHT_SCALE,
        "examples": attention_examples(artifacts),
    }
    heatmap = chart(
        "attention-heatmap",
        charts.attention_heatmap_chart([]),
        "Heatmap of attention weights from query tokens to key tokens",
        "Post-softmax attention of the selected head: row = attending (query) token, "
        "column = attended-to (key) token; each row sums to 1.",
        interactive=True,
        figure_spec=(
            heatmap_figure(data["examples"][0], config["n_heads"]) if data["examples"] else None
        ),
    )
    return {"attention": data, "charts": [heatmap]}


PAGE = Page(
    "attention.html",
    "Attention",
    "model_attention.html",
    attention_context,
    scripts=("attention.js",),
)
