"""The representations page in headless Chromium: renders clean, every control changes its charts."""

import re

import pytest
from browser_support import file_url, open_page

pytestmark = pytest.mark.browser

PAGE = "representations.html"
CHECKPOINT_WORDING = re.compile(
    r"checkpoint|procrustes|\bfinal\b|card's own model|slider|axes fitted on", re.I
)


def chart_state(page, chart_id):
    return page.evaluate(
        """(id) => {
            const el = document.getElementById(id);
            const marks = Array.from(el.querySelectorAll('path, rect, text, line')).map(
                n => ['transform', 'd', 'fill', 'x2', 'y2'].map(a => n.getAttribute(a))
                     .concat([n.textContent]).join(','));
            return {selection: el.getAttribute('data-selection'), marks: marks.join('|')};
        }""",
        chart_id,
    )


def change(page, control, value, charts):
    """Set a control, wait for the page to redraw, and return the charts' states before/after."""
    before = {chart: chart_state(page, chart) for chart in charts}
    if control == "select-checkpoint":
        page.fill(f"#{control}", value)
    else:
        page.select_option(f"#{control}", value)
    page.wait_for_function(
        "([id, s]) => document.getElementById(id).getAttribute('data-selection') !== s",
        arg=[charts[0], before[charts[0]]["selection"]],
    )
    after = {chart: chart_state(page, chart) for chart in charts}
    for chart in charts:
        assert after[chart]["marks"] != before[chart]["marks"], f"{control} did not change {chart}"
    return after


def check_controls(page, url, poolings=("mean", "cls"), checkpoints=False):
    open_page(page, url).assert_clean()
    after = change(
        page, "select-layer", "0", ["chart-rep-map", "chart-rep-tokens", "chart-rep-separability"]
    )
    assert "layer 0" in after["chart-rep-map"]["selection"]
    change(page, "select-projection", "tsne", ["chart-rep-map"])
    change(page, "select-pooling", poolings[1], ["chart-rep-map", "chart-rep-cka"])
    change(page, "select-layer", "1", ["chart-rep-map", "chart-rep-separability"])
    change(page, "select-projection", "pca", ["chart-rep-map"])
    if checkpoints:
        # Layer 0 [CLS] vectors are one point for every text, in every checkpoint: go back to
        # mean pooling, whose layer-0 map differs between checkpoints.
        change(page, "select-pooling", poolings[0], ["chart-rep-map", "chart-rep-cka"])
        after = change(page, "select-checkpoint", "0", ["chart-rep-map", "chart-rep-cka"])
        assert "checkpoint step-1" in after["chart-rep-map"]["selection"]
        assert page.inner_text("#checkpoint-name") == "step-1"
        note = page.inner_text("#map-note")
        assert "axes fitted on final" in note


def test_tiny_representations_page_renders_and_controls_work(page, tiny_build):
    _, out, _ = tiny_build
    report = open_page(page, file_url(out / "tiny-bert" / PAGE))
    report.assert_clean()
    assert report.charts >= 5
    check_controls(page, file_url(out / "tiny-bert" / PAGE))


def test_checkpoint_page_slider_moves_the_points(page, checkpoint_build):
    _, out, _ = checkpoint_build
    url = file_url(out / "tiny-checkpoints" / PAGE)
    report = open_page(page, url)
    report.assert_clean()
    assert page.locator("#chart-rep-checkpoints").count() == 1
    assert page.locator("#chart-rep-drift").count() == 1
    check_controls(page, url, checkpoints=True)


def test_default_representations_page_renders_and_controls_work(page, default_build):
    _, out, _ = default_build
    url = file_url(out / "all-minilm-l6-v2" / PAGE)
    report = open_page(page, url)
    report.assert_clean()
    assert "Best layer with mean pooling" in page.inner_text("#rep-headline")
    check_controls(page, url)


def view_rows(page, chart_id, dataset):
    return page.evaluate("([id, name]) => window.Atlas.views[id].data(name)", [chart_id, dataset])


