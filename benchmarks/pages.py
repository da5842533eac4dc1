"""Page weight and render time of every page of a built site, in headless Chromium.

Bytes: each HTML file (its embedded chart data included), the shared assets of the model folder
once (the Vega runtime apart from our own scripts and CSS), figures, and the whole site. Render
time: `tests/browser_support.open_page` -> `PageReport.render_ms`, i.e. ms from navigation start
until every `.vega-embed` element has drawn marks, each page opened in a fresh browser context.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.runner import ROOT
from benchmarks.stats import Samples

log = logging.getLogger(__name__)

VEGA_BUNDLE_PREFIX = "vega-bundle"
CHART_MARKER = 'class="vega-embed"'


@dataclass
class PageResult:
    """One page: its size and render times."""

    path: str
    html_bytes: int
    charts: int
    render_ms: Samples | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class SiteResult:
    """Sizes of a site and its pages."""

    pages: list[PageResult]
    vega_bytes: int
    own_asset_bytes: int
    figure_bytes: int
    site_bytes: int
    browser_skipped: str | None = None


def folder_bytes(folder: Path) -> int:
    """Total size of every file under `folder` (0 if it does not exist)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def measure_sizes(site: Path) -> SiteResult:
    """Measure the bytes of every HTML page under `site` and of its shared parts."""
    pages = []
    vega = own = figures = 0
    for html in sorted(site.rglob("*.html")):
        text = html.read_text(encoding="utf-8")
        pages.append(
            PageResult(str(html.relative_to(site)), html.stat().st_size, text.count(CHART_MARKER))
        )
    for model in sorted(p for p in site.iterdir() if p.is_dir()):
        assets = model / "assets"
        if assets.is_dir():
            for path in assets.iterdir():
                if path.name.startswith(VEGA_BUNDLE_PREFIX):
                    vega = max(vega, path.stat().st_size)  # shared runtime, counted once
                else:
                    own += path.stat().st_size
        figures += folder_bytes(model / "figures")
    return SiteResult(pages, vega, own, figures, folder_bytes(site))


def measure_render(result: SiteResult, site: Path, reps: int) -> None:
    """Open every page `reps` times in headless Chromium; fill render_ms and problems."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from browser_support import VIEWPORT, chromium_path, file_url, launch_chromium, open_page
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        result.browser_skipped = f"Playwright not installed ({error})"
        return
    if chromium_path() is None:
        result.browser_skipped = "Chromium not found"
        return
    times: dict[str, list[float]] = {page.path: [] for page in result.pages}
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            for _ in range(reps):
                for page in result.pages:
                    context = browser.new_context(viewport=VIEWPORT)
                    try:
                        report = open_page(
                            context.new_page(),
                            file_url(site / page.path),
                            expect_charts=page.charts > 0,
                        )
                    finally:
                        context.close()
                    times[page.path].append(report.render_ms)
                    page.problems = sorted(set(page.problems) | set(report.problems()))
        finally:
            browser.close()
    for page in result.pages:
        page.render_ms = Samples(tuple(times[page.path]))
        log.info("page %s: %s", page.path, page.render_ms.fmt(0, "ms"))
