"""Attention page: heatmap display modes (hidden special tokens, per-row rescaling), head view
rows, the chart specs (width, legend titles, grid frame, head colours) and the page's controls.

Row builders are checked on a small synthetic example (exact weights, known special tokens);
the built tiny-BERT page is checked for its controls and the data the page script needs.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from test_render import parse

from generator.render.charts import attention as charts
from generator.render.pages import attention as page

TOKENS = ["[CLS]", "the", "cat", "sat", "[SEP]"]
SPECIAL = [0, 4]


def synthetic_example(n_layers: int = 2, n_heads: int = 3, seed: int = 0) -> tuple[dict, dict]:
    """Return (example, kind) with softmax rows whose largest weight is on [CLS] (a sink)."""
    rng = np.random.default_rng(seed)
    n = len(TOKENS)
    logits = rng.normal(size=(n_layers, n_heads, n, n))
    logits[..., 0] += 3.0  # every query leans on [CLS]
    weights = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    example = {
        "text": "the cat sat",
        "tokens": {"input": TOKENS},
        "special": {"input": SPECIAL},
        "weights": {"self": page.encode_weights(weights)},
    }
    kind = {"id": "self", "query": "input", "key": "input", "n_layers": n_layers}
    return example, kind


def stored(example: dict, kind: dict, n_heads: int) -> np.ndarray:
    """Return the stored [layer, head, query, key] weights (thousandths, as the page decodes)."""
    return page._maps(example, kind, n_heads)[0]


def by_row(cells: list[dict], field: str) -> dict[str, list[float]]:
    rows: dict[str, list[float]] = {}
    for cell in cells:
        rows.setdefault(cell["query"], []).append(cell[field])
    return rows


def test_plain_cells_hold_the_stored_weights_and_rows_sum_to_one():
    example, kind = synthetic_example()
    weights = stored(example, kind, 3)[1, 2]
    cells = page.heatmap_cells(example, kind, 3, 1, 2)
    assert len(cells) == len(TOKENS) ** 2
    assert all(cell["shown"] == cell["weight"] for cell in cells)
    got = np.array([cell["weight"] for cell in cells]).reshape(len(TOKENS), len(TOKENS))
    np.testing.assert_array_equal(got, weights)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=len(TOKENS) / page.WEIGHT_SCALE)


def test_rescaled_rows_have_maximum_one_and_keep_the_stored_weight():
    example, kind = synthetic_example()
    weights = stored(example, kind, 3)[0, 1]
    cells = page.heatmap_cells(example, kind, 3, 0, 1, rescale=True)
    for q, (query, shown) in enumerate(by_row(cells, "shown").items()):
        assert query == page.token_label(q, TOKENS[q])
        assert max(shown) == 1.0
        np.testing.assert_allclose(shown, weights[q] / weights[q].max())
    got = np.array([cell["weight"] for cell in cells]).reshape(weights.shape)
    np.testing.assert_array_equal(got, weights)  # rescaling only changes what is shown


def test_hidden_special_tokens_are_left_out_without_renormalising():
    example, kind = synthetic_example()
    weights = stored(example, kind, 3)[1, 0]
    cells = page.heatmap_cells(example, kind, 3, 1, 0, hide_special=True)
    kept = [i for i in range(len(TOKENS)) if i not in SPECIAL]
    assert len(cells) == len(kept) ** 2
    assert not any(
        token in cell[side] for cell in cells for side in ("query", "key") for token in TOKENS[::4]
    )
    for q, row in zip(kept, by_row(cells, "weight").values(), strict=True):
        np.testing.assert_array_equal(row, weights[q, kept])  # not renormalised
    for q, hidden in zip(kept, by_row(cells, "hidden").values(), strict=True):
        assert hidden == [pytest.approx(weights[q, SPECIAL].sum())] * len(kept)
        assert sum(weights[q, kept]) + hidden[0] == pytest.approx(weights[q].sum())
    assert all(cell["shown"] == cell["weight"] for cell in cells)


def test_hidden_and_rescaled_rows_use_the_max_of_the_tokens_shown():
    example, kind = synthetic_example()
    weights = stored(example, kind, 3)[0, 0]
    cells = page.heatmap_cells(example, kind, 3, 0, 0, rescale=True, hide_special=True)
    kept = [1, 2, 3]
    for q, shown in zip(kept, by_row(cells, "shown").values(), strict=True):
        assert max(shown) == 1.0
        np.testing.assert_allclose(shown, weights[q, kept] / weights[q, kept].max())
    # The sink is gone: the largest visible weight is well below the [CLS] weight.
    assert all(weights[q, kept].max() < weights[q, 0] for q in kept)


def test_head_view_lines_follow_the_heads_and_options():
    example, kind = synthetic_example()
    weights = stored(example, kind, 3)
    data = page.head_view_lines(example, kind, 3, 1, [2, 0], rescale=True, hide_special=True)
    assert [row["token"] for row in data["left"]] == ["the", "cat", "sat"]
    assert [row["token"] for row in data["right"]] == ["the", "cat", "sat"]
    assert {(line["head"], line["slot"]) for line in data["lines"]} == {(2, 0), (0, 1)}
    for line in data["lines"]:
        assert line["src"] not in SPECIAL and line["dst"] not in SPECIAL
        w = weights[1, line["head"], line["src"]]
        assert line["weight"] == w[line["dst"]] >= page.HEAD_VIEW_MIN_WEIGHT
        assert line["shown"] == pytest.approx(w[line["dst"]] / w[[1, 2, 3]].max())
    tip = next(row["tip"] for row in data["right"] if row["dst"] == 2)
    assert list(tip) == ["key token", "head 2: top queries", "head 0: top queries"]
    into = sorted(
        (
            (line["weight"], line["src"])
            for line in data["lines"]
            if line["dst"] == 2 and line["head"] == 2
        ),
        key=lambda pair: (-pair[0], pair[1]),
    )[: page.HEAD_VIEW_TOP]
    assert tip["head 2: top queries"] == ", ".join(f"{TOKENS[q]} {w:.3f}" for w, q in into)
    plain = page.head_view_lines(example, kind, 3, 1, [1])
    assert all(line["shown"] == line["weight"] for line in plain["lines"])
    assert {line["src"] for line in plain["lines"]} == set(range(len(TOKENS)))


def test_heatmap_step_fits_the_column_and_stays_readable():
    assert charts.heatmap_step(5, 1000) == charts.HEATMAP_MAX_STEP  # short: capped
    assert charts.heatmap_step(32, 1060) == (1060 - charts.HEATMAP_LABEL_ROOM) // 32
    assert charts.heatmap_step(128, 1060) == charts.HEATMAP_MIN_STEP  # long: scrolls
    assert charts.HEATMAP_MIN_STEP >= 11  # 10-11 px labels still fit a cell
    spec = charts.attention_heatmap_chart([], 18, 20)
    step = charts.heatmap_step(20)
    assert (spec["width"], spec["height"]) == (20 * step, 18 * step)
    assert spec["width"] > 400  # was 16 px a token (~290 px for 18 tokens)


def test_heatmap_specs_say_what_the_colour_means_in_each_mode():
    specs = charts.heatmap_specs("[CLS], [SEP]")
    assert set(specs) == {"weight", "weight-nospecial", "rowmax", "rowmax-nospecial"}
    legends = {mode: spec["encoding"]["color"]["title"] for mode, spec in specs.items()}
    assert legends["weight"] == legends["weight-nospecial"] == "attention weight"
    assert legends["rowmax"] == legends["rowmax-nospecial"] == "weight ÷ row max"
    for mode, spec in specs.items():
        assert spec["encoding"]["color"]["field"] == "shown"
        title = " ".join(np.atleast_1d(spec["title"]["text"]))
        assert ("row's maximum is 1" in title) == mode.startswith("rowmax")
        assert ("[CLS], [SEP] hidden, rows not renormalised" in title) == mode.endswith("nospecial")
        assert spec["mark"]["tooltip"] == {"expr": "datum.tip"}  # attention.js builds each tip
        assert spec["mark"]["aria"] is False and "tooltip" not in spec["encoding"]
        rescale, hide = mode.startswith("rowmax"), mode.endswith("nospecial")
        titles = charts.heatmap_tip_titles(rescale, hide, "[CLS], [SEP]")
        assert titles[:3] == ["query", "key", "attention weight"]  # the stored weight, always
        assert ("÷ row max" in titles) == rescale
        assert ("row's weight on [CLS], [SEP]" in titles) == hide
    assert "each row sums to 1" in specs["weight"]["title"]["text"]


def lab(color: str) -> np.ndarray:
    """CIELAB (D65) of a #rrggbb colour."""
    rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    rgb = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ rgb / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_twelve_heads_get_clearly_distinct_colours():
    colors = charts.head_colors(12)
    assert len(set(colors)) == 12
    gaps = [np.linalg.norm(lab(a) - lab(b)) for a, b in itertools.combinations(colors, 2)]
    assert min(gaps) > 30  # CIE76; the old palette had two blues 19 apart
    assert all(38 <= lab(c)[0] <= 78 for c in colors)  # visible on light and dark backgrounds
    spec = charts.head_view_chart(12)
    assert spec["layer"][0]["encoding"]["color"]["scale"]["range"] == colors


