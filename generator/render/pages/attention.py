"""Attention page: per-head heatmaps of the showcase examples, chosen in the page.

Encoder-only models have one kind of attention (self-attention over the input tokens).
Encoder-decoder models have three, picked with a "which attention" selector: encoder
self-attention, causal decoder self-attention, and cross-attention (rows = decoder tokens,
columns = encoder tokens).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

from generator.artifacts import Artifacts
from generator.render.charts import attention as charts
from generator.render.pages.common import Page, chart

WEIGHT_SCALE = 1000  # attention weights travel as uint16 thousandths (3 decimals)


@dataclass(frozen=True)
class AttentionKind:
    """One attention map family: artifact, label, and which token list rows / columns use."""

    id: str
    array: str
    label: str
    query: str  # token side of the rows: "input" or "decoder"
    key: str  # token side of the columns
    layers: str  # config key of its layer count
    caption: str


SELF = AttentionKind(
    "self",
    "showcase/attentions",
    "Self-attention",
    "input",
    "input",
    "n_layers",
    "Rows are the attending (query) tokens, columns the attended-to (key) tokens.",
)
SEQ2SEQ_KINDS = (
    AttentionKind(
        "encoder",
        "showcase/encoder_attentions",
        "Encoder self-attention",
        "input",
        "input",
        "n_layers",
        "Encoder self-attention: rows and columns are input (encoder) tokens; every token "
        "sees every other.",
    ),
    AttentionKind(
        "decoder",
        "showcase/decoder_attentions",
        "Decoder self-attention",
        "decoder",
        "decoder",
        "n_decoder_layers",
        "Decoder self-attention (causal): rows and columns are decoder tokens; a token sees "
        "only itself and earlier tokens.",
    ),
    AttentionKind(
        "cross",
        "showcase/cross_attentions",
        "Cross-attention",
        "decoder",
        "input",
        "n_decoder_layers",
        "Cross-attention: rows are decoder tokens (queries), columns are encoder tokens (keys).",
    ),
)


def encode_weights(weights: np.ndarray) -> str:
    """Pack attention weights in [0, 1] as base64 little-endian uint16 thousandths."""
    scaled = np.rint(np.clip(weights, 0.0, 1.0) * WEIGHT_SCALE).astype("<u2")
    return base64.b64encode(scaled.tobytes()).decode("ascii")


def attention_kinds(artifacts: Artifacts) -> tuple[AttentionKind, ...]:
    """Return the attention kinds the artifacts hold (cross attentions: the seq2seq three)."""
    if artifacts.has("showcase/cross_attentions"):
        return SEQ2SEQ_KINDS
    return (SELF,) if artifacts.has(SELF.array) else ()


def _sides(artifacts: Artifacts, example: int) -> dict[str, tuple[int, list[str]]]:
    """Return token side -> (visible length, tokens) for one showcase example."""
    sides = {}
    for side, prefix in (("input", ""), ("decoder", "decoder_")):
        if not artifacts.has(f"showcase/{prefix}tokens"):
            continue
        n = int(artifacts.array(f"showcase/{prefix}attention_mask")[example].sum())
        tokens = artifacts.array(f"showcase/{prefix}tokens")[example, :n]
        sides[side] = (n, [str(t) for t in tokens])
    return sides


def attention_examples(artifacts: Artifacts, kinds: tuple[AttentionKind, ...]) -> list[dict]:
    """Return per showcase example: text, label, tokens per side, packed weights per kind.

    Weights of each kind are [layer, head, query, key] over visible tokens only.
    """
    rows = artifacts.array("showcase/index")
    texts = artifacts.array("corpus/texts")
    labels = artifacts.array("corpus/labels") if artifacts.has("corpus/labels") else None
    targets = (
        artifacts.array("showcase/target_texts") if artifacts.has("showcase/target_texts") else None
    )
    maps = {kind.id: artifacts.array(kind.array) for kind in kinds}
    examples = []
    for example, row in enumerate(rows):
        sides = _sides(artifacts, example)
        weights = {}
        for kind in kinds:
            nq, nk = sides[kind.query][0], sides[kind.key][0]
            values = np.asarray(maps[kind.id][example, :, :, :nq, :nk], dtype=np.float32)
            weights[kind.id] = encode_weights(values)
        examples.append(
            {
                "row": int(row),
                "text": str(texts[row]),
                "label": str(labels[row]) if labels is not None else "",
                "target": str(targets[example]) if targets is not None else "",
                "tokens": {side: tokens for side, (_, tokens) in sides.items()},
                "weights": weights,
            }
        )
    return examples


def token_label(index: int, token: str) -> str:
    """Return the axis label of a token: zero-padded position, space, token (as attention.js)."""
    return f"{index:04d} {token}"


def heatmap_cells(example: dict, kind: dict, n_heads: int, layer: int, head: int) -> list[dict]:
    """Return the {query, key, weight} rows of one head of one attention kind.

    Mirrors `attentionCells` in attention.js, so the figure shows what the page first shows.
    """
    packed = np.frombuffer(base64.b64decode(example["weights"][kind["id"]]), dtype="<u2")
    queries, keys = example["tokens"][kind["query"]], example["tokens"][kind["key"]]
    weights = packed.reshape(-1, n_heads, len(queries), len(keys))[layer, head]  # [query, key]
    query_labels = [token_label(i, t) for i, t in enumerate(queries)]
    key_labels = [token_label(i, t) for i, t in enumerate(keys)]
    return [
        {
            "query": query_labels[q],
            "key": key_labels[k],
            "weight": int(weights[q, k]) / WEIGHT_SCALE,
        }
        for q in range(len(queries))
        for k in range(len(keys))
    ]


def heatmap_figure(example: dict, kind: dict, n_heads: int) -> dict:
    """Return the static heatmap of the page's initial view: first example and kind, layer 0, head 0."""
    spec = charts.attention_heatmap_chart(heatmap_cells(example, kind, n_heads, 0, 0))
    text = example["text"] if len(example["text"]) <= 60 else example["text"][:59] + "…"
    spec["title"] = {"text": "Attention, layer 0, head 0", "subtitle": text}
    return spec


def attention_context(artifacts: Artifacts, tables: dict) -> dict:
    """Context of the attention page: showcase data and the heatmap whose data the page swaps."""
    config = artifacts.manifest["model"]["config"]
    kinds = attention_kinds(artifacts)
    if not kinds:
        return {"attention": None, "charts": []}
    seq2seq = artifacts.manifest.get("seq2seq") or {}
    data = {
        "n_heads": config["n_heads"],
        "scale": WEIGHT_SCALE,
        "target": seq2seq.get("target"),
        "kinds": [
            {
                "id": kind.id,
                "label": kind.label,
                "query": kind.query,
                "key": kind.key,
                "n_layers": config[kind.layers],
                "caption": kind.caption,
            }
            for kind in kinds
        ],
        "examples": attention_examples(artifacts, kinds),
    }
    heatmap = chart(
        "attention-heatmap",
        charts.attention_heatmap_chart([]),
        "Heatmap of attention weights from query tokens to key tokens",
        "Post-softmax attention of the selected head: row = attending (query) token, "
        "column = attended-to (key) token; each row sums to 1.",
        interactive=True,
        figure_spec=(
            heatmap_figure(data["examples"][0], data["kinds"][0], config["n_heads"])
            if data["examples"]
            else None
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
