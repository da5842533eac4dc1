"""Attention and heads pages in headless Chromium: every selector changes its chart."""

import pytest
from browser_support import file_url, open_page
from scores_support import check_score_histogram, check_scores_follow_weights

pytestmark = pytest.mark.browser


def chart_state(page, chart_id):
    """The chart's data-selection attribute and its rendered SVG markup."""
    return page.evaluate(
        """id => {
            const el = document.getElementById(id);
            const svg = el.querySelector('svg');
            return {selection: el.getAttribute('data-selection'), svg: svg ? svg.innerHTML : ''};
        }""",
        chart_id,
    )


def wait_changed(page, chart_id, before):
    page.wait_for_function(
        "([id, s]) => document.getElementById(id).getAttribute('data-selection') !== s",
        arg=[chart_id, before["selection"]],
    )
    after = chart_state(page, chart_id)
    assert after["svg"] != before["svg"], f"{chart_id} did not change"
    return after


def select(page, select_id, value, chart_id):
    before = chart_state(page, chart_id)
    page.select_option(f"#{select_id}", value)
    return wait_changed(page, chart_id, before)


def line_count(page):
    return page.evaluate("""() => Atlas.views['chart-attention-head-view'].data('lines').length""")


def check_attention_page(page, url):
    open_page(page, url).assert_clean()
    heatmap, head_view, grid = (
        "chart-attention-heatmap",
        "chart-attention-head-view",
        "chart-attention-overview",
    )
    first = line_count(page)  # the head view opens on a few heads (DEFAULT_HEADS)
    assert first > 0
    # Head view: "All heads" adds lines, unticking a head removes its lines, "No head" empties
    # it, "All heads" restores.
    before = chart_state(page, head_view)
    page.click("#head-view-all")
    before = wait_changed(page, head_view, before)
    all_heads = line_count(page)
    assert all_heads > first
    page.uncheck("input[name='head-view'][value='0']")
    after = wait_changed(page, head_view, before)
    assert "heads 1" in after["selection"] and line_count(page) < all_heads
    before = after
    page.click("#head-view-none")
    wait_changed(page, head_view, before)
    assert line_count(page) == 0
    before = chart_state(page, head_view)
    page.click("#head-view-all")
    wait_changed(page, head_view, before)
    assert line_count(page) == all_heads
    # Layer changes the heatmap and the head view; the example also changes the grid.
    select(page, "select-head", "1", heatmap)
    before_view = chart_state(page, head_view)
    select(page, "select-layer", "1", heatmap)
    wait_changed(page, head_view, before_view)
    before_grid = chart_state(page, grid)
    after = select(page, "select-example", "2", heatmap)
    assert "example 2" in after["selection"]
    wait_changed(page, grid, before_grid)
    assert check_scores_follow_weights(page)["selection"] == "2 | 1 | 1"
    # Clicking a small map of the grid opens that layer and head in the heatmap.
    before = chart_state(page, heatmap)
    # (the first small map is layer 0, head 0)
    page.locator("#chart-attention-overview .mark-image image").first.click()
    after = wait_changed(page, heatmap, before)
    assert "layer 0, head 0" in after["selection"]
    # The scores view follows a grid click too (attention.js sets the selects, no change event).
    assert check_scores_follow_weights(page)["selection"] == "2 | 0 | 0"


# JS: for each x axis of the per-layer panels, whether a drawn line lies in the plot right
# above it (panels are 110 px tall). A wrapped facet draws x axes under every column, also
# under the empty cells of a last row that is not full: those axes have no line above them.
_AXES_WITHOUT_PANEL_JS = """() => {
  const svg = document.querySelector('#chart-heads-layers svg');
  const lines = Array.from(svg.querySelectorAll('.mark-line path'))
    .filter((p) => (p.getAttribute('d') || '').length > 2)
    .map((p) => p.getBoundingClientRect());
  const axes = Array.from(svg.querySelectorAll('.role-axis'))
    .filter((a) => (a.querySelector('.role-axis-title') || {}).textContent === 'layer')
    .map((a) => a.getBoundingClientRect());
  const orphans = axes.filter((axis) => !lines.some((line) =>
    line.left < axis.right && line.right > axis.left &&
    line.bottom <= axis.top + 2 && line.top >= axis.top - 115));
  return {lines: lines.length, axes: axes.length, orphans: orphans.length};
}"""


def check_layer_panels(page, n_metrics):
    """Every metric has a drawn panel and every x axis belongs to one (no empty panels)."""
    state = page.evaluate(_AXES_WITHOUT_PANEL_JS)
    assert state["lines"] == n_metrics, state
    assert state["axes"] == n_metrics and state["orphans"] == 0, state


