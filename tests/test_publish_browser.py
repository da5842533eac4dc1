"""Publishing in a real browser: light and dark themes, the theme toggle, phone width, data tables
behind every chart, keyboard use, figure links; generic over every page in `PAGES`."""

import json
import re

import pytest
from browser_support import (
    chart_signatures,
    file_url,
    horizontal_overflow,
    open_data_tables,
    open_page,
    serve_directory,
)

from generator.render.pages import PAGES

pytestmark = pytest.mark.browser

BUILDS = {"tiny_build": "tiny-bert", "default_build": "all-minilm-l6-v2"}
PHONE = {"width": 390, "height": 844}
HEATMAP_TABLE = "details.chart-data[data-chart=chart-attention-heatmap]"


def site_pages(out, name):
    """Every page of a built site: the index, then each model page."""
    return [out / "index.html", *(out / name / page.filename for page in PAGES)]


def theme_state(page):
    return page.evaluate(
        """() => ({
            theme: document.documentElement.getAttribute('data-theme'),
            charts: document.documentElement.getAttribute('data-chart-theme'),
            background: getComputedStyle(document.body).backgroundColor,
            button: document.getElementById('theme-toggle').textContent,
            pressed: document.getElementById('theme-toggle').getAttribute('aria-pressed'),
        })"""
    )


@pytest.mark.parametrize("build", list(BUILDS))
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_renders_in_light_and_dark(browser, request, build, scheme):
    _, out, _ = request.getfixturevalue(build)
    context = browser.new_context(viewport={"width": 1200, "height": 900}, color_scheme=scheme)
    try:
        page = context.new_page()
        for path in site_pages(out, BUILDS[build]):
            is_model_page = path.parent != out
            report = open_page(page, file_url(path), expect_charts=is_model_page)
            report.assert_clean()
            state = theme_state(page)
            dark = scheme == "dark"
            assert state["background"] == ("rgb(20, 23, 28)" if dark else "rgb(255, 255, 255)"), (
                path
            )
            assert state["pressed"] == ("true" if dark else "false")
            if is_model_page and report.charts:
                assert state["charts"] == scheme, f"{path}: charts drawn with the wrong Vega theme"
    finally:
        context.close()


def test_theme_toggle_switches_persists_and_keeps_page_state(page, tiny_build):
    _, out, _ = tiny_build
    with serve_directory(out) as base:
        url = f"{base}tiny-bert/attention.html"
        open_page(page, url).assert_clean()
        assert theme_state(page)["charts"] == "light"
        page.select_option("#select-head", "2")
        page.wait_for_function(
            "() => document.getElementById('chart-attention-heatmap').getAttribute('data-selection').endsWith('head 2')"
        )
        cells_before = page.evaluate(
            "() => Atlas.views['chart-attention-heatmap'].data('cells').length"
        )
        weights_before = page.evaluate(
            "() => Atlas.views['chart-attention-heatmap'].data('cells').map(c => c.weight).join(',')"
        )
        light = chart_signatures(page)
        page.click("#theme-toggle")
        page.wait_for_function(
            "() => document.documentElement.getAttribute('data-chart-theme') === 'dark' && window.__atlasReady"
        )
        state = theme_state(page)
        assert state["theme"] == "dark" and state["background"] == "rgb(20, 23, 28)"
        assert state["button"] == "Light theme" and state["pressed"] == "true"
        assert chart_signatures(page) != light  # re-embedded with the dark Vega theme
        weights_after = page.evaluate(
            "() => Atlas.views['chart-attention-heatmap'].data('cells').map(c => c.weight).join(',')"
        )
        assert weights_after == weights_before  # still layer 0, head 2, not the initial head
        assert (
            page.evaluate("() => Atlas.views['chart-attention-heatmap'].data('cells').length")
            == cells_before
        )
        # selectors still drive the re-embedded chart
        page.select_option("#select-head", "1")
        page.wait_for_function(
            "() => document.getElementById('chart-attention-heatmap').getAttribute('data-selection').endsWith('head 1')"
        )
        # the choice persists across pages and reloads (localStorage), and beats the system setting
        report = open_page(page, f"{base}tiny-bert/index.html")
        report.assert_clean()
        assert theme_state(page)["charts"] == "dark"
        page.click("#theme-toggle")
        page.wait_for_function(
            "() => document.documentElement.getAttribute('data-chart-theme') === 'light'"
        )
        open_page(page, f"{base}index.html", expect_charts=False).assert_clean()
        assert theme_state(page)["theme"] == "light"


