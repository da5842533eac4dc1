"""Permalinks in headless Chromium: on every page, every control registered with a state key is
set away from its default, the URL fragment names it, and opening that URL afresh (and applying
it as a hashchange) draws the same charts with the same controls; copy-link buttons name the
view and its chart. Generic over `PAGES` and over whatever controls a page has.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from attention_support import read_data_file
from browser_support import file_url, open_page
from cards import TEST_CORPUS
from test_render import parse

from generator.render.pages import PAGES

pytestmark = pytest.mark.browser

CONTROLS_JS = "() => window.Atlas.stateControls()"
SETTLE_JS = "() => window.Atlas.settle().then(() => true)"

# Move one control away from its default, the way a reader would (events included).
SET_JS = """([id, kind]) => {
  const el = document.getElementById(id);
  if (kind === 'select') {
    const values = Array.from(el.options, (o) => o.value).filter((v) => v !== el.value);
    if (!values.length) return false;
    el.value = values[values.length - 1];
    el.dispatchEvent(new Event('change', {bubbles: true}));
  } else if (kind === 'check') {
    el.click();
  } else if (kind === 'group') {
    el.querySelector('input[type=checkbox]').click();
  } else if (el.type === 'range') {
    el.value = String(Number(el.value) === Number(el.min) ? el.max : el.min);
    el.dispatchEvent(new Event('input', {bubbles: true}));
    el.dispatchEvent(new Event('change', {bubbles: true}));
  } else {
    el.value = 'the';
    el.dispatchEvent(new Event('input', {bubbles: true}));
    el.dispatchEvent(new Event('change', {bubbles: true}));
  }
  return true;
}"""


# Per chart, a hash of what it draws: its SVG's leaf elements (marks, text, gridlines) as a sorted
# multiset, with Vega's counter-numbered gradient and clip ids made equal. Incremental updates
# may reorder SVG nodes or keep a stale ARIA role without drawing anything different.
DRAWN_JS = """() => Array.from(document.querySelectorAll('.vega-embed'), (el) => {
  const svg = el.querySelector('svg');
  if (!svg) return [el.id, 'none'];
  const leaves = Array.from(svg.querySelectorAll('*'))
    .filter((n) => !n.children.length && !n.closest('defs'))  // Vega keeps stale gradients there
    .map((n) => n.outerHTML.replace(/(gradient|clip|pattern)_?[0-9]+/g, '$1')
                         .replace(/ role="[^"]*"/g, ''))
    .sort();
  let hash = 0;
  const text = leaves.join('\\n') + svg.getAttribute('width') + 'x' + svg.getAttribute('height');
  for (let i = 0; i < text.length; i++) hash = (hash * 31 + text.charCodeAt(i)) | 0;
  return [el.id, leaves.length + ':' + hash];
})"""


def settle(page) -> None:
    page.evaluate(SETTLE_JS)


def view_state(page) -> dict:
    """Return the page's control values, chart signatures and chart selections."""
    return {
        "controls": {c["key"]: c["value"] for c in page.evaluate(CONTROLS_JS)},
        "charts": page.evaluate(DRAWN_JS),
        "selections": page.evaluate(
            """() => Array.from(document.querySelectorAll('.vega-embed'),
                (el) => [el.id, el.getAttribute('data-selection')])"""
        ),
    }


def differences(before: dict, after: dict) -> list:
    """Return the parts of two view states that differ."""
    out = [("controls", before["controls"], after["controls"])]
    out += [p for p in zip(before["charts"], after["charts"], strict=True) if p[0] != p[1]]
    out += [p for p in zip(before["selections"], after["selections"], strict=True) if p[0] != p[1]]
    return [p for p in out if p[0] != "controls" or p[1] != p[2]]


def set_every_control(page) -> list[str]:
    """Set each registered control (document order) away from its default; return the keys set."""
    changed = []
    for control in page.evaluate(CONTROLS_JS):
        if not control["id"]:
            continue
        if page.evaluate(SET_JS, [control["id"], control["kind"]]):
            settle(page)
            changed.append(control["key"])
    return changed


def check_page_permalink(page, url: str) -> list[str]:
    """Set every control of one page, reopen its permalink, compare; return the keys checked."""
    open_page(page, url).assert_clean()
    changed = set_every_control(page)
    settle(page)
    before = view_state(page)
    params = page.evaluate("() => window.Atlas.parseFragment(window.location.hash)")
    for key in changed:
        if before["controls"][key] != next(
            c["initial"] for c in page.evaluate(CONTROLS_JS) if c["key"] == key
        ):
            assert params.get(key) == before["controls"][key], (url, key, params)
    permalink = page.evaluate("() => window.location.href")
    if not changed:
        return changed

    page.goto("about:blank")
    open_page(page, permalink).assert_clean()
    after = view_state(page)
    assert after == before, f"{permalink}: the reopened view differs: {differences(before, after)}"

    # The same fragment applied to the page already open at its defaults (a hashchange).
    open_page(page, url).assert_clean()
    page.evaluate("(hash) => { window.location.hash = hash; }", permalink.split("#", 1)[1])
    page.wait_for_function(
        "(hash) => window.location.hash === '#' + hash", arg=permalink.split("#", 1)[1]
    )
    settle(page)
    again = view_state(page)
    assert again == before, (
        f"{permalink}: the hashchange view differs: {differences(before, again)}"
    )
    return changed


def test_every_control_of_every_page_round_trips(page, tiny_build):
    _, out, _ = tiny_build
    checked = {}
    for entry in PAGES:
        url = file_url(out / "tiny-bert" / entry.filename)
        checked[entry.filename] = check_page_permalink(page, url)
    assert {"example", "layer", "head", "heads", "rowmax"} <= set(checked["attention.html"])
    assert "metric" in checked["heads.html"]
    assert {"layer", "pooling"} <= set(checked["representations.html"])
    assert {"example", "method"} <= set(checked["attributions.html"])
    assert all(checked[name] for name in checked if name != "index.html"), checked


def test_copy_link_names_the_view_and_its_chart(page, tiny_build):
    _, out, _ = tiny_build
    url = file_url(out / "tiny-bert" / "heads.html")
    open_page(page, url).assert_clean()
    page.select_option("#select-metric", index=1)
    settle(page)
    page.click("button.copy-link[data-chart='heads-heatmap']")
    page.wait_for_function(
        "() => document.querySelector(\"button.copy-link[data-chart='heads-heatmap']\").dataset.link"
    )
    link = page.get_attribute("button.copy-link[data-chart='heads-heatmap']", "data-link")
    params = page.evaluate("(l) => window.Atlas.parseFragment(l.split('#')[1])", link)
    metric = page.evaluate("() => document.getElementById('select-metric').value")
    assert params == {"metric": metric, "chart": "heads-heatmap"}
    page.goto("about:blank")
    open_page(page, link).assert_clean()
    assert page.evaluate("() => document.getElementById('select-metric').value") == metric
    assert "linked" in page.get_attribute("#figure-heads-heatmap", "class")
    # The page's own button names no chart.
    page.click(".model-nav button.copy-link")
    page.wait_for_function(
        "() => document.querySelector('.model-nav button.copy-link').dataset.link"
    )
    whole = page.get_attribute(".model-nav button.copy-link", "data-link")
    assert page.evaluate("(l) => window.Atlas.parseFragment(l.split('#')[1])", whole) == {
        "metric": metric
    }


# --- Linked views --------------------------------------------------------------------------------

# Centre (viewport pixels) of the first drawn mark of a chart whose datum has `fields` equal to
# the given values (an empty object: any datum with a `row`, `layer` or `head`).
MARK_JS = """([chart, fields]) => {
  const nodes = Array.from(document.querySelectorAll('#' + chart + ' svg path, #' + chart + ' svg rect'));
  const node = nodes.find((n) => {
    const item = n.__data__;
    if (!item || !item.datum || item.opacity === 0 || item.mark.marktype === 'group') return false;
    return Object.keys(fields).every((k) => item.datum[k] === fields[k]);
  });
  if (!node) return null;
  node.scrollIntoView({block: 'center'});
  const r = node.getBoundingClientRect();
  return [r.left + r.width / 2, r.top + r.height / 2];
}"""


def click_mark(page, chart: str, **fields) -> None:
    """Click the mark of `chart` whose datum holds `fields`, as a reader would."""
    point = page.evaluate(MARK_JS, [chart, fields])
    assert point is not None, f"no mark of {chart} with {fields}"
    page.mouse.move(*point)
    page.mouse.click(*point)


def page_json(path: Path, script_id: str):
    """Return the JSON data block `script_id` of a built page."""
    return json.loads(dict((a.get("id"), t) for a, t in parse(path).scripts)[script_id])


def control_values(page) -> dict:
    return {c["key"]: c["value"] for c in page.evaluate(CONTROLS_JS)}


def open_head_from_heads_page(
    page, folder: Path, *, example: int, layer: int, head: int, timeout_ms: int = 15000
) -> None:
    """Choose `example` on the attention page, then click (layer, head) in the heads page's grid."""
    # The attention page remembers the example chosen last (for the tab).
    url = file_url(folder / "attention.html") + f"#example={example}"
    open_page(page, url, timeout_ms=timeout_ms).assert_clean()
    open_page(page, file_url(folder / "heads.html"), timeout_ms=timeout_ms).assert_clean()
    with page.expect_navigation(timeout=timeout_ms):
        click_mark(page, "chart-heads-heatmap", layer=layer, head=head)
    page.wait_for_function("() => window.__atlasReady === true", timeout=timeout_ms)


def test_head_cells_open_their_attention_view_for_the_current_example(page, tiny_build):
    _, out, _ = tiny_build
    folder = out / "tiny-bert"
    open_head_from_heads_page(page, folder, example=2, layer=1, head=2)
    assert page.url.endswith("attention.html#layer=1&head=2&example=2")
    assert {k: v for k, v in control_values(page).items() if k in ("layer", "head", "example")} == {
        "layer": "1",
        "head": "2",
        "example": "2",
    }
    selection = page.get_attribute("#chart-attention-heatmap", "data-selection")
    assert "example 2, layer 1, head 2" in selection

    for chart in ("chart-head-ablation", "chart-head-gradient", "chart-head-agreement"):
        open_page(page, file_url(folder / "attributions.html")).assert_clean()
        with page.expect_navigation():
            click_mark(page, chart, layer=0, head=3)
        page.wait_for_function("() => window.__atlasReady === true")
        values = control_values(page)
        assert (values["layer"], values["head"]) == ("0", "3"), chart


def test_a_map_point_shows_its_details_and_links_its_showcase_views(page, tiny_build):
    from cards import TINY_SHOWCASE_TEXTS

    _, out, _ = tiny_build
    folder = out / "tiny-bert"
    data = page_json(folder / "representations.html", "representations-data")
    row = TINY_SHOWCASE_TEXTS[1]  # a corpus row id: showcase example 2 (index 1)
    open_page(page, file_url(folder / "representations.html")).assert_clean()
    click_mark(page, "chart-rep-map", row=row)
    page.wait_for_function(
        f"() => document.getElementById('point-details').dataset.row === '{row}'"
    )
    details = page.inner_text("#point-details")
    assert data["texts"][row] in details
    assert data["label_names"][data["labels"][row]] in details
    layer = control_values(page)["layer"]
    neighbours = data["neighbours"]["layers"][int(layer)][row]
    shown = page.evaluate(
        "() => Array.from(document.querySelectorAll('#point-details [data-row]'), (b) => +b.dataset.row)"
    )
    assert shown == neighbours and row not in neighbours
    # row 7 is a train row: the probe never predicts it (held-out texts only)
    assert "not predicted" in details
    links = page.evaluate(
        "() => Array.from(document.querySelectorAll('#point-details a.showcase-link'), (a) => a.getAttribute('href'))"
    )
    assert links == ["attention.html#example=1", "attributions.html#example=1"]
    with page.expect_navigation():
        page.click("#point-details a.showcase-link >> nth=0")
    page.wait_for_function("() => window.__atlasReady === true")
    assert control_values(page)["example"] == "1"
    assert data["texts"][row] in page.inner_text("#example-text")

    # A held-out point: the probe's prediction at the layer, right or wrong.
    held_out = data["evaluated"][0]
    open_page(page, file_url(folder / "representations.html")).assert_clean()
    click_mark(page, "chart-rep-map", row=held_out)
    page.wait_for_function(
        f"() => document.getElementById('point-details').dataset.row === '{held_out}'"
    )
    code = data["predicted"][control_values(page)["pooling"]][int(layer)][0]
    assert f"probe at layer {layer}\n{data['label_names'][code]}" in page.inner_text(
        "#point-details"
    )


def test_search_filters_and_marks_the_texts(page, tiny_build):
    _, out, _ = tiny_build
    url = file_url(out / "tiny-bert" / "representations.html")
    open_page(page, url + "#search=Bank").assert_clean()
    drawn = page.evaluate(
        "() => window.Atlas.views['chart-rep-map'].data('points').map((p) => p.text)"
    )
    assert drawn and all("bank" in text.lower() for text in drawn)
    marks = page.evaluate(
        "() => Array.from(document.querySelectorAll('#search-results mark'), (m) => m.textContent)"
    )
    assert marks and all(m.lower() == "bank" for m in marks)
    page.fill("#select-search", "")
    settle(page)
    assert page.evaluate("() => window.Atlas.views['chart-rep-map'].data('points').length") == 75
    assert "search" not in page.evaluate("() => window.location.hash")


def test_named_showcase_texts_come_first(page, tiny_build):
    from cards import OUTSIDE_TEXT, TINY_SHOWCASE_TEXTS

    _, out, _ = tiny_build
    folder = out / "tiny-bert"
    lines = Path(TEST_CORPUS).read_text(encoding="utf-8").splitlines()
    corpus = [json.loads(line)["text"] for line in lines]
    expected = [OUTSIDE_TEXT, corpus[TINY_SHOWCASE_TEXTS[1]], TINY_SHOWCASE_TEXTS[2]]
    open_page(page, file_url(folder / "attention.html")).assert_clean()
    assert page.inner_text("#example-text") == OUTSIDE_TEXT  # no label: not a corpus text
    for example, text in enumerate(expected):
        page.select_option("#select-example", str(example))
        settle(page)
        assert page.inner_text("#example-text").endswith(text)  # after "[label] "
    assert "not in the corpus" in page.inner_text(".lede")
    open_page(page, file_url(folder / "attributions.html")).assert_clean()
    assert OUTSIDE_TEXT in page.inner_text("#attr-facts")


def test_every_finding_opens_a_rendered_chart(page, tiny_build):
    _, out, _ = tiny_build
    folder = out / "tiny-bert"
    open_page(page, file_url(folder / "index.html")).assert_clean()
    links = page.evaluate(
        "() => Array.from(document.querySelectorAll('#findings-summary a.finding-link'), (a) => a.href)"
    )
    topics = page.evaluate(
        "() => Array.from(document.querySelectorAll('#findings-summary li'), (li) => li.dataset.topic)"
    )
    assert {
        "probing",
        "heads-special",
        "heads-previous",
        "importance",
        "pruning",
        "dimensions",
    } <= set(topics)
    snippet = (folder / "card-snippet.md").read_text(encoding="utf-8")
    for link in links:
        page.goto("about:blank")
        open_page(page, link).assert_clean()
        params = page.evaluate("(l) => window.Atlas.parseFragment(l.split('#')[1])", link)
        chart = params.pop("chart")
        figure = page.locator(f"#figure-{chart}")
        assert "linked" in figure.get_attribute("class"), link
        assert figure.locator("svg [class*='mark-']").count() > 0, link
        values = control_values(page)
        assert {key: values.get(key) for key in params} == params, link
        assert link.split("tiny-bert/", 1)[1] in snippet  # the snippet names the same view


def test_a_dimension_of_the_outlier_table_opens_its_values_per_token(page, tiny_build):
    _, out, _ = tiny_build
    folder = out / "tiny-bert"
    data = page_json(folder / "activations.html", "activations-data")["dimension_tokens"]
    open_page(page, file_url(folder / "activations.html")).assert_clean()
    buttons = page.locator("#outlier-table button.dim-link")
    key = buttons.nth(buttons.count() - 1).get_attribute("data-dim")
    assert key != page.evaluate("() => document.getElementById('select-dim').value")
    buttons.nth(buttons.count() - 1).click()
    settle(page)
    assert control_values(page)["dim"] == key
    rows = page.evaluate("() => window.Atlas.views['chart-activations-dimension'].data('rows')")
    index = [pair[0] for pair in data["pairs"]].index(key)  # its values: a data file
    assert [r["value"] for r in rows] == read_data_file(folder, f"activations-dimension-{index}")[0]
    assert [r["token_label"][5:] for r in rows] == data["tokens"][0]
    assert page.evaluate("() => window.Atlas.parseFragment(window.location.hash)")["dim"] == key
