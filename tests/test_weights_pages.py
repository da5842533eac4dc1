"""Weights and activations pages: data blocks, headless Chromium rendering, selectors, page size."""

import base64
import json
import re

import numpy as np
import pytest
from attention_support import read_data_file
from browser_support import file_url, open_page
from cards import write_card

from generator.artifacts import open_artifacts
from generator.build import build_cards
from generator.card import load_card

PAGE_LIMIT = (
    2 * 1024 * 1024
)  # bytes per page: HTML + its own scripts and CSS, Vega runtime excluded

WEIGHT_SELECTORS = [
    ("select-hist-group", ["chart-weights-histograms"]),
    ("select-band-group", ["chart-weights-bands"]),
    ("select-head-role", ["chart-weights-heads"]),
    ("select-matrix", ["chart-weights-heatmap", "chart-weights-singular"]),
    ("select-block", ["chart-weights-heatmap", "chart-weights-singular"]),
    ("select-embedding-method", ["chart-weights-embedding"]),
    ("select-headmap-role", ["chart-weights-headmap"]),
]
ACTIVATION_SELECTORS = [
    ("select-act-quantity", ["chart-activations-bands", "chart-activations-histogram"]),
    ("select-act-layer", ["chart-activations-histogram"]),
    ("select-profile-layer", ["chart-activations-profile"]),
    (
        "select-neuron-layer",
        ["chart-neurons-histogram", "chart-neurons-bars", "chart-neurons-heatmap"],
    ),
    ("select-neuron-example", ["chart-neurons-heatmap"]),
    ("select-score-layer", ["chart-activations-scores"]),
    ("select-score-head", ["chart-activations-scores"]),
]

_SIGNATURE_JS = """(id) => {
  const el = document.getElementById(id);
  const svg = el.querySelector('svg');
  const canvas = el.querySelector('canvas');  // a dense chart draws on a canvas
  const text = svg ? svg.innerHTML : canvas ? canvas.toDataURL() : '';
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (hash * 31 + text.charCodeAt(i)) | 0;
  const items = (node) => (node.items || []).reduce(
    (n, item) => n + items(item), node.marktype && node.marktype !== 'group' ? node.items.length : 0);
  return {selection: el.getAttribute('data-selection'), hash: hash,
          marks: svg ? svg.querySelectorAll('path, rect, circle, line').length
               : items(window.Atlas.views[id].scenegraph().root)};
}"""


def json_block(html: str, block_id: str) -> dict:
    match = re.search(
        rf'<script type="application/json" id="{block_id}">(.*?)</script>', html, re.S
    )
    assert match, f"no #{block_id} block"
    return json.loads(match.group(1))


def check_selectors(page, selectors):
    """Change every selector to another option; each named chart must change its drawing."""
    errors = []
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    for select_id, chart_ids in selectors:
        options = page.eval_on_selector(f"#{select_id}", "s => Array.from(s.options, o => o.value)")
        current = page.eval_on_selector(f"#{select_id}", "s => s.value")
        others = [value for value in options if value != current]
        assert others, f"#{select_id} offers a single option"
        before = {chart: page.evaluate(_SIGNATURE_JS, chart) for chart in chart_ids}
        page.select_option(f"#{select_id}", others[-1])
        for chart in chart_ids:
            page.wait_for_function(
                "([id, s]) => document.getElementById(id).getAttribute('data-selection') !== s",
                arg=[chart, before[chart]["selection"]],
                timeout=20000,
            )
            after = page.evaluate(_SIGNATURE_JS, chart)
            assert after["hash"] != before[chart]["hash"], f"#{select_id} did not change #{chart}"
            assert after["marks"] > 0, f"#{chart} is empty after changing #{select_id}"
    assert not errors, errors


def page_bytes(folder, filename) -> int:
    """Return the bytes a page loads, without the shared Vega runtime."""
    html = (folder / filename).read_text(encoding="utf-8")
    own = re.findall(r'(?:src|href)="(assets/[^"]+)"', html)
    return len(html.encode()) + sum(
        (folder / path).stat().st_size for path in own if "vega-bundle" not in path
    )


def test_heatmap_data_decodes_to_the_pooled_matrices(tiny_build):
    _, out, artifacts_root = tiny_build
    artifacts = open_artifacts(artifacts_root / "tiny-bert")
    data = json_block((out / "tiny-bert" / "weights.html").read_text(), "weights-data")
    pooled = artifacts.array("weights/heatmaps")
    matrices = artifacts.manifest["weights"]["matrices"]
    assert set(data["heatmaps"]) == {m["name"] for m in matrices}
    for m in matrices:
        entry = data["heatmaps"][m["name"]]
        rows, cols = entry["size"]
        cells = read_data_file(out / "tiny-bert", entry["file"])  # loaded when chosen
        levels = np.frombuffer(base64.b64decode(cells), dtype=np.int8).reshape(rows, cols)
        expected = pooled[m["heatmap"], :rows, :cols]
        np.testing.assert_allclose(
            levels / 127 * entry["scale"], expected, atol=0.5 / 127 * entry["scale"] + 1e-7
        )
    # every selector option has data behind it
    for block, options in data["matrices"].items():
        assert options, block
        assert all(name in data["heatmaps"] for name, _ in options)


