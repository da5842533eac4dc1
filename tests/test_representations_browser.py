"""The representations page in headless Chromium: renders clean, every control changes its charts."""

import pytest
from browser_support import file_url, open_page

pytestmark = pytest.mark.browser

PAGE = "representations.html"


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