def test_head_view_hover_params_and_weight_labels():
    spec = charts.head_view_chart(12)
    params = {p["name"]: p for p in spec["params"]}
    assert params["focus"]["select"]["fields"] == ["src"]
    assert params["focus_key"]["select"]["fields"] == ["dst"]  # key-side hover
    assert "hv_right_marks" in params["focus_key"]["select"]["on"]
    opacity = spec["layer"][0]["encoding"]["strokeOpacity"]
    assert opacity["condition"]["test"] == {"and": [{"param": "focus"}, {"param": "focus_key"}]}
    assert opacity["condition"]["field"] == "shown"
    labels = [layer for layer in spec["layer"] if layer["mark"]["type"] == "text"][2:]
    shown_when = {layer["transform"][0]["filter"]["param"] for layer in labels}
    assert shown_when == {"focus", "focus_key"}
    assert all(
        any(t["field"] == "weight" for t in layer["encoding"]["tooltip"]) for layer in labels
    )


def test_grid_maps_are_one_image_each_framed_when_selected():
    spec = charts.attention_maps_chart(24, 16)
    assert {p["name"]: p["value"] for p in spec["params"]} == {"sel_layer": 0, "sel_head": 0}
    images, frame, legend = spec["layer"]
    size = charts.overview_map_size(16)
    assert images["mark"]["type"] == "image" and images["mark"]["smooth"] is False
    assert (images["mark"]["width"], images["mark"]["height"]) == (size, size)
    assert images["encoding"]["url"]["field"] == "url"
    assert spec["width"] == {"step": size + charts.MAP_GAP}
    test = frame["transform"][0]["filter"]
    assert "sel_layer" in test and "sel_head" in test
    assert legend["encoding"]["color"]["scale"] == {"domain": [0, 1], "scheme": "blues"}