def test_theme_toggle_works_from_file(page, tiny_build):
    _, out, _ = tiny_build
    report = open_page(page, file_url(out / "tiny-bert" / "index.html"))
    report.assert_clean()
    page.click("#theme-toggle")
    page.wait_for_function(
        "() => document.documentElement.getAttribute('data-chart-theme') === 'dark' && window.__atlasReady"
    )
    assert not open_page(page, file_url(out / "tiny-bert" / "index.html")).problems()
    assert theme_state(page)["charts"] == "dark"


@pytest.mark.parametrize("build", list(BUILDS))
def test_phone_width_has_no_page_overflow(browser, request, build):
    _, out, _ = request.getfixturevalue(build)
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        for path in site_pages(out, BUILDS[build]):
            open_page(page, file_url(path), expect_charts=path.parent != out).assert_clean()
            open_data_tables(page)  # open tables must scroll inside their box too
            assert horizontal_overflow(page) == [], path
    finally:
        context.close()


@pytest.mark.parametrize("build", list(BUILDS))
def test_every_chart_has_a_data_table_and_figure_links(page, request, build):
    _, out, _ = request.getfixturevalue(build)
    name = BUILDS[build]
    for page_info in PAGES:
        path = out / name / page_info.filename
        open_page(page, file_url(path)).assert_clean()
        charts = page.evaluate(
            "() => Array.from(document.querySelectorAll('.vega-embed'), e => e.id)"
        )
        tables = open_data_tables(page)
        assert {t["chart"] for t in tables} == set(charts), path
        labels = page.evaluate(
            "() => Array.from(document.querySelectorAll('.vega-embed'), e => e.getAttribute('aria-label'))"
        )
        assert all(label and label != "Vega visualization" for label in labels), labels
        for table in tables:
            assert table["rows"] > 0 and table["columns"] > 0, table
            assert re.search(r"\d+ rows?\b", table["caption"]), table["caption"]
        links = page.evaluate(
            "() => Array.from(document.querySelectorAll('.chart-downloads a'), a => a.getAttribute('href'))"
        )
        for link in links:
            assert (out / name / link).is_file(), link
        assert len(links) == 2 * len(charts)  # SVG and PNG beside every chart


def test_data_table_follows_the_selected_view(page, tiny_build):
    _, out, _ = tiny_build
    open_page(page, file_url(out / "tiny-bert" / "attention.html")).assert_clean()
    tables = open_data_tables(page)
    (first,) = [t for t in tables if t["chart"] == "chart-attention-heatmap"]
    n = len(json.loads(page.inner_text("#attention-data"))["examples"][0]["tokens"]["input"])
    assert first["caption"].startswith(f"first 50 of {n * n} rows")
    page.select_option("#select-head", "3")
    page.wait_for_function(
        f"(before) => document.querySelector('{HEATMAP_TABLE} tbody tr').textContent !== before",
        arg=first["first"],
    )
    page.select_option("#select-example", "1")
    page.wait_for_function(
        f"(n) => !document.querySelector('{HEATMAP_TABLE} caption')"
        ".textContent.startsWith('first 50 of ' + n + ' ')",
        arg=n * n,
    )


def test_keyboard_reaches_every_control_with_visible_focus(page, tiny_build):
    _, out, _ = tiny_build
    open_page(page, file_url(out / "tiny-bert" / "attention.html")).assert_clean()
    wanted = set(
        page.evaluate(
            "() => Array.from(document.querySelectorAll('select, button, summary'), e => e.id || e.tagName)"
        )
    )
    reached = set()
    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => { const e = document.activeElement; const s = getComputedStyle(e);
                return {key: e.id || e.tagName, outline: s.outlineStyle, width: s.outlineWidth}; }"""
        )
        if focused["key"] in wanted:
            reached.add(focused["key"])
            assert focused["outline"] != "none" and focused["width"] != "0px", focused
    assert reached == wanted
    before = page.get_attribute("#chart-attention-heatmap", "data-selection")
    page.focus("#select-layer")
    page.keyboard.press("ArrowDown")
    page.wait_for_function(
        "(b) => document.getElementById('chart-attention-heatmap').getAttribute('data-selection') !== b",
        arg=before,
    )
    assert "layer 1" in page.get_attribute("#chart-attention-heatmap", "data-selection")
