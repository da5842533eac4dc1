"""Attention page: per-head heatmaps of the showcase examples, chosen in the page."""

from __future__ import annotations

import base64

import numpy as np

from generator.artifacts import Artifacts
from generator.render.charts import attention as charts
from generator.render.pages.common import Page, chart

WEIGHT_SCALE = 1000  # attention weights travel as uint16 thousandths (3 decimals)
OVERVIEW_TOKENS = 32  # the layer x head grid averages blocks of tokens beyond this many
HEAD_VIEW_MIN_WEIGHT = 0.01  # the head view draws no line for a smaller weight


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


def attention_context(artifacts: Artifacts, tables: dict) -> dict:
    """Context of the attention page: showcase data and the heatmap whose data the page swaps."""
    config = artifacts.manifest["model"]["config"]
    if not artifacts.has("showcase/attentions"):
        return {"attention": None, "charts": []}
    n_layers, n_heads = config["n_layers"], config["n_heads"]
    data = {
        "n_layers": n_layers,
        "n_heads": n_heads,
        "scale": WEIGHT_SCALE,
        "examples": attention_examples(artifacts),
        "causal": bool((artifacts.manifest.get("attention") or {}).get("causal", False)),
        "overview_tokens": OVERVIEW_TOKENS,
        "head_view_min_weight": HEAD_VIEW_MIN_WEIGHT,
        "head_colors": charts.head_colors(n_heads),
    }
    heatmap = chart(
        "attention-heatmap",
        charts.attention_heatmap_chart([]),
        "Heatmap of attention weights from query tokens to key tokens",
        "Post-softmax attention of the selected head: row = attending (query) token, "
        "column = attended-to (key) token; each row sums to 1.",
        interactive=True,
    )
    head_view = chart(
        "attention-head-view",
        charts.head_view_chart(n_heads),
        "Head view: lines from each query token on the left to the key tokens on the right",
        "Head view of the selected layer: a line joins a query token (left) to a key token "
        "(right); its opacity is the attention weight and its colour the head. Hover a token "
        f"on the left to keep only its lines; weights below {HEAD_VIEW_MIN_WEIGHT} are not drawn.",
        interactive=True,
    )
    overview = chart(
        "attention-overview",
        charts.attention_overview_chart(n_layers, n_heads),
        "Grid of small attention heatmaps, one per layer and head, for the selected example",
        f"Every head of every layer for the selected example (rows: layers, columns: heads; "
        f"query down, key across). Examples longer than {OVERVIEW_TOKENS} tokens are shown "
        "averaged over blocks of consecutive tokens. Click a small map to open it in the "
        "heatmap and head view above.",
        interactive=True,
    )
    return {"attention": data, "charts": [heatmap, head_view, overview]}


PAGE = Page(
    "attention.html",
    "Attention",
    "model_attention.html",
    attention_context,
    scripts=("attention.js",),
)
