"""Attention page: per-head heatmaps of the showcase examples, chosen in the page.

Encoder-only models have one kind of attention (self-attention over the input tokens).
Encoder-decoder models have three, picked with a "which attention" selector: encoder
self-attention, causal decoder self-attention, and cross-attention (rows = decoder tokens,
columns = encoder tokens).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from generator.artifacts import Artifacts
from generator.render.charts import attention as charts
from generator.render.charts.common import canvas_beyond
from generator.render.pages.attention_files import attention_files, embedded
from generator.render.pages.common import Page, chart
from generator.render.pages.generation import generation_context
from generator.render.pages.packing import (  # noqa: F401 (re-exported)
    WEIGHT_SCALE,
    decode_weights,
    encode_weights,
    largest_map,
    token_label,
)
from generator.render.pages.score_section import scores_section
from generator.showcase_rows import showcase_note, showcase_texts

OVERVIEW_TOKENS = 32  # the layer x head grid averages blocks of tokens beyond this many
# ... and beyond fewer when its maps would draw more cells than this in all (an SVG draws every
# cell: 24 x 16 maps of 32 x 32 took over 15 s); 72 maps (6 x 12 heads) of 32 x 32 fit.
OVERVIEW_CELLS = 72 * OVERVIEW_TOKENS**2
HEAD_VIEW_MIN_WEIGHT = 0.01  # the head view draws no line for a smaller weight
HEAD_VIEW_TOP = 3  # a head view token's tooltip lists its largest weights, per drawn head
DEFAULT_HEADS = [0]  # heads the head view draws until the page's checkboxes say otherwise


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


def attention_kinds(artifacts: Artifacts) -> tuple[AttentionKind, ...]:
    """Return the attention kinds the artifacts hold (cross attentions: the seq2seq three)."""
    if artifacts.has("showcase/cross_attentions"):
        return SEQ2SEQ_KINDS
    return (SELF,) if artifacts.has(SELF.array) else ()


def _specials(artifacts: Artifacts, example: int, sides: dict) -> dict[str, list[int]]:
    """Return token side -> positions of special tokens, for the sides whose artifacts say.

    `showcase/special_mask` (1 on [CLS], [SEP], <s>, ...: the tokenizer's special ids other
    than unknown and padding) covers the input side; sides without a mask are left out.
    """
    specials = {}
    for side, prefix in (("input", ""), ("decoder", "decoder_")):
        name = f"showcase/{prefix}special_mask"
        if side in sides and artifacts.has(name):
            mask = artifacts.array(name)[example, : sides[side][0]]
            specials[side] = [int(i) for i in np.flatnonzero(mask)]
    return specials


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

    Weights of each kind are [layer, head, query, key] over visible tokens only; `special`
    holds, per token side the artifacts mark, the positions of special tokens.
    """
    shown = showcase_texts(artifacts)
    targets = (
        artifacts.array("showcase/target_texts") if artifacts.has("showcase/target_texts") else None
    )
    maps = {kind.id: artifacts.array(kind.array) for kind in kinds}
    examples = []
    for example, item in enumerate(shown):
        sides = _sides(artifacts, example)
        weights = {}
        for kind in kinds:
            nq, nk = sides[kind.query][0], sides[kind.key][0]
            values = np.asarray(maps[kind.id][example, :, :, :nq, :nk], dtype=np.float32)
            weights[kind.id] = encode_weights(values)
        examples.append(
            {
                "row": item.row,
                "text": item.text,
                "label": item.label,
                "target": str(targets[example]) if targets is not None else "",
                "tokens": {side: tokens for side, (_, tokens) in sides.items()},
                "special": _specials(artifacts, example, sides),
                "weights": weights,
            }
        )
    return examples


def _maps(example: dict, kind: dict, n_heads: int) -> tuple[np.ndarray, list[str], list[str]]:
    """Return ([layer, head, query, key] weights in [0, 1], query tokens, key tokens)."""
    queries, keys = example["tokens"][kind["query"]], example["tokens"][kind["key"]]
    weights = decode_weights(example["weights"][kind["id"]])
    return weights.reshape(-1, n_heads, len(queries), len(keys)), queries, keys


def shown_positions(example: dict, side: str, n: int, hide_special: bool) -> list[int]:
    """Return the token positions of `side` drawn: all, or all but special ones (as attention.js)."""
    hidden = set(example.get("special", {}).get(side, [])) if hide_special else set()
    return [i for i in range(n) if i not in hidden]


def _row_view(row: np.ndarray, keys: list[int], rescale: bool) -> np.ndarray:
    """Return what the colour shows for `keys` of one query row: weights, or weights ÷ their max."""
    values = row[keys]
    if not rescale:
        return values
    top = values.max() if len(values) else 0.0
    return values / top if top > 0 else np.zeros_like(values)