def test_activation_page_data_covers_every_layer(tiny_build):
    _, out, _ = tiny_build
    data = json_block((out / "tiny-bert" / "activations.html").read_text(), "activations-data")
    assert set(data["quantiles"]) == {"hidden", "queries", "keys", "values", "mlp"}
    assert len(data["quantiles"]["hidden"]) == 3 and len(data["quantiles"]["queries"]) == 2
    assert len(data["quantiles"]["mlp"]) == 2
    for quantity, labels in data["layers"].items():
        assert set(data["histograms"][quantity]) == set(labels)
        for label in labels:
            assert sum(f for _, _, f in data["histograms"][quantity][label]) == pytest.approx(
                1.0, abs=0.02
            )
    assert set(data["profile"]) == set(data["layers"]["hidden"])


@pytest.mark.browser
def test_tiny_pages_render_and_selectors_change_charts(page, tiny_build):
    _, out, _ = tiny_build
    for filename, selectors in (
        ("weights.html", WEIGHT_SELECTORS),
        ("activations.html", ACTIVATION_SELECTORS),
    ):
        report = open_page(page, file_url(out / "tiny-bert" / filename), timeout_ms=60000)
        report.assert_clean()
        assert report.charts >= 5
        check_selectors(page, selectors)


@pytest.mark.browser
def test_default_pages_render_select_and_stay_small(page, default_build):
    _, out, _ = default_build
    folder = out / "all-minilm-l6-v2"
    for filename, selectors in (
        ("weights.html", WEIGHT_SELECTORS),
        ("activations.html", ACTIVATION_SELECTORS),
    ):
        report = open_page(page, file_url(folder / filename), timeout_ms=90000)
        report.assert_clean()
        check_selectors(page, selectors)
    sizes = {path.name: page_bytes(folder, path.name) for path in folder.glob("*.html")}
    assert {"weights.html", "activations.html"} <= set(sizes)
    assert max(sizes.values()) <= PAGE_LIMIT, sizes


@pytest.mark.browser
def test_card_without_corpus_gets_weights_and_an_explained_empty_activations_page(
    page, tmp_path, monkeypatch
):
    """Also: with the exact-SVD cap lowered, the token embedding's spectrum is truncated."""
    from generator.extract import truncated_spectra, weights

    monkeypatch.setattr(weights, "SPECTRUM_MAX_COST", 4096 * 32)  # the 512×32 embedding only
    monkeypatch.setattr(truncated_spectra, "TRUNCATED_RANK", 8)
    card = write_card(tmp_path / "cards", corpus=None, label_field=None, split_field=None)
    out = tmp_path / "site"
    build_cards([load_card(card)], out, tmp_path / "artifacts", progress=False)
    weights = open_page(page, file_url(out / "tiny-bert" / "weights.html"), timeout_ms=60000)
    weights.assert_clean()
    assert weights.charts >= 8
    body = page.inner_text("body")
    assert "Probes: word-like tokens drawn with seed" in body
    assert "Truncated spectra for 1 matrices above the exact-SVD size cap" in body
    assert "embeddings.word_embeddings.embedding (top 8 of 32; effective rank" in body
    activations = open_page(
        page, file_url(out / "tiny-bert" / "activations.html"), expect_charts=False
    )
    activations.assert_clean()
    assert activations.charts == 0
    assert "this card names no corpus" in page.inner_text("body")


def _fixed_sizes(node):
    """Replace "container" sizes, as figure export does (there is no container outside a page)."""
    if isinstance(node, dict):
        out = {key: _fixed_sizes(value) for key, value in node.items()}
        for key, size in (("width", 560), ("height", 300)):
            if out.get(key) == "container":
                out[key] = size
        return out
    if isinstance(node, list):
        return [_fixed_sizes(value) for value in node]
    return node


