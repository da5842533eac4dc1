"""Permalinks in headless Chromium: on every page, every control registered with a state key is
set away from its default, the URL fragment names it, and opening that URL afresh (and applying
it as a hashchange) draws the same charts with the same controls; copy-link buttons name the
view and its chart. Generic over `PAGES` and over whatever controls a page has.
"""

from __future__ import annotations

import pytest
from browser_support import file_url, open_page

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
    .filter((n) => !n.children.length)
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