def heatmap_cells(
    example: dict,
    kind: dict,
    n_heads: int,
    layer: int,
    head: int,
    *,
    rescale: bool = False,
    hide_special: bool = False,
) -> list[dict]:
    """Return the {query, key, weight, shown[, hidden]} rows of one head of one attention kind.

    `weight` is the stored weight; `shown` what the colour shows: the weight, or with `rescale`
    the weight ÷ the largest weight of its row among the keys drawn (0 for a row whose drawn
    weights are all 0). With `hide_special`, special tokens are left out as queries and keys,
    rows are not renormalised, and `hidden` is the row's weight on the hidden keys.
    Mirrors `attentionCells` in attention.js, so the figure shows what the page first shows.
    """
    weights, queries, keys = _maps(example, kind, n_heads)
    weights = weights[layer, head]  # [query, key]
    shown_q = shown_positions(example, kind["query"], len(queries), hide_special)
    shown_k = shown_positions(example, kind["key"], len(keys), hide_special)
    hidden_k = sorted(set(range(len(keys))) - set(shown_k))
    key_labels = [token_label(k, keys[k]) for k in shown_k]
    cells = []
    for q in shown_q:
        values = _row_view(weights[q], shown_k, rescale)
        query, hidden = token_label(q, queries[q]), float(weights[q, hidden_k].sum())
        for k, label, value in zip(shown_k, key_labels, values, strict=True):
            cell = {"query": query, "key": label, "weight": float(weights[q, k])}
            cell["shown"] = float(value)
            if hide_special:
                cell["hidden"] = hidden
            cells.append(cell)
    return cells


def special_names(examples: list[dict], default: str = "special tokens") -> str:
    """Return the special tokens the examples hold, as "[CLS], [SEP]" (first seen first)."""
    names = [
        item["tokens"][side][i]
        for item in examples
        for side, positions in item.get("special", {}).items()
        for i in positions
    ]
    return ", ".join(dict.fromkeys(names)) or default


def heatmap_figure(example: dict, kind: dict, n_heads: int) -> dict:
    """Return the static heatmap of the page's initial view: first example and kind, layer 0, head 0."""
    cells = heatmap_cells(example, kind, n_heads, 0, 0)
    sizes = len(example["tokens"][kind["query"]]), len(example["tokens"][kind["key"]])
    spec = charts.attention_heatmap_chart(cells, *sizes)
    text = example["text"] if len(example["text"]) <= 60 else example["text"][:59] + "…"
    spec["title"] = {"text": "Attention, layer 0, head 0", "subtitle": text}
    return spec


def head_view_lines(
    example: dict,
    kind: dict,
    n_heads: int,
    layer: int,
    heads: list[int],
    *,
    rescale: bool = False,
    hide_special: bool = False,
) -> dict:
    """Return the head view's datasets {lines, left, right} for the drawn `heads` of `layer`.

    A line per (query, key, head) whose stored weight is at least HEAD_VIEW_MIN_WEIGHT; its
    `shown` (opacity) is the weight, or the weight ÷ its row's max among the keys drawn. Mirrors
    `headViewData` in attention.js.
    """
    weights, queries, keys = _maps(example, kind, n_heads)
    shown_q = shown_positions(example, kind["query"], len(queries), hide_special)
    shown_k = shown_positions(example, kind["key"], len(keys), hide_special)
    lines = []
    for slot, head in enumerate(heads):
        for q in shown_q:
            values = _row_view(weights[layer, head, q], shown_k, rescale)
            for k, value in zip(shown_k, values, strict=True):
                weight = float(weights[layer, head, q, k])
                if weight >= HEAD_VIEW_MIN_WEIGHT:
                    lines.append(
                        {
                            "src": q,
                            "dst": k,
                            "head": head,
                            "slot": slot,
                            "weight": weight,
                            "shown": float(value),
                            "from": token_label(q, queries[q]),
                            "to": token_label(k, keys[k]),
                        }
                    )
    tip = _token_tips(lines, heads)
    return {
        "lines": lines,
        "left": [
            {"src": q, "token": queries[q], "tip": tip("src", q, queries[q])} for q in shown_q
        ],
        "right": [{"dst": k, "token": keys[k], "tip": tip("dst", k, keys[k])} for k in shown_k],
    }


