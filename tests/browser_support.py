"""Real-browser test support: open a page in headless Chromium and report what went wrong.

Tests use the ``browser`` / ``page`` fixtures from ``conftest.py`` and call
``open_page(page, url)``, which returns a ``PageReport`` (console errors, failed and external
requests, dialogs, charts that did not render, render time); ``report.assert_clean()`` fails
with every problem listed. ``serve_directory(path)`` serves a folder over loopback HTTP so the
same page can be checked from ``file://`` and ``http://``.

Browser: Debian's ``chromium`` package (``apt-get install -y chromium``), launched by Playwright
through ``executable_path``; ``playwright install`` is never needed.

Vega runtime as a classic script
--------------------------------
``vl_convert.javascript_bundle()`` (vl-convert-python 1.9) returns ~900 kB of plain, minified
JavaScript with **no** top-level ``import``/``export`` (and no ``import.meta`` or dynamic
``import()``); its default snippet ends with
``window.vegaEmbed=...;window.vega=...;window.vegaLite=...;``. So it already runs from a classic
``<script src="assets/vega.js">``, which also works from ``file://`` (ES modules do not).
Gotcha: its thousands of top-level ``function``/``var``/``const`` declarations (``n``, ``t``,
``e``...) land in the page's global scope, so a page script declaring ``const n`` fails with
"Identifier 'n' has already been declared" and a page ``function t(){}`` silently replaces one of
Vega's. Wrap it in a function scope::

    "(function () {\\n" + vl_convert.javascript_bundle() + "\\n})();\\n"

which is what ``vega_runtime_js()`` returns: a classic script defining only ``window.vegaEmbed``,
``window.vega`` and ``window.vegaLite``.

Content-Security-Policy
-----------------------
Vega compiles expressions and field accessors with ``Function(...)`` and vega-embed injects its
stylesheet (and vega-tooltip's) as ``<style>`` elements, so under ``script-src 'self';
style-src 'self'`` a plain ``vegaEmbed(el, spec)`` fails (EvalError, chart empty). Either relax
the policy to ``script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'``, or keep it
strict and embed with ``{ast: true, defaultStyle: false, tooltip: {disableDefaultStyle: true}}``
(vega-embed then evaluates expressions with its bundled interpreter; the CSS must then be
shipped as a file in ``assets/``). Both verified from ``file://`` and HTTP in
``test_browser_support.py`` (``STRICT_CSP`` + ``STRICT_EMBED_OPTIONS``, ``RELAXED_CSP``).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import math
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
INSTALL_HINT = "install Debian's chromium: apt-get update && apt-get install -y chromium"
VIEWPORT = {"width": 1280, "height": 900}

_ALLOWED_SCHEMES = ("file:", "data:", "blob:", "about:")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_EMPTY_GRACE_MS = 2000

# JS: why a .vega-embed element shows no rendered marks yet ("" once it does). An <svg> counts
# when a Vega `.mark-*` element (other than a bare group) has children; a <canvas> when it has a
# nonzero size and a painted (non-transparent) pixel. vega-embed's action menu icon is ignored.
_CHART_STATE_JS = """
const chartState = (el) => {
  const own = (n) => !n.closest('details, .vega-actions');
  const svgs = Array.from(el.querySelectorAll('svg')).filter(own);
  const canvases = Array.from(el.querySelectorAll('canvas')).filter(own);
  if (!svgs.length && !canvases.length) return 'no svg or canvas';
  for (const s of svgs) {
    for (const m of s.querySelectorAll('[class*="mark-"]')) {
      if (!m.classList.contains('mark-group') && m.childElementCount > 0) return '';
    }
  }
  for (const c of canvases) {
    if (!(c.width > 0 && c.height > 0)) continue;
    try {
      const alpha = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      for (let i = 3; i < alpha.length; i += 4) if (alpha[i] !== 0) return '';
    } catch (e) {
      return '';  // tainted or not a 2d canvas: its size is all we can check
    }
  }
  return svgs.length ? 'svg without marks' : 'canvas blank or zero-size';
};
"""

# Per .vega-embed element, [id, state].
_CHART_STATES_JS = (
    "() => {"
    + _CHART_STATE_JS
    + "const charts = document.querySelectorAll('.vega-embed');"
    + "return Array.from(charts, (el) => [el.id, chartState(el)]);}"
)

# Truthy (performance.now(): ms since navigation start) once the page is ready: every chart
# rendered, or window.__atlasReady === true, or (no chart) load done and the grace period over.
_READY_JS = (
    "([expectCharts, graceMs]) => {"
    + _CHART_STATE_JS
    + """
  if (window.__atlasReady === true) return performance.now();
  if (document.readyState !== 'complete') return false;
  const charts = document.querySelectorAll('.vega-embed');
  if (!charts.length) {
    return (!expectCharts || performance.now() > graceMs) ? performance.now() : false;
  }
  for (const el of charts) if (chartState(el)) return false;
  return performance.now();
}"""
)


def chromium_path() -> str | None:
    """Return the Chromium executable ($CHROMIUM_PATH, else chromium on PATH), or None."""
    env = os.environ.get("CHROMIUM_PATH")
    if env and Path(env).is_file():
        return env
    return shutil.which("chromium") or shutil.which("chromium-browser")


def launch_chromium(playwright):
    """Launch headless Chromium with the project's flags through a Playwright instance."""
    executable = chromium_path()
    if executable is None:
        raise RuntimeError(f"Chromium not found; {INSTALL_HINT}")
    return playwright.chromium.launch(
        executable_path=executable, headless=True, args=list(CHROMIUM_ARGS)
    )


