"""Overview and weights charts: legends that explain thin bars, numeric head legends with a
colour per head, rank scales from 0, heatmaps in matrix coordinates with head-band rules."""

import re

import numpy as np
import vl_convert

from generator.analyze.weights import counts_by_block, depth_label, depth_order, tensor_table
from generator.render.charts import overview as overview_charts
from generator.render.charts import weights as weight_charts
from generator.render.pages.weights import (
    boundary_rows,
    encode_heatmap,
    head_bands,
    heatmap_rows,
    spectrum_rows,
)


def svg_of(spec: dict) -> str:
    """Render a spec (no "container" sizes) to SVG."""
    spec = {**spec, "width": 600} if spec.get("width") == "container" else spec
    return vl_convert.vegalite_to_svg(spec, allowed_base_urls=[])


def legend_labels(svg: str) -> list[str]:
    """The legend's entry labels, in drawing order."""
    return re.findall(r'role-legend-label"[^>]*><text[^>]*>([^<]*)</text>', svg)


def legend_fills(svg: str) -> list[str]:
    """The fill colours of the legend's entry symbols, in drawing order."""
    return re.findall(r'role-legend-symbol"[^>]*><path[^>]*fill="(#[0-9a-fA-F]{6})"', svg)


PARAMETER_ROWS = [
    {"block": "embeddings", "kind": "embeddings", "count": 11_918_592, "order": 0},
    *(
        row
        for layer in range(6)
        for row in (
            {"block": f"layer {layer}", "kind": "attention", "count": 591_360, "order": layer + 1},
            {"block": f"layer {layer}", "kind": "mlp", "count": 1_181_568, "order": layer + 1},
            {"block": f"layer {layer}", "kind": "norms", "count": 1_536, "order": layer + 1},
        )
    ),
    {"block": "pooler", "kind": "pooler", "count": 147_840, "order": 10**6},
]


def test_parameter_legend_names_the_share_of_a_component_too_thin_to_see():
    spec = overview_charts.parameter_counts_chart(PARAMETER_ROWS)
    labels = legend_labels(svg_of(spec))
    assert labels == [
        "embeddings (52 %)",
        "attention (16 %)",
        "mlp (31 %)",
        "norms (0.041 %)",
        "pooler (0.65 %)",
    ]
    note = overview_charts.thin_note(PARAMETER_ROWS, "kind")
    assert "norms (9,216 parameters)" in note and "pooler" not in note and "mlp" not in note
    assert overview_charts.format_share(3e-7) == "< 0.01 %"


def test_embedding_norm_sits_with_the_embeddings_and_a_final_norm_after_the_layers():
    bert = {"name": "embeddings.LayerNorm.scale", "layer": None, "component": "norms"}
    gpt2 = {"name": "ln_f.scale", "layer": None, "component": "norms"}
    llama = {"name": "model.norm.scale", "layer": None, "component": "norms"}
    assert depth_label(bert) == "embeddings" and depth_order(bert, 6) == -1
    for final in (gpt2, llama):
        assert depth_label(final) == "norms" and depth_order(final, 6) > 6
    section = {
        "tensors": [
            {**bert, "shape": [8], "count": 8, "role": "norm", "leaf": "gain", "stack": ""}
            | {k: 0.0 for k in ("frobenius", "mean", "std", "max_abs", "near_zero")},
            {
                "name": "embeddings.word_embeddings.embedding",
                "layer": None,
                "component": "embeddings",
                "shape": [10, 8],
                "count": 80,
                "role": "token_embedding",
                "leaf": "weight",
                "stack": "",
            }
            | {k: 0.0 for k in ("frobenius", "mean", "std", "max_abs", "near_zero")},
        ]
    }
    blocks = {row["block"] for row in counts_by_block(tensor_table(section, 2))}
    assert blocks == {"embeddings"}  # no 'norms' block without a visible bar after the layers


def test_head_palette_has_a_colour_per_head():
    assert weight_charts.head_colors(8).to_dict() == {"scheme": "tableau10"}
    assert weight_charts.head_colors(12).to_dict() == {"scheme": "tableau20"}
    assert weight_charts.head_colors(32).to_dict() == {"scheme": {"name": "turbo", "count": 32}}


def spectrum_entry(n_heads: int) -> dict:
    whole = [[r, 10.0 / r] for r in range(1, 65)]
    heads = [
        {"series": f"head {h}", "head": h, "points": [[r, (h + 1) / r] for r in range(1, 9)]}
        for h in range(n_heads)
    ]
    return {"whole": whole, "heads": heads}


def test_singular_value_legend_runs_0_to_11_with_twelve_distinct_colours():
    spec = weight_charts.singular_values_chart(12)
    spec["datasets"] = {"rows": spectrum_rows(spectrum_entry(12))}
    svg = svg_of(spec)
    assert legend_labels(svg) == [str(h) for h in range(12)]  # not 0, 1, 10, 11, 2, ...
    fills = legend_fills(svg)
    assert len(fills) == 12 and len(set(fills)) == 12
    assert weight_charts.WHOLE_COLOR.lower() not in {f.lower() for f in fills}
    assert "whole matrix" in svg


