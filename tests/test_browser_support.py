"""Self-tests of the real-browser harness (browser_support) on small pages with the real Vega.

Each page lives in tmp_path with the Vega runtime as a classic script in ``assets/vega.js``
(``browser_support.vega_runtime_js()``: ``vl_convert.javascript_bundle()`` wrapped in a function
scope), its spec in an inline ``<script type="application/json">`` block, and a small
``assets/boot.js`` calling ``vegaEmbed``; the same page is checked from ``file://`` and HTTP.

CSP finding: the strict policy ``STRICT_CSP`` (no ``'unsafe-eval'``, no ``'unsafe-inline'``)
renders a chart when vega-embed is called with ``STRICT_EMBED_OPTIONS`` (expression interpreter
instead of ``Function``, no injected ``<style>``); with vega-embed's default options the minimal
working policy is ``RELAXED_CSP`` (``'unsafe-eval'`` for scripts, ``'unsafe-inline'`` for styles).
Inline JSON data blocks are not executed, so ``script-src 'self'`` does not block them.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import pytest
from browser_support import (
    PageReport,
    file_url,
    open_page,
    serve_directory,
    vega_runtime_js,
)

pytestmark = pytest.mark.browser

BAR_SPEC = {
    "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
    "data": {"values": [{"a": "A", "b": 3}, {"a": "B", "b": 5}, {"a": "C", "b": 1}]},
    "params": [{"name": "pick", "select": "point"}],
    "transform": [{"calculate": "datum.b * 2", "as": "double"}],
    "mark": {"type": "bar", "tooltip": True},
    "encoding": {
        "x": {"field": "a", "type": "nominal"},
        "y": {"field": "double", "type": "quantitative"},
        "opacity": {"condition": {"param": "pick", "value": 1}, "value": 0.4},
    },
}

STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'none'; font-src 'self'"
)
RELAXED_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'none'; font-src 'self'"
)
# vega-embed options that need neither 'unsafe-eval' nor 'unsafe-inline' (ship CSS instead).
STRICT_EMBED_OPTIONS = {
    "ast": True,
    "defaultStyle": False,
    "tooltip": {"disableDefaultStyle": True},
}


@pytest.fixture(scope="module")
def runtime_js() -> str:
    return vega_runtime_js()


@pytest.fixture
def write_page(tmp_path, runtime_js):
    """Return write(name, body, *, head="", embed_options=None) -> Path of the page written."""
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "vega.js").write_text(runtime_js, encoding="utf-8")

    def write(name: str, body: str, *, head: str = "", embed_options: dict | None = None) -> Path:
        boot = f"boot-{Path(name).stem}.js"
        (assets / boot).write_text(
            "document.querySelectorAll('.vega-embed[data-spec]').forEach((el) => {\n"
            "  const spec = JSON.parse(document.getElementById(el.dataset.spec).textContent);\n"
            f"  vegaEmbed(el, spec, {json.dumps(embed_options or {})})\n"
            "    .catch((err) => console.error('vegaEmbed failed: ' + err));\n"
            "});\n",
            encoding="utf-8",
        )
        page = tmp_path / name
        page.write_text(
            "<!doctype html>\n<html><head><meta charset='utf-8'>\n"
            f"{head}\n<script src='assets/vega.js'></script>\n</head>\n"
            f"<body>\n{body}\n<script src='assets/{boot}'></script>\n</body></html>\n",
            encoding="utf-8",
        )
        return page

    return write


def chart(chart_id: str, spec: dict = BAR_SPEC) -> str:
    """Return a chart mount plus its inline JSON spec block."""
    data = json.dumps(spec).replace("<", "\\u003c")
    return (
        f"<div id='{chart_id}' class='vega-embed' data-spec='{chart_id}-spec'></div>\n"
        f"<script type='application/json' id='{chart_id}-spec'>{data}</script>"
    )


def csp_meta(policy: str) -> str:
    return f'<meta http-equiv="Content-Security-Policy" content="{html.escape(policy)}">'


def open_both(page, path: Path, **kwargs) -> list[PageReport]:
    """Open a page from file:// and from a loopback HTTP server; return both reports."""
    reports = [open_page(page, file_url(path), **kwargs)]
    with serve_directory(path.parent) as base:
        reports.append(open_page(page, base + path.name, **kwargs))
    return reports


def test_rendered_bar_chart_is_clean(page, write_page):
    path = write_page("bar.html", chart("bar"))
    for report in open_both(page, path):
        report.assert_clean()
        assert report.charts == 1 and report.empty_charts == []
        assert 0 < report.render_ms < 15000
        assert page.locator("#bar svg .mark-rect path").count() == 3


def test_canvas_chart_is_clean(page, write_page):
    path = write_page("canvas.html", chart("bar"), embed_options={"renderer": "canvas"})
    report = open_page(page, file_url(path))
    report.assert_clean()
    assert report.charts == 1 and math.isfinite(report.render_ms)