@functools.lru_cache(maxsize=1)
def vega_runtime_js() -> str:
    """Return Vega + Vega-Lite + vega-embed as a classic script defining window.vegaEmbed."""
    import vl_convert

    return "(function () {\n" + vl_convert.javascript_bundle() + "\n})();\n"


def file_url(path: str | os.PathLike[str]) -> str:
    """Return the file:// URL of a local path."""
    return Path(path).resolve().as_uri()


@dataclass
class PageReport:
    """What happened while a page loaded and rendered its charts."""

    url: str
    console_errors: list[str]
    failed_requests: list[str]
    external_requests: list[str]
    charts: int
    empty_charts: list[str]
    dialogs: list[str]
    render_ms: float
    expect_charts: bool = True
    console_warnings: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Return one line per problem found (empty when the page is clean)."""
        out = [f"console error: {m}" for m in self.console_errors]
        out += [f"failed request: {r}" for r in self.failed_requests]
        out += [f"external request: {r}" for r in self.external_requests]
        out += [f"dialog: {d}" for d in self.dialogs]
        out += [f"chart did not render: {c}" for c in self.empty_charts]
        if self.expect_charts and self.charts == 0:
            out.append("no .vega-embed chart on the page")
        return out

    def assert_clean(self) -> None:
        """Raise AssertionError listing every problem, if any."""
        problems = self.problems()
        if problems:
            lines = "\n  ".join(problems)
            raise AssertionError(f"{self.url}: {len(problems)} problem(s):\n  {lines}")


def _origin(url: str) -> str:
    """Return scheme://host:port of an http(s) URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _is_local(url: str, local_origin: str | None) -> bool:
    """Tell whether a request URL stays on disk, in memory, or on the local test server."""
    if url.startswith(_ALLOWED_SCHEMES):
        return True
    return local_origin is not None and _origin(url) == local_origin


