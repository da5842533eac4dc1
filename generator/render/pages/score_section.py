"""Attention scores before the softmax: the attention page's heatmap and the activations page's
corpus-wide histograms (kept apart from those pages' modules so each can change on its own).

Scores are `q·k/√d_head` plus the family's position bias (T5 relative buckets; XLNet's relative
position and segment terms; T5 does not scale by 1/√d_head), before the mask: the softmax of a
row over the keys its query can see gives the stored attention weights.
"""

from __future__ import annotations

import base64

import numpy as np

from generator.artifacts import Artifacts
from generator.render.charts import activations as activation_charts
from generator.render.charts import attention_scores as charts
from generator.render.charts.common import canvas_beyond
from generator.render.pages.common import chart
from generator.render.pages.packing import largest_map

SCORE_LEVELS = 32767  # scores travel as int16 multiples of max|score| / SCORE_LEVELS per map
SCORE_ARRAYS = {  # attention kind id -> its score array
    "self": "showcase/attention_scores",
    "encoder": "showcase/encoder_attention_scores",
    "decoder": "showcase/decoder_attention_scores",
    "cross": "showcase/cross_attention_scores",
}


def encode_scores(scores: np.ndarray) -> dict:
    """Pack a [layer, head, query, key] float map as {scale, values: base64 little-endian int16}."""
    top = float(np.max(np.abs(scores))) if scores.size else 0.0
    scale = top / SCORE_LEVELS if top > 0 else 1.0
    packed = np.rint(scores / scale).astype("<i2")
    return {"scale": scale, "values": base64.b64encode(packed.tobytes()).decode("ascii")}


def decode_scores(packed: dict, shape: tuple[int, ...]) -> np.ndarray:
    """Unpack `encode_scores` into [layer, head, query, key] float64 (as `decodeScores` in JS)."""
    values = np.frombuffer(base64.b64decode(packed["values"]), dtype="<i2")
    return values.reshape(shape).astype(np.float64) * packed["scale"]


def visible_key(query: int, key: int, *, causal: bool, window: int | None) -> bool:
    """Tell whether the softmax sees `key` from `query` (as `visibleKey` in scores.js)."""
    return (not causal or key <= query) and (window is None or key > query - window)


def score_examples(artifacts: Artifacts, examples: list[dict], kinds: list[dict]) -> list[dict]:
    """Return per showcase example and kind the packed scores over its real tokens."""
    arrays = {kind["id"]: artifacts.array(SCORE_ARRAYS[kind["id"]]) for kind in kinds}
    out = []
    for index, item in enumerate(examples):
        packed = {}
        for kind in kinds:
            nq, nk = len(item["tokens"][kind["query"]]), len(item["tokens"][kind["key"]])
            values = np.asarray(arrays[kind["id"]][index, :, :, :nq, :nk], dtype=np.float64)
            packed[kind["id"]] = encode_scores(values)
        out.append(packed)
    return out


def score_cells(data: dict, example: int, kind: int, layer: int, head: int) -> list[dict]:
    """Return the {query, key, score, visible} rows of one head (as `scoreCells` in scores.js)."""
    info, item = data["kinds"][kind], data["examples"][example]
    queries, keys = item["tokens"][info["query"]], item["tokens"][info["key"]]
    shape = (info["n_layers"], data["n_heads"], len(queries), len(keys))
    scores = decode_scores(data["scores"][example][info["id"]], shape)[layer, head]
    window = info["windows"][layer] if info["windows"] else None
    return [
        {
            "query": f"{q:04d} {queries[q]}",
            "key": f"{k:04d} {keys[k]}",
            "score": float(scores[q, k]),
            "visible": visible_key(q, k, causal=info["causal"], window=window),
        }
        for q in range(len(queries))
        for k in range(len(keys))
    ]


def scores_section(artifacts: Artifacts, attention: dict) -> tuple[dict | None, dict | None]:
    """Return (page data, chart) of the attention page's scores view; (None, None) without scores.

    `attention` is the attention page's data (kinds, examples with their tokens, n_heads).
    """
    kinds = attention["kinds"]
    if not kinds or not all(artifacts.has(SCORE_ARRAYS[kind["id"]]) for kind in kinds):
        return None, None
    config = artifacts.manifest["model"]["config"]
    windows = list(config.get("sliding_windows") or [])
    data = {
        "n_heads": attention["n_heads"],
        "kinds": [
            {
                **{key: kind[key] for key in ("id", "label", "query", "key", "n_layers")},
                "causal": kind["id"] == "decoder" or (kind["id"] == "self" and attention["causal"]),
                "windows": windows if kind["id"] == "self" else [],
            }
            for kind in kinds
        ],
        "examples": [{"tokens": item["tokens"]} for item in attention["examples"]],
        "scores": score_examples(artifacts, attention["examples"], kinds),
    }
    first = score_cells(data, 0, 0, 0, 0) if data["examples"] else []
    tokens = data["examples"][0]["tokens"] if data["examples"] else {}
    sizes = tuple(len(tokens.get(kinds[0][side], [])) for side in ("query", "key"))
    figure = charts.score_heatmap_chart(first, *sizes)
    sides = [(kind["query"], kind["key"]) for kind in data["kinds"]]
    figure["title"] = "Attention scores before the softmax, layer 0, head 0"
    heatmap = chart(
        "attention-scores",
        canvas_beyond(charts.score_heatmap_chart([], *sizes), largest_map(data["examples"], sides)),
        "Heatmap of the attention scores before the softmax, from query tokens to key tokens",
        "Scores of the selected example, layer and head before the softmax: q·k/√d_head plus "
        "the position bias the model adds (T5: relative position buckets, not scaled; XLNet: "
        "its relative position and segment terms), before the mask. Faded cells are keys the "
        "query cannot see (later tokens of a causal model, outside a sliding window): the "
        "softmax over each row's other cells gives the weights of the heatmap above.",
        interactive=True,
        figure_spec=figure if first else None,
    )
    return data, heatmap


def score_histograms(tables: dict, seq2seq: bool) -> tuple[dict | None, dict | None]:
    """Return (page data, chart) of the activations page's score histograms, or (None, None).

    Data: {layers, heads, bins: {"LAYER/HEAD": [[start, end, fraction], ...]}, encoder: whether
    they are an encoder-decoder's encoder scores}.
    """
    rows = tables.get("activation_score_histograms")
    if not rows:
        return None, None
    bins: dict[str, list] = {}
    for row in rows:
        bins.setdefault(f"{row['layer']}/{row['head']}", []).append(
            [_sig(row["start"]), _sig(row["end"]), _sig(row["fraction"], 3)]
        )
    data = {
        "layers": sorted({row["layer"] for row in rows}),
        "heads": sorted({row["head"] for row in rows}),
        "bins": bins,
        "encoder": seq2seq,
    }
    spec = activation_charts.histogram_chart()
    first = [{"start": s, "end": e, "fraction": f} for s, e, f in bins.get("0/0", [])]
    figure = {
        **spec,
        "datasets": {activation_charts.ROWS: first},
        "title": "Scores, layer 0, head 0",
    }
    histogram = chart(
        "activations-scores",
        spec,
        "Histogram of attention scores before the softmax for one layer and head",
        "Corpus-wide histogram of the selected head's attention scores before the softmax, "
        "over every real query and the keys it can see, in the same fixed logarithmic bins "
        "as the values above, on a symmetric-log axis.",
        interactive=True,
        figure_spec=figure if first else None,
    )
    return data, histogram


def _sig(value: float, digits: int = 4) -> float:
    """Round to `digits` significant digits (the page's data stays small)."""
    return float(f"{value:.{digits}g}")