def _token_tips(lines: list[dict], heads: list[int]):
    """Return tip(field, position, token) -> the tooltip of one head view token.

    `field` is "src" for a query token, "dst" for a key token. Per drawn head: its
    HEAD_VIEW_TOP largest weights among the lines drawn, as "token weight" of the other side,
    largest first, ties by position. Mirrors `tokenTips` in attention.js.
    """
    groups: dict[tuple[str, int, int], list[dict]] = {}
    for line in lines:
        for field in ("src", "dst"):
            groups.setdefault((field, line[field], line["head"]), []).append(line)

    def tip(field: str, position: int, token: str) -> dict:
        query = field == "src"
        other, label, side = ("dst", "to", "keys") if query else ("src", "from", "queries")
        out = {"query token" if query else "key token": token_label(position, token)}
        for head in heads:
            rows = groups.get((field, position, head), [])
            rows = sorted(rows, key=lambda r: (-r["weight"], r[other]))[:HEAD_VIEW_TOP]
            top = ", ".join(f"{r[label][5:]} {r['weight']:.3f}" for r in rows)
            out[f"head {head}: top {side}"] = top or "none drawn"
        return out

    return tip


def head_view_figure(example: dict, kind: dict, n_heads: int, layer: int = 0) -> dict:
    """Return the static head view of the page's first view: head 0 of `layer`."""
    spec = charts.head_view_chart(n_heads)
    spec["datasets"] = head_view_lines(example, kind, n_heads, layer, DEFAULT_HEADS)
    spec["title"] = f"Head view, layer {layer}, head {', '.join(map(str, DEFAULT_HEADS))}"
    return spec