def open_page(page, url: str, expect_charts: bool = True, timeout_ms: int = 15000) -> PageReport:
    """Open url in a Playwright page, wait for every chart, and report what went wrong.

    Args:
        page: a Playwright sync ``Page`` (fresh, or at least not mid-navigation).
        url: ``file://`` URL, or an ``http://127.0.0.1:PORT/...`` URL from ``serve_directory``;
            requests to that loopback origin count as local, every other origin as external
            (external requests are listed and aborted, so the page never waits on a network).
        expect_charts: whether a page without any ``.vega-embed`` element is a problem.
        timeout_ms: how long to wait for navigation and for all charts to render.

    Returns:
        A PageReport; charts still empty at the timeout are listed in ``empty_charts`` and
        ``render_ms`` is ``inf`` (no exception is raised for a slow or broken page).
    """
    parts = urlsplit(url)
    local_origin = None
    if parts.scheme in ("http", "https") and parts.hostname in _LOOPBACK_HOSTS:
        local_origin = _origin(url)
    errors: list[str] = []
    warnings: list[str] = []
    failed: list[str] = []
    external: list[str] = []
    dialogs: list[str] = []

    def on_console(msg) -> None:
        if msg.type == "error":
            loc = msg.location or {}
            source = loc.get("url") or ""
            if local_origin and source == f"{local_origin}/favicon.ico":
                return  # Chromium's own favicon probe over HTTP, not the page's doing
            where = f" ({source}:{loc.get('lineNumber')})" if source else ""
            errors.append(msg.text + where)
        elif msg.type == "warning":
            warnings.append(msg.text)

    def on_pageerror(exc) -> None:
        errors.append(f"uncaught: {exc}")

    def on_request(request) -> None:
        if not _is_local(request.url, local_origin):
            external.append(f"{request.method} {request.url}")

    def on_requestfailed(request) -> None:
        if _is_local(request.url, local_origin):  # external ones are aborted and listed above
            failed.append(f"{request.method} {request.url}: {request.failure}")

    def on_response(response) -> None:
        if response.status >= 400:
            failed.append(f"{response.request.method} {response.url}: HTTP {response.status}")

    def on_websocket(ws) -> None:
        external.append(f"WEBSOCKET {ws.url}")

    def is_external(request_url: str) -> bool:
        return not _is_local(request_url, local_origin)

    def abort(route) -> None:
        with contextlib.suppress(Exception):
            route.abort("blockedbyclient")

    def on_dialog(dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        with contextlib.suppress(Exception):
            dialog.dismiss()

    handlers = {
        "console": on_console,
        "pageerror": on_pageerror,
        "request": on_request,
        "requestfailed": on_requestfailed,
        "response": on_response,
        "dialog": on_dialog,
        "websocket": on_websocket,
    }
    for event, handler in handlers.items():
        page.on(event, handler)
    page.route(is_external, abort)  # hermetic: never wait on the network
    start = time.perf_counter()
    render_ms = math.inf
    try:
        try:
            page.goto(url, wait_until="load", timeout=timeout_ms)
        except Exception as exc:  # navigation error or timeout: report, do not raise
            errors.append(f"navigation: {exc}".splitlines()[0])
        remaining = max(1.0, timeout_ms - (time.perf_counter() - start) * 1000)
        try:
            ready = page.wait_for_function(
                _READY_JS,
                arg=[expect_charts, min(_EMPTY_GRACE_MS, timeout_ms)],
                timeout=remaining,
            )
            render_ms = float(ready.json_value())
        except Exception:  # timeout: the empty charts are reported below
            pass
        try:
            states = page.evaluate(_CHART_STATES_JS)
        except Exception as exc:
            errors.append(f"could not inspect charts: {exc}".splitlines()[0])
            states = []
    finally:
        for event, handler in handlers.items():
            page.remove_listener(event, handler)
        with contextlib.suppress(Exception):
            page.unroute(is_external, abort)
    empty = [
        f"{'#' + chart_id if chart_id else f'.vega-embed[{i}]'} ({state})"
        for i, (chart_id, state) in enumerate(states)
        if state
    ]
    if empty:
        render_ms = math.inf
    return PageReport(
        url=url,
        console_errors=errors,
        failed_requests=failed,
        external_requests=external,
        charts=len(states),
        empty_charts=empty,
        dialogs=dialogs,
        render_ms=render_ms,
        expect_charts=expect_charts,
        console_warnings=warnings,
    )


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static file handler that logs nothing and sends modern MIME types, uncached."""

    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
        ".svg": "image/svg+xml",
        ".wasm": "application/wasm",
    }

    def log_message(self, format, *args) -> None:  # noqa: A002 - stdlib signature
        """Stay quiet."""

    def end_headers(self) -> None:
        """Disable caching so each test sees the files it just wrote."""
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@contextlib.contextmanager
def serve_directory(path: str | os.PathLike[str]) -> Iterator[str]:
    """Serve a directory on 127.0.0.1 (free port) in a thread; yield its base URL ending in /."""
    handler = functools.partial(_QuietHandler, directory=os.fspath(path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="serve_directory", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- Generic checks over every page ----------------------------------------------------------

# JS: a short hash per .vega-embed element of its rendered SVG (or canvas pixels), to detect change.
_CHART_SIGNATURES_JS = """() => {
  const hash = (text) => {
    let h = 5381;
    for (let i = 0; i < text.length; i++) h = (h * 33 + text.charCodeAt(i)) | 0;
    return h;
  };
  return Array.from(document.querySelectorAll('.vega-embed'), (el) => {
    const svg = el.querySelector('svg');
    const canvas = el.querySelector('canvas');  // a dense chart draws on a canvas
    return el.id + ':' + (svg ? hash(svg.outerHTML) : canvas ? hash(canvas.toDataURL()) : 'none');
  });
}"""

_SIGNATURES_CHANGED_JS = (
    "(before) => { const now = ("
    + _CHART_SIGNATURES_JS
    + ")(); return window.__atlasReady !== false"
    + " && now.length === before.length && now.some((s, i) => s !== before[i]); }"
)


def chart_signatures(page) -> list[str]:
    """Return 'id:hash' of every chart's current SVG (or canvas), in document order."""
    return page.evaluate(_CHART_SIGNATURES_JS)


def page_selects(page) -> list[dict]:
    """Return [{index, id, name, values, value}] of every <select> inside a `.controls` element."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('.controls select'), (s, index) => ({
            index, id: s.id, name: s.name || s.id,
            values: Array.from(s.options, (o) => o.value), value: s.value}))"""
    )