def test_console_error_and_uncaught_exception_are_reported(page, write_page):
    body = chart("bar") + (
        "\n<script>console.error('boom from page');</script>"
        "\n<script>throw new Error('kaboom');</script>"
    )
    for report in open_both(page, write_page("errors.html", body)):
        assert any("boom from page" in e for e in report.console_errors)
        assert any("kaboom" in e for e in report.console_errors)
        assert report.empty_charts == []  # the chart itself still rendered
        with pytest.raises(AssertionError, match="boom from page"):
            report.assert_clean()


def test_external_request_is_reported_and_never_sent(page, write_page):
    body = chart("bar") + "\n<img src='http://example.com/x.png' alt=''>"
    for report in open_both(page, write_page("external.html", body)):
        assert report.external_requests == ["GET http://example.com/x.png"]
        assert report.failed_requests == []  # aborted externals are listed once, as external
        with pytest.raises(AssertionError, match="external request: GET http://example.com"):
            report.assert_clean()


def test_missing_local_asset_is_a_failed_request(page, write_page):
    body = chart("bar") + "\n<script src='assets/missing.js'></script>"
    file_report, http_report = open_both(page, write_page("missing.html", body))
    assert any("missing.js" in r for r in file_report.failed_requests)
    assert any("missing.js" in r and "HTTP 404" in r for r in http_report.failed_requests)
    assert file_report.external_requests == http_report.external_requests == []


def test_chart_that_never_renders_is_empty(page, write_page):
    body = (
        chart("good")
        + "\n<div id='ghost' class='vega-embed'></div>"
        + "\n<div class='vega-embed'><svg width='10' height='10'></svg></div>"
    )
    report = open_page(page, file_url(write_page("ghost.html", body)), timeout_ms=2000)
    assert report.charts == 3
    assert report.empty_charts == [
        "#ghost (no svg or canvas)",
        ".vega-embed[2] (svg without marks)",
    ]
    assert report.render_ms == math.inf
    with pytest.raises(AssertionError, match="#ghost"):
        report.assert_clean()


def test_atlas_ready_flag_does_not_hide_empty_charts(page, write_page):
    body = "<div id='ghost' class='vega-embed'></div>\n<script>window.__atlasReady = true;</script>"
    report = open_page(page, file_url(write_page("ready.html", body)), timeout_ms=5000)
    assert report.empty_charts == ["#ghost (no svg or canvas)"]


def test_alert_is_reported_as_dialog(page, write_page):
    body = chart("bar") + "\n<script>alert('hello');</script>"
    report = open_page(page, file_url(write_page("alert.html", body)))
    assert report.dialogs == ["alert: hello"]
    assert report.empty_charts == []  # dismissed, so the page went on
    with pytest.raises(AssertionError, match="dialog: alert: hello"):
        report.assert_clean()


def test_page_without_charts(page, write_page):
    path = write_page("plain.html", "<p>No charts here.</p>")
    open_page(page, file_url(path), expect_charts=False).assert_clean()
    report = open_page(page, file_url(path), timeout_ms=3000)
    assert report.charts == 0
    with pytest.raises(AssertionError, match=r"no \.vega-embed chart"):
        report.assert_clean()


@pytest.mark.parametrize(
    ("policy", "options"),
    [(STRICT_CSP, STRICT_EMBED_OPTIONS), (RELAXED_CSP, {})],
    ids=["strict-csp-ast", "relaxed-csp-default-embed"],
)
def test_chart_renders_under_csp(page, write_page, policy, options):
    path = write_page("csp.html", chart("bar"), head=csp_meta(policy), embed_options=options)
    for report in open_both(page, path):
        report.assert_clean()
        page.click("#bar svg .mark-rect path >> nth=1")  # point selection runs expressions
        page.hover("#bar svg .mark-rect path >> nth=0")  # tooltip
        assert page.evaluate("document.querySelectorAll('#vg-tooltip-element').length") == 1


def test_strict_csp_blocks_default_vega_embed(page, write_page):
    path = write_page("csp-default.html", chart("bar"), head=csp_meta(STRICT_CSP))
    for report in open_both(page, path, timeout_ms=1500):
        assert report.empty_charts == ["#bar (no svg or canvas)"]
        assert any("EvalError" in e for e in report.console_errors)  # Function() refused
        assert any("inline style" in e for e in report.console_errors)  # injected <style>


def test_strict_csp_blocks_inline_script(page, write_page):
    body = chart("bar") + "\n<script>window.inlineRan = true;</script>"
    path = write_page(
        "csp-inline.html", body, head=csp_meta(STRICT_CSP), embed_options=STRICT_EMBED_OPTIONS
    )
    report = open_page(page, file_url(path))
    assert report.empty_charts == []
    assert page.evaluate("window.inlineRan === undefined")
    assert any("Content Security Policy" in e for e in report.console_errors)


def test_serve_directory_serves_and_stops(tmp_path):
    import urllib.error
    import urllib.request

    (tmp_path / "a.js").write_text("1;", encoding="utf-8")
    with serve_directory(tmp_path) as base:
        assert base.startswith("http://127.0.0.1:") and base.endswith("/")
        with urllib.request.urlopen(base + "a.js") as response:
            assert response.headers["Content-Type"] == "text/javascript"
            assert response.read() == b"1;"
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(base + "a.js", timeout=2)
