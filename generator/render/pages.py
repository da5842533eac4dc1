"""Page builders: artifacts and analysis tables in, template context out (no I/O)."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

from generator.artifacts import Artifacts
from generator.render import charts

WEIGHT_SCALE = 1000  # attention weights travel as uint16 thousandths (3 decimals)


@dataclass(frozen=True)
class Page:
    """One page of a model folder."""

    filename: str
    title: str
    template: str


PAGES = (
    Page("index.html", "Overview", "model_overview.html"),
    Page("attention.html", "Attention", "model_attention.html"),
)


def chart(chart_id: str, spec: dict, label: str, caption: str, interactive: bool = False) -> dict:
    """Describe one chart for the `_chart.html` partial."""
    return {"id": chart_id, "spec": spec, "label": label, "caption": caption,
            "interactive": interactive}


def architecture_rows(manifest: dict) -> list[tuple[str, str]]:
    """Return (property, value) rows describing the architecture."""
    config = manifest["model"]["config"]
    total = sum(row["count"] for row in manifest["parameters"])
    rows = [
        ("family", config["family"]),
        ("model_type", manifest["model"]["model_type"]),
        ("layers", config["n_layers"]),
        ("attention heads per layer", config["n_heads"]),
        ("d_model (hidden size)", config["d_model"]),
        ("d_head", config["d_head"]),
        ("MLP width", config["d_mlp"]),
        ("activation", config["activation"]),
        ("vocabulary", f"{config['vocab_size']:,}"),
        ("max positions", f"{config['max_positions']:,}"),
        ("parameters", f"{total:,}"),
        ("forward dtype / stored dtype", f"{manifest['dtype']} / {manifest['store_dtype']}"),
    ]
    return [(name, str(value)) for name, value in rows]


def overview_context(artifacts: Artifacts, tables: dict) -> dict:
    """Context of the overview page: architecture, parameter chart, corpus summary."""
    manifest = artifacts.manifest
    figures = [chart("parameters", charts.parameter_counts_chart(tables["parameter_counts"]),
                     "Bar chart of parameter counts per block, coloured by component",
                     "Parameters per block: embeddings, each transformer layer, and the pooler.")]
    corpus = manifest.get("corpus")
    if corpus:
        figures.append(chart(
            "lengths", charts.length_histogram_chart(tables["length_histogram"], corpus["max_length"]),
            "Histogram of tokens per text", "Tokens per text after tokenisation, special tokens "
            "included; texts longer than max_length are truncated (a dashed rule marks it when "
            "texts come near it)."))
        if tables["label_counts"]:
            figures.append(chart("labels", charts.label_counts_chart(tables["label_counts"]),
                                 "Bar chart of texts per label", "Texts per label and split."))
    return {
        "architecture": architecture_rows(manifest),
        "corpus": corpus,
        "facts": tables.get("corpus_facts"),
        "charts": figures,
    }


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
        examples.append({
            "row": int(row),
            "text": str(texts[row]),
            "label": str(labels[row]) if labels is not None else "",
            "tokens": [str(t) for t in tokens[example, :n]],
            "weights": encode_weights(weights),
        })
    return examples


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
    heatmap = chart("attention-heatmap", charts.attention_heatmap_chart([]),
                    "Heatmap of attention weights from query tokens to key tokens",
                    "Post-softmax attention of the selected head: row = attending (query) token, "
                    "column = attended-to (key) token; each row sums to 1.", interactive=True)
    return {"attention": data, "charts": [heatmap]}


CONTEXTS = {
    "index.html": overview_context,
    "attention.html": attention_context,
}