def selector_problems(page, timeout_ms: int = 5000, reopen=None) -> tuple[list[str], int]:
    """Choose another option in every `.controls` select and check that some chart's SVG changes.

    With `reopen` (a no-argument callable that loads the page afresh), each select is tried
    from the page's first state; without it, from the state the previous selects left (where a
    legitimately empty view, e.g. a constant layer, can make a later select change nothing).

    Returns:
        (problems, checked): one line per select that changed no chart, and how many selects
        had a second option to choose (a select with one option cannot change anything).
    """
    problems, checked = [], 0
    for index in range(len(page_selects(page))):
        if reopen is not None and index:
            reopen()
        # Read the select afresh: changing one select may rebuild another's options
        # (e.g. the weights page lists the matrices of the chosen block).
        select = page_selects(page)[index]
        others = [v for v in select["values"] if v != select["value"]]
        if not others:
            continue
        checked += 1
        before = chart_signatures(page)
        locator = page.locator(".controls select").nth(select["index"])
        locator.select_option(others[0])
        try:
            page.wait_for_function(_SIGNATURES_CHANGED_JS, arg=before, timeout=timeout_ms)
        except Exception:
            problems.append(
                f"select {select['name']!r}: choosing {others[0]!r} changed no chart in {timeout_ms} ms"
            )
    return problems, checked


def horizontal_overflow(page) -> list[str]:
    """Return what makes the page wider than the viewport, outside chart and table scrollers."""
    return page.evaluate(
        """() => {
          const limit = document.documentElement.clientWidth + 1;
          if (document.documentElement.scrollWidth <= limit) return [];
          const scrollers = '.chart, .table-scroll, pre';
          const out = [];
          for (const el of document.body.querySelectorAll('*')) {
            if (el.closest(scrollers)) continue;
            const box = el.getBoundingClientRect();
            if (box.right > limit) out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
              + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ')[0] : '')
              + ' right=' + Math.round(box.right));
          }
          return out.length ? out.slice(0, 10) : ['page scrollWidth ' + document.documentElement.scrollWidth];
        }"""
    )