@pytest.mark.parametrize("filename", ["weights.html", "activations.html"])
def test_every_chart_is_listed_and_exports_a_drawn_figure(tiny_build, filename):
    """Each chart on the page is in the context's `charts` list, and its figure (the first view,
    rows filled in for charts the page script fills) renders with vl-convert to drawn marks."""
    import vl_convert

    from generator.analyze.run import analyze
    from generator.render.pages import PAGES

    _, out, artifacts_root = tiny_build
    artifacts = open_artifacts(artifacts_root / "tiny-bert")
    page = next(p for p in PAGES if p.filename == filename)
    context = page.context(artifacts, analyze(artifacts))
    html = (out / "tiny-bert" / filename).read_text()
    on_page = set(re.findall(r'class="vega-embed" id="chart-([^"]+)"', html))
    assert {item["id"] for item in context["charts"]} == on_page
    for item in context["charts"]:
        spec = item.get("figure_spec") or item["spec"]
        if item["interactive"]:
            assert item.get("figure_spec"), item["id"]
            assert all(spec["datasets"].values()), item["id"]
        svg = vl_convert.vegalite_to_svg(_fixed_sizes(spec), allowed_base_urls=[])
        assert re.search(
            r'class="mark-(rect|line|symbol|area|rule|text)[^"]*"[^>]*>\s*<path', svg
        ), item["id"]


_OVERFLOW_JS = """() => {
  const limit = document.documentElement.clientWidth + 1;
  if (document.documentElement.scrollWidth <= limit) return [];
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('.chart, .table-scroll, pre')) continue;
    const box = el.getBoundingClientRect();
    if (box.right > limit) out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : ''));
  }
  return out.length ? out.slice(0, 10) : ['page scrollWidth ' + document.documentElement.scrollWidth];
}"""


@pytest.mark.browser
def test_pages_fit_a_phone_screen(browser, tiny_build):
    _, out, _ = tiny_build
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        phone = context.new_page()
        for filename in ("weights.html", "activations.html"):
            open_page(
                phone, file_url(out / "tiny-bert" / filename), timeout_ms=60000
            ).assert_clean()
            phone.evaluate(
                "() => document.querySelectorAll('details').forEach((d) => { d.open = true; })"
            )
            assert phone.evaluate(_OVERFLOW_JS) == [], filename
    finally:
        context.close()


# JS: what the heatmap draws: its tick labels, head-band rules and cells' extent, and the bands
# and pooled size of the matrix the selectors name.
_HEATMAP_JS = """() => {
  const el = document.getElementById('chart-weights-heatmap');
  const svg = el.querySelector('svg');
  const texts = (sel) => Array.from(svg.querySelectorAll(sel + ' text'), (t) => t.textContent);
  const rules = Array.from(svg.querySelectorAll('.mark-rule.role-mark line'));
  const cells = svg.querySelector('.mark-rect.role-mark').getBoundingClientRect();
  const data = Atlas.readJson('weights-data').heatmaps[document.getElementById('select-matrix').value];
  return {labels: texts('.role-axis-label'), rules: rules.length, size: data.size,
          shape: data.shape, bands: data.bands, width: cells.width, height: cells.height,
          selection: el.getAttribute('data-selection')};
}"""


def heatmap_state(page):
    return page.evaluate(_HEATMAP_JS)


def check_heatmap(state):
    """Ticks label original indices; one rule per head boundary; 5 px per pooled cell."""
    numbers = [int(t) for t in state["labels"] if t.isdigit()]
    assert numbers and max(numbers) <= max(state["shape"]), state
    assert max(numbers) > max(state["size"]) or state["size"] == state["shape"], state
    bands = state["bands"]
    assert state["rules"] == (len(bands["at"]) + len(bands["major"]) if bands else 0), state
    rows, cols = state["size"]
    assert abs(state["width"] - max(5 * cols, 60)) < 1.5, state
    assert abs(state["height"] - max(5 * rows, 30)) < 1.5, state


@pytest.mark.browser
def test_heatmap_has_matrix_ticks_head_rules_and_follows_the_matrix_size(page, tiny_build):
    _, out, _ = tiny_build
    open_page(page, file_url(out / "tiny-bert" / "weights.html"), timeout_ms=60000).assert_clean()
    options = page.eval_on_selector_all("#select-matrix option", "os => os.map(o => o.value)")
    seen = set()
    for name in options:
        before = heatmap_state(page)
        if name != page.eval_on_selector("#select-matrix", "s => s.value"):
            page.select_option("#select-matrix", name)
            page.wait_for_function(
                "s => document.getElementById('chart-weights-heatmap')"
                ".getAttribute('data-selection') !== s",
                arg=before["selection"],
            )
        state = heatmap_state(page)
        check_heatmap(state)
        seen.add((state["bands"] or {}).get("axis"))
        seen.add(tuple(state["size"]))
    assert {"c", "r", None} <= seen  # W_Q/W_K/W_V, W_O and a matrix not split by heads
    assert len([s for s in seen if isinstance(s, tuple)]) >= 2  # the size followed the matrix
