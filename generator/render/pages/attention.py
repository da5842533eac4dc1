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
OVERVIEW_TOKENS = 32  # the layer x head grid averages blocks of tokens beyond this many
HEAD_VIEW_MIN_WEIGHT = 0.01  # the head view draws no line for a smaller weight


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


def _maps(example: dict, kind: dict, n_heads: int) -> tuple[np.ndarray, list[str], list[str]]:
    """Return ([layer, head, query, key] weights in [0, 1], query tokens, key tokens)."""
    packed = np.frombuffer(base64.b64decode(example["weights"][kind["id"]]), dtype="<u2")
    queries, keys = example["tokens"][kind["query"]], example["tokens"][kind["key"]]
    weights = packed.reshape(-1, n_heads, len(queries), len(keys)).astype(np.float64)
    return weights / WEIGHT_SCALE, queries, keys


def head_view_figure(example: dict, kind: dict, n_heads: int, layer: int = 0) -> dict:
    """Return the static head view of the page's first view: every head of `layer`.

    Mirrors `headViewData` in attention.js.
    """
    weights, queries, keys = _maps(example, kind, n_heads)
    lines = [
        {
            "src": q,
            "dst": k,
            "head": head,
            "weight": float(weights[layer, head, q, k]),
            "from": token_label(q, queries[q]),
            "to": token_label(k, keys[k]),
        }
        for head in range(n_heads)
        for q in range(len(queries))
        for k in range(len(keys))
        if weights[layer, head, q, k] >= HEAD_VIEW_MIN_WEIGHT
    ]
    spec = charts.head_view_chart(n_heads)
    spec["datasets"] = {
        "lines": lines,
        "left": [{"src": i, "token": t} for i, t in enumerate(queries)],
        "right": [{"dst": i, "token": t} for i, t in enumerate(keys)],
    }
    spec["title"] = f"Head view, layer {layer}, every head"
    return spec


def _blocks(n: int) -> int:
    """Return the block size of `n` tokens in the overview grid (as `blocks` in attention.js)."""
    return -(-n // OVERVIEW_TOKENS) if n > OVERVIEW_TOKENS else 1


def _block_label(tokens: list[str], start: int, size: int) -> str:
    end = min(len(tokens), start + size)
    if size == 1:
        return token_label(start, tokens[start])
    text = " ".join(tokens[start:end])
    if len(text) > 40:
        text = text[:39] + "…"
    return f"tokens {start}–{end - 1}: {text}"


def overview_cells(example: dict, kind: dict, n_heads: int) -> list[dict]:
    """Return the `grid` dataset: every layer x head, tokens averaged over blocks when long.

    A cell is the attention a block of queries (mean) gives a block of keys (sum), so each row
    of cells still sums to 1. Mirrors `overviewCells` in attention.js.
    """
    weights, queries, keys = _maps(example, kind, n_heads)
    sq, sk = _blocks(len(queries)), _blocks(len(keys))
    q_starts, k_starts = range(0, len(queries), sq), range(0, len(keys), sk)
    cells = []
    for layer in range(weights.shape[0]):
        for head in range(n_heads):
            for qb, q0 in enumerate(q_starts):
                rows = weights[layer, head, q0 : q0 + sq]
                for kb, k0 in enumerate(k_starts):
                    cells.append(
                        {
                            "layer": layer,
                            "head": head,
                            "q": qb,
                            "k": kb,
                            "weight": float(rows[:, k0 : k0 + sk].sum() / len(rows)),
                            "query": _block_label(queries, q0, sq),
                            "key": _block_label(keys, k0, sk),
                        }
                    )
    return cells


def overview_figure(example: dict, kind: dict, n_heads: int) -> dict:
    """Return the static layer x head grid of the page's first example and kind."""
    spec = charts.attention_overview_chart(kind["n_layers"], n_heads)
    spec["datasets"] = {"grid": overview_cells(example, kind, n_heads)}
    return spec


def attention_context(artifacts: Artifacts, tables: dict) -> dict:
    """Context of the attention page: showcase data and the charts whose data the page swaps.

    Charts: one head's heatmap, the head view (one layer, chosen heads) and the layer x head
    grid; all three follow the selected attention kind (its layers, query and key tokens).
    """
    config = artifacts.manifest["model"]["config"]
    kinds = attention_kinds(artifacts)
    if not kinds:
        return {"attention": None, "charts": []}
    seq2seq = artifacts.manifest.get("seq2seq") or {}
    causal = bool((artifacts.manifest.get("attention") or {}).get("causal", False))
    n_heads = config["n_heads"]
    data = {
        "n_heads": n_heads,
        "scale": WEIGHT_SCALE,
        "target": seq2seq.get("target"),
        "causal": causal,
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
        figure_spec=(
            heatmap_figure(data["examples"][0], data["kinds"][0], config["n_heads"])
            if data["examples"]
            else None
        ),
    )
    head_view = chart(
        "attention-head-view",
        charts.head_view_chart(n_heads),
        "Head view: lines from each query token on the left to the key tokens on the right",
        "Head view of the selected layer: a line joins a query token (left) to a key token "
        "(right); its opacity is the attention weight and its colour the head. Hover a token "
        f"on the left to keep only its lines; weights below {HEAD_VIEW_MIN_WEIGHT} are not drawn.",
        interactive=True,
        figure_spec=(
            head_view_figure(data["examples"][0], data["kinds"][0], n_heads)
            if data["examples"]
            else None
        ),
    )
    overview = chart(
        "attention-overview",
        charts.attention_overview_chart(max(kind["n_layers"] for kind in data["kinds"]), n_heads),
        "Grid of small attention heatmaps, one per layer and head, for the selected example",
        f"Every head of every layer for the selected example (rows: layers, columns: heads; "
        f"query down, key across). Examples longer than {OVERVIEW_TOKENS} tokens are shown "
        "averaged over blocks of consecutive tokens. Click a small map to open it in the "
        "heatmap and head view above. With several attention kinds, it shows the selected one.",
        interactive=True,
        figure_spec=(
            overview_figure(data["examples"][0], data["kinds"][0], n_heads)
            if data["examples"]
            else None
        ),
    )
    return {"attention": data, "charts": [heatmap, head_view, overview]}


PAGE = Page(
    "attention.html",
    "Attention",
    "model_attention.html",
    attention_context,
    scripts=("attention.js",),
)