def overview_tokens(n_layers: int, n_heads: int) -> int:
    """Return the most tokens a side of the grid's small maps shows one by one.

    OVERVIEW_TOKENS, or fewer when n_layers x n_heads maps of that many would draw more than
    OVERVIEW_CELLS cells (24 x 16 heads: 13).
    """
    fit = math.isqrt(OVERVIEW_CELLS // max(n_layers * n_heads, 1))
    return max(1, min(OVERVIEW_TOKENS, fit))


def _blocks(n: int, side: int = OVERVIEW_TOKENS) -> int:
    """Return the block size of `n` tokens in the overview grid (as `blocks` in attention.js)."""
    return -(-n // side) if n > side else 1


def _block_label(tokens: list[str], start: int, size: int) -> str:
    end = min(len(tokens), start + size)
    if size == 1:
        return token_label(start, tokens[start])
    text = " ".join(tokens[start:end])
    if len(text) > 40:
        text = text[:39] + "…"
    return f"tokens {start}–{end - 1}: {text}"


def overview_cells(
    example: dict, kind: dict, n_heads: int, side: int = OVERVIEW_TOKENS
) -> list[dict]:
    """Return the `grid` dataset: every layer x head, tokens averaged over blocks when long.

    A cell is the attention a block of queries (mean) gives a block of keys (sum), so each row
    of cells still sums to 1; a side of more than `side` tokens is split into blocks. Mirrors
    `overviewCells` in attention.js.
    """
    weights, queries, keys = _maps(example, kind, n_heads)
    sq, sk = _blocks(len(queries), side), _blocks(len(keys), side)
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


def overview_figure(example: dict, kind: dict, n_heads: int, side: int = OVERVIEW_TOKENS) -> dict:
    """Return the static layer x head grid of the page's first example and kind."""
    spec = charts.attention_overview_chart(kind["n_layers"], n_heads)
    spec["datasets"] = {"grid": overview_cells(example, kind, n_heads, side)}
    return spec


def attention_context(artifacts: Artifacts, tables: dict) -> dict:
    """Context of the attention page: showcase data and the charts whose data the page swaps.

    Charts: one head's heatmap, the head view (one layer, chosen heads) and the layer x head
    grid; all three follow the selected attention kind (its layers, query and key tokens).
    """
    config = artifacts.manifest["model"]["config"]
    kinds = attention_kinds(artifacts)
    if not kinds:
        return {
            "attention": None,
            "generation": None,
            "generation_reason": "",
            "generation_charts": [],
            "charts": [],
            "scores": None,
            "score_chart": None,
        }
    seq2seq = artifacts.manifest.get("seq2seq") or {}
    causal = bool((artifacts.manifest.get("attention") or {}).get("causal", False))
    n_heads = config["n_heads"]
    examples = attention_examples(artifacts, kinds)
    specials = special_names(examples)
    side = overview_tokens(max(config[kind.layers] for kind in kinds), n_heads)
    largest = largest_map(examples, [(kind.query, kind.key) for kind in kinds])
    data = {
        "n_heads": n_heads,
        "scale": WEIGHT_SCALE,
        "target": seq2seq.get("target"),
        "causal": causal,
        "note": config.get("attention_note") or "",  # e.g. XLNet: the content stream only
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
        "examples": examples,
        "overview_tokens": side,
        "head_view_min_weight": HEAD_VIEW_MIN_WEIGHT,
        "head_colors": charts.head_colors(n_heads),
        "default_heads": DEFAULT_HEADS,
        "head_view_top": HEAD_VIEW_TOP,
        "has_special": any(item["special"] for item in examples),
        "special_names": specials,
        "heatmap_specs": {
            mode: canvas_beyond(spec, largest)
            for mode, spec in charts.heatmap_specs(specials).items()
        },
        "heatmap_tips": charts.heatmap_tips(specials),
        "heatmap_step": {
            "min": charts.HEATMAP_MIN_STEP,
            "max": charts.HEATMAP_MAX_STEP,
            "label_room": charts.HEATMAP_LABEL_ROOM,
        },
    }
    heatmap = chart(
        "attention-heatmap",
        data["heatmap_specs"][charts.heatmap_mode(False, False)],
        "Heatmap of attention weights from query tokens to key tokens",
        "Post-softmax attention of the selected head: row = attending (query) token, "
        "column = attended-to (key) token; each row sums to 1. Cells are sized to the page "
        f"({charts.HEATMAP_MIN_STEP}–{charts.HEATMAP_MAX_STEP} px a token; a long example "
        "scrolls sideways). “Hide special tokens” leaves out "
        f"{specials} without renormalising: a row then sums to 1 minus its weight on them, "
        "which the tooltip gives. “Rescale each row” colours each weight ÷ the largest "
        "weight of its row (every row's maximum is 1), so rows dominated by one sink token "
        "still show their pattern; the tooltip always gives the stored weight.",
        interactive=True,
        figure_spec=(
            heatmap_figure(data["examples"][0], data["kinds"][0], config["n_heads"])
            if data["examples"]
            else None
        ),
    )
    head_view = chart(
        "attention-head-view",
        canvas_beyond(charts.head_view_chart(n_heads), largest),
        "Head view: lines from each query token on the left to the key tokens on the right",
        "Head view of the selected layer for the heads ticked above (head "
        f"{', '.join(map(str, DEFAULT_HEADS))} at first): a line joins a query token (left) to "
        "a key token (right); its colour is the head and its opacity the attention weight (÷ "
        "the row's largest weight with “Rescale each row”). Hover a query token to keep "
        "only its lines and read their weights beside the keys; hover a key token to read "
        "the weight each query gives it. Weights below "
        f"{HEAD_VIEW_MIN_WEIGHT} are not drawn; “Hide special tokens” applies here too.",
        interactive=True,
        figure_spec=(
            head_view_figure(data["examples"][0], data["kinds"][0], n_heads)
            if data["examples"]
            else None
        ),
    )
    overview = chart(
        "attention-overview",
        charts.attention_maps_chart(max(kind["n_layers"] for kind in data["kinds"]), n_heads),
        "Grid of small attention heatmaps, one per layer and head, for the selected example",
        f"Every head of every layer for the selected example (rows: layers, columns: heads; "
        f"query down, key across). Examples longer than {side} tokens are shown "
        "averaged over blocks of consecutive tokens"
        + (
            f" ({side}, not {OVERVIEW_TOKENS}: the grid draws at most {OVERVIEW_CELLS:,} cells, "
            f"and it has {max(k['n_layers'] for k in data['kinds']) * n_heads} maps)"
            if side < OVERVIEW_TOKENS
            else ""
        )
        + ". Click a small map to open it in the "
        "heatmap and head view above; the map of the selected layer and head is framed in "
        "orange. The grid always shows the stored weights, special tokens included. With "
        "several attention kinds, it shows the selected one.",
        interactive=True,
        figure_spec=(
            overview_figure(data["examples"][0], data["kinds"][0], n_heads, side)
            if data["examples"]
            else None
        ),
    )
    steps = generation_context(artifacts)
    scores, score_chart = scores_section(artifacts, data)
    files = attention_files(
        data["examples"],
        data["kinds"],
        n_heads,
        scores["scores"] if scores else None,
        lambda n: _blocks(n, side),
    )
    data = {**data, "examples": embedded(data["examples"])}
    if scores:  # the scale per example and kind stays; each head's values are in its file
        scale = [{kind: {"scale": v["scale"]} for kind, v in s.items()} for s in scores["scores"]]
        scores = {**scores, "scores": scale}
    return {
        "data_files": files,
        "attention": data,
        "generation": steps["generation"],
        "generation_reason": steps["reason"],
        "generation_charts": steps["charts"],
        "charts": [heatmap, head_view, overview, *steps["charts"]]
        + ([score_chart] if score_chart else []),
        "scores": scores,
        "score_chart": score_chart,
        "showcase_note": showcase_note(artifacts),
    }


PAGE = Page(
    "attention.html",
    "Attention",
    "model_attention.html",
    attention_context,
    scripts=("selectors.js", "attention.js", "generation.js", "scores.js"),
)