def open_data_tables(page, timeout_ms: int = 5000) -> list[dict]:
    """Open every chart's "show data" <details>; return [{chart, rows, columns, caption}] per table."""
    page.evaluate(
        "() => document.querySelectorAll('details.chart-data').forEach((d) => { d.open = true; })"
    )
    count = page.locator("details.chart-data").count()
    if count:
        page.wait_for_function(
            """(n) => Array.from(document.querySelectorAll('details.chart-data'))
                 .filter((d) => d.querySelector('.chart-data-body').childElementCount > 0).length === n""",
            arg=count,
            timeout=timeout_ms,
        )
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('details.chart-data')).flatMap((d) => {
            const tables = Array.from(d.querySelectorAll('table'));
            if (!tables.length) return [{chart: d.dataset.chart, rows: 0, columns: 0, caption: ''}];
            return tables.map((t) => ({chart: d.dataset.chart, rows: t.tBodies[0].rows.length,
              columns: t.tHead.rows[0].cells.length, caption: t.caption.textContent,
              first: t.tBodies[0].rows.length ? t.tBodies[0].rows[0].textContent : ''}));
          })"""
    )


# --- Legibility at real sizes (#16) -----------------------------------------------------------

# JS: per chart, the pairs of drawn axis labels of one axis that overlap. Upright labels: their
# glyph boxes (0.8 em tall) intersect by more than 1 px both ways. Rotated labels (token axes) are parallel lines of
# text: two clash when their anchors are closer across the text direction than 0.8 em (the
# glyphs' height) while their extents along it meet. A label Vega hid (labelOverlap) has opacity
# 0 and does not count.
_LABEL_OVERLAPS_JS = """() => {
  const shown = (t) => t.textContent.trim() && t.getAttribute('opacity') !== '0'
    && getComputedStyle(t).opacity !== '0';
  const placed = (t) => {
    const m = /translate\\(([-\\d.e]+),\\s*([-\\d.e]+)\\)\\s*rotate\\(([-\\d.e]+)\\)/
      .exec(t.getAttribute('transform') || '');
    const angle = m ? (Number(m[3]) % 360) * Math.PI / 180 : 0;
    return {text: t.textContent, box: t.getBoundingClientRect(), rotated: Math.abs(Math.sin(angle)) > 0.01,
      x: m ? Number(m[1]) : 0, y: m ? Number(m[2]) : 0, angle, length: t.getComputedTextLength(),
      em: parseFloat(getComputedStyle(t).fontSize)};
  };
  const clash = (a, b) => {
    if (a.rotated && b.rotated && a.angle === b.angle) {
      const dx = b.x - a.x, dy = b.y - a.y, c = Math.cos(a.angle), s = Math.sin(a.angle);
      const across = Math.abs(dx * s - dy * c), along = Math.abs(dx * c + dy * s);
      return across < 0.8 * Math.min(a.em, b.em) && along < Math.max(a.length, b.length);
    }
    // upright: boxes narrowed to the central 0.8 em of their height (the glyphs, not the
    // line's ascent and descent room)
    const mid = (l) => (l.box.top + l.box.bottom) / 2;
    const w = Math.min(a.box.right, b.box.right) - Math.max(a.box.left, b.box.left);
    const h = 0.4 * (a.em + b.em) - Math.abs(mid(a) - mid(b));
    return w > 1 && h > 1;
  };
  const out = [];
  for (const chart of document.querySelectorAll('.vega-embed')) {
    chart.querySelectorAll('g.role-axis').forEach((axis) => {
      const labels = Array.from(axis.querySelectorAll('g.role-axis-label text'))
        .filter(shown).map(placed);
      for (let i = 0; i < labels.length; i++) {
        for (let j = i + 1; j < labels.length; j++) {
          if (clash(labels[i], labels[j])) {
            out.push(`${chart.id}: ${JSON.stringify(labels[i].text)} / ${JSON.stringify(labels[j].text)}`);
          }
        }
      }
    });
  }
  return out;
}"""


def label_overlaps(page) -> list[str]:
    """Return 'chart: label / label' for every two drawn axis labels of one axis that overlap."""
    return page.evaluate(_LABEL_OVERLAPS_JS)