# JS: scroll the heads table fully sideways; report where its first cells are, against its box.
_STICKY_JS = """() => {
  const table = document.getElementById('heads-table');
  const box = table.parentElement;
  box.scrollLeft = box.scrollWidth;
  const row = table.tBodies[0].rows[0], head = table.tHead.rows[0];
  const rect = (el) => { const r = el.getBoundingClientRect(); return [r.left, r.right]; };
  return {box: rect(box), scrolled: box.scrollLeft, wide: box.scrollWidth > box.clientWidth,
          cells: [0, 1, 2].map((i) => rect(row.cells[i])),
          headers: [0, 1].map((i) => rect(head.cells[i])),
          texts: [0, 1].map((i) => row.cells[i].textContent)};
}"""


def check_sticky_keys(page):
    """After scrolling the table sideways, its layer and head columns are still in view."""
    state = page.evaluate(_STICKY_JS)
    assert state["wide"] and state["scrolled"] > 0, state
    (left, right), (layer, head, cluster) = state["box"], state["cells"]
    assert cluster[0] < left, state  # the third column scrolled out of view...
    for cell in (layer, head, *state["headers"]):  # ...the first two stayed in the box
        assert left - 1 <= cell[0] and cell[1] <= right + 1, state
    assert abs(layer[1] - head[0]) < 1.5 and head[1] - head[0] > 10, state
    assert state["texts"] == ["0", "0"], state
    page.evaluate("() => { document.getElementById('heads-table').parentElement.scrollLeft = 0; }")


def check_heads_page(page, url):
    open_page(page, url).assert_clean()
    with_values = page.evaluate(
        """() => { const d = Atlas.readJson('heads-data');
                   return d.metrics.filter((m) => d.rows.some((r) => r[m.name] !== null)).length; }"""
    )
    check_layer_panels(page, with_values)
    page.set_viewport_size({"width": 900, "height": 800})
    check_sticky_keys(page)
    heatmap = "chart-heads-heatmap"
    options = page.eval_on_selector_all("#select-metric option", "os => os.map(o => o.value)")
    assert options[0] == "entropy" and len(options) == 13
    current = page.eval_on_selector("#metric-definitions .current", "n => n.dataset.metric")
    assert current == "entropy"
    for metric in ("previous", "special", "distance"):
        after = select(page, "select-metric", metric, heatmap)
        assert after["selection"] == f"metric {metric}"
        assert (
            page.eval_on_selector("#metric-definitions .current", "n => n.dataset.metric") == metric
        )

    # The table sorts by a column (ascending, then descending), also from the keyboard.
    def column(index):
        return page.eval_on_selector_all(
            "#heads-table tbody tr",
            f"rows => rows.map(r => r.cells[{index}].getAttribute('data-value'))",
        )

    entropy = 3  # layer, head, cluster, then the metrics in order
    page.click(f"#heads-table th:nth-child({entropy + 1}) button")
    values = [float(v) for v in column(entropy)]
    assert values == sorted(values)
    assert (
        page.get_attribute(f"#heads-table th:nth-child({entropy + 1})", "aria-sort") == "ascending"
    )
    page.focus(f"#heads-table th:nth-child({entropy + 1}) button")
    page.keyboard.press("Enter")
    values = [float(v) for v in column(entropy)]
    assert values == sorted(values, reverse=True)
    assert (
        page.get_attribute(f"#heads-table th:nth-child({entropy + 1})", "aria-sort") == "descending"
    )
    page.focus("#heads-table th:nth-child(1) button")
    page.keyboard.press("Space")
    layers = [int(v) for v in column(0)]
    assert layers == sorted(layers)

    # Query/key map: layer, head and colour all change it.
    qk = "chart-qk-geometry"
    select(page, "select-qk-head", "1", qk)
    select(page, "select-qk-layer", "1", qk)
    after = select(page, "select-qk-colour", "position", qk)
    assert after["selection"].endswith("colour position")
    assert "token position" in page.inner_text("#chart-qk-geometry")
    after = select(page, "select-qk-head", "2", qk)
    assert "head 2" in after["selection"]
    page.wait_for_function("() => window.__atlasReady === true")


def test_tiny_attention_page_selectors(page, tiny_build):
    _, out, _ = tiny_build
    check_attention_page(page, file_url(out / "tiny-bert" / "attention.html"))


def test_tiny_heads_page_selectors(page, tiny_build):
    _, out, _ = tiny_build
    check_heads_page(page, file_url(out / "tiny-bert" / "heads.html"))


def test_default_attention_and_heads_pages(page, default_build):
    _, out, _ = default_build
    check_attention_page(page, file_url(out / "all-minilm-l6-v2" / "attention.html"))
    check_heads_page(page, file_url(out / "all-minilm-l6-v2" / "heads.html"))
    open_page(page, file_url(out / "all-minilm-l6-v2" / "activations.html")).assert_clean()
    check_score_histogram(page)