def test_head_rank_colours_start_at_zero_and_end_at_d_head():
    spec = weight_charts.head_ranks_chart(32)
    scale = spec["encoding"]["color"]["scale"]
    assert scale["domain"] == [0, 32]
    assert "0 to d_head = 32" in spec["encoding"]["color"]["title"]


def heatmap_entry(matrix: np.ndarray, block: tuple[int, int], bands: dict | None) -> dict:
    rows, cols = matrix.shape
    br, bc = block
    out_r, out_c = -(-rows // br), -(-cols // bc)
    padded = np.zeros((out_r * br, out_c * bc), np.float32)
    padded[:rows, :cols] = matrix
    blocks = padded.reshape(out_r, br, out_c, bc).transpose(0, 2, 1, 3).reshape(out_r, out_c, -1)
    pick = np.argmax(np.abs(blocks), axis=-1)
    pooled = np.take_along_axis(blocks, pick[..., None], axis=-1)[..., 0]
    text, scale = encode_heatmap(pooled)
    return {
        "size": [out_r, out_c],
        "block": list(block),
        "shape": [rows, cols],
        "scale": scale,
        "q": text,
        "bands": bands,
    }


def test_head_bands_follow_the_head_split_of_each_projection():
    d_head = 4
    matrices = [
        {"name": "q", "shape": [16, 16]},
        {"name": "o", "shape": [16, 16]},
        {"name": "kv", "shape": [16, 8]},  # grouped-query: 2 key heads
        {"name": "qkv", "shape": [16, 48]},
        {"name": "mlp", "shape": [16, 64]},
    ]
    heads = (
        [{"name": "q", "role": "query", "head": h} for h in range(4)]
        + [{"name": "o", "role": "attn_out", "head": h} for h in range(4)]
        + [{"name": "kv", "role": "key", "head": h} for h in range(2)]
        + [
            {"name": "qkv", "role": r, "head": h}
            for r in ("query", "key", "value")
            for h in range(4)
        ]
    )
    bands = head_bands({"settings": {"d_head": d_head}, "matrices": matrices, "heads": heads})
    assert bands["q"] == {"axis": "c", "at": [4, 8, 12], "major": []}
    assert bands["o"] == {"axis": "r", "at": [4, 8, 12], "major": []}
    assert bands["kv"] == {"axis": "c", "at": [4], "major": []}
    assert bands["qkv"] == {
        "axis": "c",
        "at": [4, 8, 12, 20, 24, 28, 36, 40, 44],
        "major": [16, 32],
    }
    assert "mlp" not in bands
    rules = boundary_rows(bands["qkv"])
    assert sum(r["major"] for r in rules) == 2 and len(rules) == 11


def test_heatmap_cells_tile_the_original_matrix_and_rules_share_its_coordinates():
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(10, 23)).astype(np.float32)
    bands = {"axis": "c", "at": [8, 16], "major": []}
    rows = heatmap_rows(heatmap_entry(matrix, (3, 4), bands))
    cells = [r for r in rows if r["kind"] == "cell"]
    area = sum((c["r1"] - c["r0"]) * (c["c1"] - c["c0"]) for c in cells)
    assert area == matrix.size and max(c["c1"] for c in cells) == 23
    assert max(c["r1"] for c in cells) == 10 and min(c["r0"] for c in cells) == 0
    assert [r["at"] for r in rows if r["kind"] == "boundary"] == [8, 16]
    spec = weight_charts.heatmap_chart()
    cells_layer, columns, _ = spec["layer"]
    x = cells_layer["encoding"]["x"]
    assert x["field"] == "c0" and x["type"] == "quantitative"
    assert x["axis"].get("labels", True) and x["axis"].get("ticks", True)
    assert columns["mark"]["type"] == "rule" and columns["encoding"]["x"]["field"] == "at"
    # Drawn: the x axis labels are column indices of the matrix, and both rules are drawn.
    spec["datasets"] = {"rows": rows}
    width, height = weight_charts.heatmap_size(4, 6)
    svg = svg_of({**spec, "width": width, "height": height})
    rule_marks = re.findall(r'class="mark-rule role-mark[^"]*"[^>]*>(.*?)</g>', svg, re.S)
    assert sum(group.count("<line") for group in rule_marks) == 2
    labels = re.findall(r'class="mark-text role-axis-label".*?</g>', svg, re.S)[0]
    ticks = [int(t) for t in re.findall(r"<text[^>]*>(\d+)</text>", labels)]
    assert ticks and max(ticks) <= 23 and ticks[0] == 0 and max(ticks) > 6  # not pooled indices
