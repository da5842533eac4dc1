"""Attention page in headless Chromium: the display options change the heatmap's data as stated,
the heatmap fills its column, the head view draws the chosen heads and shows weights on key
hover, the grid frames the selected head, and the URL fragment keeps every control's state.
"""

from __future__ import annotations

import pytest
from attention_support import attention_data
from browser_support import file_url, open_page

from generator.render.charts import attention as charts
from generator.render.pages import attention as attention_page

pytestmark = pytest.mark.browser

HEATMAP = "chart-attention-heatmap"
STATE_JS = """() => {
    const views = window.Atlas.views;
    const heatmap = document.getElementById('chart-attention-heatmap');
    const hv = views['chart-attention-head-view'];
    return {
        selection: heatmap.getAttribute('data-selection'),
        cells: views['chart-attention-heatmap'].data('cells').map(
            (c) => ({query: c.query, key: c.key, weight: c.weight, shown: c.shown, hidden: c.hidden,
                     tip: c.tip})),
        width: views['chart-attention-heatmap'].width(),
        height: views['chart-attention-heatmap'].height(),
        column: heatmap.parentNode.clientWidth,
        legend: Array.from(heatmap.querySelectorAll('.role-legend-title text'), (n) => n.textContent),
        lines: hv.data('lines').map((l) => ({head: l.head, src: l.src, dst: l.dst, weight: l.weight})),
        left: hv.data('left').map((d) => d.token),
        right: hv.data('right').map((d) => d.token),
        hash: window.location.hash,
        modeText: document.getElementById('mode-text').textContent,
    };
}"""


def page_data(out) -> dict:
    return attention_data(out / "tiny-bert")


def state(page) -> dict:
    return page.evaluate(STATE_JS)


def wait_for_new_selection(page, before: str) -> dict:
    page.wait_for_function(
        f"s => document.getElementById('{HEATMAP}').getAttribute('data-selection') !== s",
        arg=before,
    )
    return state(page)


def toggle(page, element_id: str) -> dict:
    before = state(page)["selection"]
    page.click(f"#{element_id}")
    return wait_for_new_selection(page, before)


def choose(page, select_id: str, value: str) -> dict:
    before = state(page)["selection"]
    page.select_option(f"#{select_id}", value)
    return wait_for_new_selection(page, before)