def test_overview_frames_the_selected_layer_and_head():
    spec = charts.attention_overview_chart(6, 12)
    assert {p["name"]: p["value"] for p in spec["params"]} == {"sel_layer": 0, "sel_head": 0}
    frame = spec["spec"]["layer"][1]
    assert frame["mark"]["filled"] is False and frame["mark"]["stroke"]
    test = frame["transform"][0]["filter"]
    assert "sel_layer" in test and "sel_head" in test


def test_page_has_the_display_controls_and_data(tiny_build):
    _, out, _ = tiny_build
    html = parse(out / "tiny-bert" / "attention.html")
    inputs = {a.get("id"): a for t, a in html.tags if t == "input" and a.get("id")}
    assert inputs["hide-special"]["type"] == inputs["rescale-rows"]["type"] == "checkbox"
    text = (out / "tiny-bert" / "attention.html").read_text()
    form = text[
        text.index('<form class="controls" id="attention-controls"') : text.index("</form>")
    ]
    assert 'id="hide-special"' in form and 'id="rescale-rows"' in form
    heads = [a for t, a in html.tags if t == "input" and a.get("name") == "head-view"]
    assert [a["value"] for a in heads if "checked" in a] == ["0"]  # one head at first
    scripts = {a.get("id"): body for a, body in html.scripts}
    data = json.loads(scripts["attention-data"])
    assert data["has_special"] and data["special_names"] == "[CLS], [SEP]"
    for item in data["examples"]:
        tokens, special = item["tokens"]["input"], item["special"]["input"]
        assert {0, len(tokens) - 1} <= set(special)
        assert {tokens[i] for i in special} == {"[CLS]", "[SEP]"}
        assert not {t for i, t in enumerate(tokens) if i not in special} & {"[CLS]", "[SEP]"}
    assert set(data["heatmap_specs"]) == {
        "weight",
        "weight-nospecial",
        "rowmax",
        "rowmax-nospecial",
    }
    spec = json.loads(scripts["spec-attention-heatmap"])
    assert spec["encoding"]["color"]["title"] == "attention weight"


def test_data_files_hold_each_heads_packed_maps_and_the_grids_block_sums():
    """Every head's file is its slice of the packed maps; the grid's sums give overview_cells."""
    import base64

    from generator.render.pages.attention_files import attention_files, grid_file, head_file

    example, kind = synthetic_example(n_layers=2, n_heads=3)
    packed = np.frombuffer(base64.b64decode(example["weights"]["self"]), dtype="<u2")
    packed = packed.reshape(2, 3, len(TOKENS), len(TOKENS))
    for side in (page.OVERVIEW_TOKENS, 2):  # one token a cell; blocks of 3 and 2 tokens
        files = attention_files([example], [kind], 3, None, lambda n, s=side: page._blocks(n, s))
        assert set(files) == {
            head_file(0, "self", layer, head) for layer in range(2) for head in range(3)
        } | {grid_file(0, "self")}
        for layer, head in itertools.product(range(2), range(3)):
            one = files[head_file(0, "self", layer, head)]
            assert base64.b64decode(one["weights"]) == packed[layer, head].tobytes()
        grid = files[grid_file(0, "self")]
        sums = np.frombuffer(base64.b64decode(grid["sums"]), dtype="<" + grid["dtype"])
        cells = page.overview_cells(example, kind, 3, side)
        size = page._blocks(len(TOKENS), side)
        rows = [min(size, len(TOKENS) - c["q"] * size) for c in cells]
        got = sums / page.WEIGHT_SCALE / np.array(rows)
        np.testing.assert_allclose(got, [c["weight"] for c in cells], rtol=0, atol=1e-12)


def test_the_grid_keeps_its_cell_budget():
    assert page.overview_tokens(6, 12) == page.OVERVIEW_TOKENS  # the default model: 32
    assert page.overview_tokens(24, 16) == 13
    for layers, heads in ((24, 16), (12, 12), (32, 32), (2, 4)):
        side = page.overview_tokens(layers, heads)
        assert layers * heads * side**2 <= max(page.OVERVIEW_CELLS, layers * heads)