def select_and_wait(page, control, value):
    before = page.get_attribute("#chart-rep-map", "data-selection")
    page.select_option(f"#{control}", value)
    page.wait_for_function(
        "s => document.getElementById('chart-rep-map').getAttribute('data-selection') !== s",
        arg=before,
    )


def test_constant_cls_layer_draws_no_dot_and_says_why(page, tiny_build):
    _, out, _ = tiny_build
    open_page(page, file_url(out / "tiny-bert" / PAGE)).assert_clean()
    select_and_wait(page, "select-pooling", "cls")
    select_and_wait(page, "select-layer", "0")
    assert view_rows(page, "chart-rep-map", "points") == []
    note = page.inner_text("#map-note")
    assert "nothing to draw" in note and "[CLS]" in note and "0.0%" not in note
    select_and_wait(page, "select-layer", "1")
    assert len(view_rows(page, "chart-rep-map", "points")) > 1
    assert "0.0% and 0.0%" not in page.inner_text("#map-note")


def test_token_map_has_a_legend_and_labels_one_sentence(page, tiny_build):
    _, out, _ = tiny_build
    open_page(page, file_url(out / "tiny-bert" / PAGE)).assert_clean()
    legend = page.evaluate(
        "() => Array.from(document.querySelectorAll('#chart-rep-tokens text'))"
        ".map(n => n.textContent).join('|')"
    )
    assert "colour = sentence" in legend
    rows = view_rows(page, "chart-rep-tokens", "tokens")
    examples = page.evaluate(
        "() => window.Atlas.readJson('representations-data').token_map.examples"
    )
    assert len(examples) >= 2 and {r["example"] for r in rows} == set(examples)
    labelled = {r["example"] for r in rows if r["label"]}
    assert labelled == {examples[0]}
    assert all(r["label"] == r["token"] for r in rows if r["label"])
    before = page.get_attribute("#chart-rep-tokens", "data-selection")
    page.select_option("#select-token-example", "1")
    page.wait_for_function(
        "s => document.getElementById('chart-rep-tokens').getAttribute('data-selection') !== s",
        arg=before,
    )
    rows = view_rows(page, "chart-rep-tokens", "tokens")
    assert {r["example"] for r in rows if r["label"]} == {examples[1]}
    for example in examples:  # every sentence is named in the legend
        assert example[:20] in legend, example


def test_page_without_checkpoints_shows_no_checkpoint_wording_in_any_view(page, tiny_build):
    _, out, _ = tiny_build
    open_page(page, file_url(out / "tiny-bert" / PAGE)).assert_clean()
    texts = page.evaluate("() => window.Atlas.readJson('representations-data').texts")
    layer = page.eval_on_selector(
        "#select-layer", "s => Array.from(s.options).map((o) => o.value).find((v) => v !== s.value)"
    )
    for control, value in (("select-layer", layer), ("select-projection", "tsne")):
        select_and_wait(page, control, value)
        shown = page.inner_text("main")
        for text in texts:  # the corpus may say "final"; the page's own words may not
            shown = shown.replace(text, " ")
        found = CHECKPOINT_WORDING.findall(shown)
        assert not found, (control, found)
        label = page.get_attribute("#chart-rep-map", "aria-label")
        assert not CHECKPOINT_WORDING.search(label), label


def test_checkpoint_page_names_procrustes_for_an_earlier_checkpoint(page, checkpoint_build):
    _, out, _ = checkpoint_build
    open_page(page, file_url(out / "tiny-checkpoints" / PAGE)).assert_clean()
    select_and_wait(page, "select-projection", "tsne")
    before = page.get_attribute("#chart-rep-map", "data-selection")
    page.fill("#select-checkpoint", "0")
    page.wait_for_function(
        "s => document.getElementById('chart-rep-map').getAttribute('data-selection') !== s",
        arg=before,
    )
    note = page.inner_text("#map-note")
    assert "step-1" in note and "Procrustes" in note and "final" in note