def rows(cells: list[dict], field: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for cell in cells:
        out.setdefault(cell["query"], []).append(cell[field])
    return out


def python_cells(data: dict, example: int, layer: int, head: int, **options) -> list[dict]:
    """The Python row builder's rows for the same view (it mirrors attention.js)."""
    item, kind = data["examples"][example], data["kinds"][0]
    return attention_page.heatmap_cells(item, kind, data["n_heads"], layer, head, **options)


def assert_same_cells(js: list[dict], py: list[dict]) -> None:
    assert [(c["query"], c["key"]) for c in js] == [(c["query"], c["key"]) for c in py]
    for a, b in zip(js, py, strict=True):
        assert a["weight"] == pytest.approx(b["weight"], abs=1e-12)
        assert a["shown"] == pytest.approx(b["shown"], abs=1e-12)
        if "hidden" in b:
            assert a["hidden"] == pytest.approx(b["hidden"], abs=1e-9)


def assert_tips(cells: list[dict], data: dict, rescale: bool = False, hide: bool = False) -> None:
    """Each cell's tooltip: the mode's titles, in order, with the cell's values as d3 writes them."""
    titles = charts.heatmap_tip_titles(rescale, hide, data["special_names"])
    for cell in cells:
        tip = cell["tip"]
        assert list(tip) == titles
        assert (tip["query"], tip["key"]) == (cell["query"], cell["key"])
        assert abs(float(tip["attention weight"]) - cell["weight"]) <= 5e-4 + 1e-12
        if rescale:
            assert abs(float(tip["÷ row max"]) - cell["shown"]) <= 5e-3 + 1e-12
        if hide:
            assert abs(float(tip[titles[-1]]) - cell["hidden"]) <= 5e-4 + 1e-12


def test_rescaling_and_hiding_change_the_heatmap_as_stated(page, tiny_build):
    _, out, _ = tiny_build
    data = page_data(out)
    specials = {"[CLS]", "[SEP]"}
    open_page(page, file_url(out / "tiny-bert" / "attention.html")).assert_clean()
    plain = state(page)
    assert plain["legend"] == ["attention weight"]
    assert_same_cells(plain["cells"], python_cells(data, 0, 0, 0))
    assert_tips(plain["cells"], data)
    assert any(cell["key"][5:] in specials for cell in plain["cells"])

    rescaled = toggle(page, "rescale-rows")
    assert "rows rescaled" in rescaled["selection"] and "rowmax=1" in rescaled["hash"]
    assert rescaled["legend"] == ["weight ÷ row max"]
    assert "maximum is 1" in rescaled["modeText"]
    for shown in rows(rescaled["cells"], "shown").values():
        assert max(shown) == pytest.approx(1.0)
    # The stored weights are unchanged: rescaling is display only.
    assert [c["weight"] for c in rescaled["cells"]] == [c["weight"] for c in plain["cells"]]
    assert_same_cells(rescaled["cells"], python_cells(data, 0, 0, 0, rescale=True))

    hidden = toggle(page, "hide-special")
    assert "special tokens hidden" in hidden["selection"] and "nospecial=1" in hidden["hash"]
    tokens = {c[side][5:] for c in hidden["cells"] for side in ("query", "key")}
    assert tokens and not tokens & specials
    assert not set(hidden["left"]) & specials and not set(hidden["right"]) & specials
    assert "not renormalised" in hidden["modeText"]
    for shown in rows(hidden["cells"], "shown").values():
        assert max(shown) == pytest.approx(1.0)  # the max among the tokens shown
    assert_same_cells(hidden["cells"], python_cells(data, 0, 0, 0, rescale=True, hide_special=True))
    assert_tips(hidden["cells"], data, rescale=True, hide=True)

    raw_hidden = toggle(page, "rescale-rows")  # hidden, not rescaled: rows sum to 1 - hidden
    assert raw_hidden["legend"] == ["attention weight"] and "rowmax" not in raw_hidden["hash"]
    for weights, share in zip(
        rows(raw_hidden["cells"], "weight").values(),
        rows(raw_hidden["cells"], "hidden").values(),
        strict=True,
    ):
        assert 0 < share[0] < 1
        assert sum(weights) + share[0] == pytest.approx(1.0, abs=len(weights) * 1e-3)
        assert sum(weights) < 1 - 1e-3


def test_heatmap_width_follows_its_column(page, tiny_build):
    _, out, _ = tiny_build
    data = page_data(out)
    open_page(page, file_url(out / "tiny-bert" / "attention.html")).assert_clean()
    first = state(page)
    n = len(data["examples"][0]["tokens"]["input"])
    step = charts.heatmap_step(n, first["column"])
    assert (first["width"], first["height"]) == (n * step, n * step)
    assert first["width"] + charts.HEATMAP_LABEL_ROOM <= first["column"] or step == (
        charts.HEATMAP_MIN_STEP
    )
    page.set_viewport_size({"width": 700, "height": 900})
    page.wait_for_function(
        "w => window.Atlas.views['chart-attention-heatmap'].width() < w", arg=first["width"]
    )
    narrow = state(page)
    step = charts.heatmap_step(n, narrow["column"])
    assert narrow["width"] == n * step
    hidden = toggle(page, "hide-special")  # fewer tokens: bigger cells, up to the cap
    m = n - len(data["examples"][0]["special"]["input"])
    assert hidden["width"] == m * charts.heatmap_step(m, hidden["column"])


def test_fragment_restores_every_control(page, tiny_build):
    _, out, _ = tiny_build
    data = page_data(out)
    url = file_url(out / "tiny-bert" / "attention.html")
    open_page(page, url + "#example=2&layer=1&head=3&heads=1,3&nospecial=1&rowmax=1")
    values = page.evaluate(
        """() => ({example: document.getElementById('select-example').value,
                   layer: document.getElementById('select-layer').value,
                   head: document.getElementById('select-head').value,
                   hide: document.getElementById('hide-special').checked,
                   rescale: document.getElementById('rescale-rows').checked,
                   heads: Array.from(document.querySelectorAll("input[name='head-view']:checked"),
                                     (b) => b.value)})"""
    )
    assert values == {
        "example": "2",
        "layer": "1",
        "head": "3",
        "hide": True,
        "rescale": True,
        "heads": ["1", "3"],
    }
    restored = state(page)
    assert_same_cells(
        restored["cells"], python_cells(data, 2, 1, 3, rescale=True, hide_special=True)
    )
    assert {line["head"] for line in restored["lines"]} == {1, 3}

    # Changing a control rewrites the fragment; reloading shows the same view.
    choose(page, "select-head", "2")
    page.click("#head-view-none")
    page.wait_for_function("() => window.location.hash.includes('heads=none')")
    hash_ = page.evaluate("() => window.location.hash")
    assert "head=2" in hash_ and "example=2" in hash_ and "rowmax=1" in hash_
    page.reload()
    page.wait_for_function("() => window.__atlasReady === true")
    again = state(page)
    assert_same_cells(again["cells"], python_cells(data, 2, 1, 2, rescale=True, hide_special=True))
    assert again["lines"] == []

    # Editing the fragment by hand (or going back) applies it.
    before = again["selection"]
    page.evaluate("() => { window.location.hash = 'example=0&layer=0&head=1&heads=0'; }")
    edited = wait_for_new_selection(page, before)
    assert_same_cells(edited["cells"], python_cells(data, 0, 0, 1))
    assert {line["head"] for line in edited["lines"]} == {0}


FRAME_JS = """() => {
    const found = [];
    const walk = (node) => {
        if (node.marktype && (node.name || '').includes('selected_frame')) {
            node.items.forEach((item) => found.push([item.datum.layer, item.datum.head]));
        }
        (node.items || []).forEach(walk);
    };
    walk(window.Atlas.views['chart-attention-overview'].scenegraph().root);
    return found;
}"""


# JS: the pixels of the first and last small maps of the grid beside the colour the heatmap's
# own Vega scale gives each cell's weight (the maps restate Vega's "blues" scheme).
MAP_PIXELS_JS = """async () => {
    const maps = window.Atlas.views['chart-attention-overview'].data('maps');
    const cells = window.Atlas.attentionGrid;
    const color = window.Atlas.views['chart-attention-heatmap'].scale('color');
    const per = cells.length / maps.length;
    const out = [];
    for (const index of [0, maps.length - 1]) {
        const image = new Image();
        image.src = maps[index].url;
        await image.decode();
        const canvas = document.createElement('canvas');
        canvas.width = image.width;
        canvas.height = image.height;
        const context = canvas.getContext('2d');
        context.drawImage(image, 0, 0);
        const pixels = context.getImageData(0, 0, image.width, image.height).data;
        for (let i = 0; i < per; i++) {
            const cell = cells[index * per + i];
            out.push({map: [maps[index].layer, maps[index].head], cell: [cell.layer, cell.head],
                      weight: cell.weight, got: Array.from(pixels.slice(i * 4, i * 4 + 4)),
                      want: color(cell.weight).match(/[0-9.]+/g).map(Number)});
        }
    }
    return {maps: maps.map((m) => [m.layer, m.head]), cells: cells.length, pixels: out};
}"""


def test_grid_maps_show_each_cell_in_the_heatmaps_colours(page, tiny_build):
    _, out, _ = tiny_build
    data = page_data(out)
    open_page(page, file_url(out / "tiny-bert" / "attention.html")).assert_clean()
    drawn = page.evaluate(MAP_PIXELS_JS)
    n_layers = data["kinds"][0]["n_layers"]
    assert drawn["maps"] == [
        [layer, head] for layer in range(n_layers) for head in range(data["n_heads"])
    ]
    pixels = drawn["pixels"]
    assert len(pixels) == 2 * drawn["cells"] // len(drawn["maps"])
    assert {tuple(p["map"]) for p in pixels} == {(0, 0), (n_layers - 1, data["n_heads"] - 1)}
    assert all(p["map"] == p["cell"] for p in pixels)
    assert len({round(p["weight"], 3) for p in pixels}) > 5  # many colours, not one
    for p in pixels:
        assert p["got"][3] == 255
        assert max(abs(a - b) for a, b in zip(p["got"][:3], p["want"][:3], strict=True)) <= 1, p


def test_grid_frames_the_selected_head(page, tiny_build):
    _, out, _ = tiny_build
    open_page(page, file_url(out / "tiny-bert" / "attention.html")).assert_clean()
    assert page.evaluate(FRAME_JS) == [[0, 0]]
    choose(page, "select-layer", "1")
    choose(page, "select-head", "2")
    assert page.evaluate(FRAME_JS) == [[1, 2]]
    assert "selected layer 1 head 2" in page.get_attribute(
        "#chart-attention-overview", "data-selection"
    )
    # A theme change re-embeds every chart; the frame stays on the selection.
    page.click("#theme-toggle")
    page.wait_for_function("() => document.documentElement.dataset.chartTheme === 'dark'")
    page.wait_for_function("() => window.__atlasReady === true")
    assert page.evaluate(FRAME_JS) == [[1, 2]]


def test_head_view_draws_chosen_heads_and_weights_on_key_hover(page, tiny_build):
    _, out, _ = tiny_build
    data = page_data(out)
    open_page(page, file_url(out / "tiny-bert" / "attention.html")).assert_clean()
    first = state(page)
    assert {line["head"] for line in first["lines"]} == set(data["default_heads"]) == {0}
    colors = page.evaluate(
        """() => Array.from(document.querySelectorAll('.swatch[data-head]'),
                             (s) => getComputedStyle(s).backgroundColor)"""
    )
    assert len(set(colors)) == data["n_heads"]

    before = state(page)["selection"]
    page.click("#head-view-all")
    page.wait_for_function(
        f"s => document.getElementById('{HEATMAP}').getAttribute('data-selection') === s",
        arg=before,
    )
    page.wait_for_function(
        "() => new Set(window.Atlas.views['chart-attention-head-view'].data('lines')"
        ".map((l) => l.head)).size > 1"
    )
    page.click("#head-view-none")
    page.click("input[name='head-view'][value='1']")
    page.wait_for_function(
        "() => window.Atlas.views['chart-attention-head-view'].data('lines')"
        ".every((l) => l.head === 1)"
    )

    key = 2
    token = data["examples"][0]["tokens"]["input"][key]
    column = page.locator("#chart-attention-head-view g.hv_right_marks text")
    column.nth(key).hover()
    page.wait_for_function(
        "() => window.Atlas.views['chart-attention-head-view'].signal('focus_key_tuple')"
    )
    labels = page.evaluate(
        """() => {
            const out = [];
            const walk = (node) => {
                if (node.marktype === 'text' && node.items && node.items.length &&
                    node.items[0].datum.slot !== undefined) {
                    node.items.forEach((i) => out.push({dst: i.datum.dst, text: i.text,
                                                         weight: i.datum.weight}));
                }
                (node.items || []).forEach(walk);
            };
            walk(window.Atlas.views['chart-attention-head-view'].scenegraph().root);
            return out;
        }"""
    )
    assert labels, f"hovering key {token!r} wrote no weights"
    assert {label["dst"] for label in labels} == {key}
    assert all(abs(float(label["text"]) - label["weight"]) <= 0.005 + 1e-9 for label in labels)
    # The key token's tooltip gives the largest weights into it, per drawn head.
    page.wait_for_function("() => document.querySelector('#vg-tooltip-element.visible')")
    tip = page.inner_text("#vg-tooltip-element")
    right = page.evaluate(
        "() => window.Atlas.views['chart-attention-head-view'].data('right')"
        ".map((d) => ({dst: d.dst, tip: d.tip}))"
    )
    expected = next(row["tip"] for row in right if row["dst"] == key)
    assert expected["key token"].endswith(token) and "head 1: top queries" in expected
    for name, value in expected.items():
        assert name in tip and value in tip
    lines = [line for line in state(page)["lines"] if line["dst"] == key and line["head"] == 1]
    best = max(lines, key=lambda line: line["weight"])
    assert f"{best['weight']:.3f}" in expected["head 1: top queries"].split(", ")[0]
