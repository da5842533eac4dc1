"""Heads page HTML: its data matches the analysis tables; pages stay small; edge cases."""

import json

import numpy as np
from cards import small_corpus, write_card
from test_render import parse

from generator.analyze.run import analyze
from generator.artifacts import open_artifacts
from generator.build import build_cards
from generator.card import load_card
from generator.extract.head_metrics import METRICS

PAGE_BUDGET = 2_000_000  # bytes per page


def scripts_of(path):
    return {a.get("id"): text for a, text in parse(path).scripts if a.get("id")}


def test_heads_page_data_matches_tables(tiny_build):
    _, out, artifacts_root = tiny_build
    html = out / "tiny-bert" / "heads.html"
    scripts = scripts_of(html)
    data = json.loads(scripts["heads-data"])
    tables = analyze(open_artifacts(artifacts_root / "tiny-bert"))
    assert data["rows"] == tables["head_metrics"]
    assert [m["name"] for m in data["metrics"]] == list(METRICS)
    qk = json.loads(scripts["qk-data"])
    assert qk == tables["qk_geometry"]
    text = html.read_text(encoding="utf-8")
    assert text.count("<dt>") == len(METRICS)
    body_rows = text.split("<tbody>")[1].split("</tbody>")[0].count("<tr>")
    assert body_rows == len(data["rows"]) == 8  # 2 layers x 4 heads
    position = json.loads(scripts["qk-spec-position"])
    assert position["encoding"]["color"]["field"] == "position"


def test_default_pages_stay_small(default_build):
    _, out, _ = default_build
    for page in ("attention.html", "heads.html"):
        size = (out / "all-minilm-l6-v2" / page).stat().st_size
        assert size < PAGE_BUDGET, f"{page}: {size} bytes"


def test_card_without_corpus_has_a_heads_page_that_says_why(tmp_path):
    card = load_card(
        write_card(tmp_path / "cards", corpus=None, label_field=None, split_field=None)
    )
    out = tmp_path / "site"
    build_cards([card], out, tmp_path / "artifacts", progress=False)
    text = (out / "tiny-bert" / "heads.html").read_text(encoding="utf-8")
    assert "No head metrics" in text and "vega-embed" not in text


def test_head_metrics_stay_float32_when_arrays_are_stored_in_float16(tmp_path):
    corpus = small_corpus(
        tmp_path / "data", ["one short text", "a second, slightly longer text", "three"]
    )
    card = write_card(
        tmp_path / "cards",
        corpus=str(corpus),
        label_field=None,
        split_field=None,
        store_dtype="float16",
        showcase=3,
    )
    build_cards([load_card(card)], tmp_path / "site", tmp_path / "artifacts", progress=False)
    artifacts = open_artifacts(tmp_path / "artifacts" / "tiny-bert")
    arrays = artifacts.manifest["arrays"]
    assert arrays["corpus/pooled_mean"]["dtype"] == "float16"
    assert arrays["corpus/head_metrics"]["dtype"] == "float32"
    values = artifacts.array("corpus/head_metrics")
    normalized = values[..., METRICS.index("normalized_entropy")]
    assert ((normalized > 0) & (normalized <= 1 + 1e-6)).all()


def test_table_values_are_formatted_for_reading():
    from generator.render.pages.heads import format_value

    assert [format_value(v) for v in (None, 1.2e-7, 0.12345, 2.0349, 12.44, 117.6)] == [
        "n/a",
        "0.000",
        "0.123",
        "2.03",
        "12.4",
        "118",
    ]


def test_overview_cells_rows_sum_to_one_and_blocks_cover_long_examples():
    from generator.render.pages.attention import (
        OVERVIEW_TOKENS,
        encode_weights,
        head_view_figure,
        overview_cells,
    )

    rng = np.random.default_rng(3)
    nq, nk, layers, heads = 5, 2 * OVERVIEW_TOKENS + 3, 2, 3  # keys in blocks of 3
    weights = rng.uniform(size=(layers, heads, nq, nk))
    weights /= weights.sum(-1, keepdims=True)
    example = {
        "tokens": {"decoder": [f"d{i}" for i in range(nq)], "input": [f"e{i}" for i in range(nk)]},
        "weights": {"cross": encode_weights(weights)},
    }
    kind = {"id": "cross", "query": "decoder", "key": "input", "n_layers": layers}
    cells = overview_cells(example, kind, heads)
    n_key_blocks = -(-nk // 3)
    assert len(cells) == layers * heads * nq * n_key_blocks
    totals = {}
    for c in cells:
        totals[(c["layer"], c["head"], c["q"])] = (
            totals.get((c["layer"], c["head"], c["q"]), 0) + c["weight"]
        )
    np.testing.assert_allclose(list(totals.values()), 1.0, atol=nk * 0.5e-3)
    assert cells[0]["key"].startswith("tokens 0–2: e0 e1 e2")
    spec = head_view_figure(example, kind, heads)
    assert [d["token"] for d in spec["datasets"]["left"]] == example["tokens"]["decoder"]
    assert [d["token"] for d in spec["datasets"]["right"]] == example["tokens"]["input"]
    assert all(line["weight"] >= 0.01 for line in spec["datasets"]["lines"])


def _encoded_fields(node) -> set[str]:
    """Every field an encoding (or tooltip) of a Vega-Lite spec reads."""
    fields = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "encoding":
                for channel in value.values():
                    for item in channel if isinstance(channel, list) else [channel]:
                        if isinstance(item, dict) and "field" in item:
                            fields.add(item["field"])
            fields |= _encoded_fields(value)
    elif isinstance(node, list):
        for value in node:
            fields |= _encoded_fields(value)
    return fields


def test_layer_summary_draws_one_panel_per_metric_and_no_empty_cells(tiny_build):
    """13 metrics in rows of 4: a wrapped facet left 3 empty cells with axes under them."""
    from generator.render.charts.heads import SUMMARY_COLUMNS
    from generator.render.pages import PAGES

    _, _, artifacts_root = tiny_build
    artifacts = open_artifacts(artifacts_root / "tiny-bert")
    tables = analyze(artifacts)
    page = next(p for p in PAGES if p.filename == "heads.html")
    item = next(c for c in page.context(artifacts, tables)["charts"] if c["id"] == "heads-layers")
    spec = item["spec"]
    rows = spec["data"]["values"]
    labels = list(dict.fromkeys(r["label"] for r in rows))
    assert len(labels) == len({r["metric"] for r in tables["head_layer_summary"]}) == 13
    assert "facet" not in spec and spec["columns"] == SUMMARY_COLUMNS
    assert len(labels) % SUMMARY_COLUMNS != 0  # the case a facet grid leaves holes in
    assert [panel["title"] for panel in spec["concat"]] == labels
    for panel, label in zip(spec["concat"], labels, strict=True):
        for layer in panel["layer"]:
            (rule,) = layer["transform"]
            assert rule["filter"] == {"field": "label", "equal": label}
        n_layers = sum(1 for r in rows if r["label"] == label)
        assert n_layers == 2  # tiny-bert: 2 layers, every metric defined
    assert _encoded_fields(spec) <= set(rows[0]), _encoded_fields(spec) - set(rows[0])
