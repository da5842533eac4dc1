"""Page weight and render time of every page of a built site, in headless Chromium.

Bytes: each HTML file (its embedded chart data included), the data files (`data/*.js`) it loads
for its initial view, the shared assets of the model folder once (the Vega runtime apart from
our own scripts and CSS), figures, and the whole site. A page's weight is its HTML plus the
data files of its initial view; the limit is PAGE_LIMIT bytes. Render time:
`tests/browser_support.open_page` -> `PageReport.render_ms`, i.e. ms from navigation start until
every `.vega-embed` element has drawn marks, each page opened in a fresh browser context; the
limit on its median is RENDER_LIMIT_MS.
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
DATA_DIR = "data"  # generator/render/datafiles.py
PAGE_LIMIT = 2_000_000  # bytes of a page: HTML + the data files of its initial view
RENDER_LIMIT_MS = 1500.0  # median ms until every chart is drawn


@dataclass
class PageResult:
    """One page: its size and render times."""

    path: str
    html_bytes: int
    charts: int
    render_ms: Samples | None = None
    problems: list[str] = field(default_factory=list)
    data_bytes: int = 0  # data files loaded for the initial view
    data_files: int = 0

    @property
    def weight(self) -> int:
        """Bytes of the page's initial view: its HTML and the data files it loads."""
        return self.html_bytes + self.data_bytes

    def verdicts(self) -> tuple[bool, bool | None]:
        """Return (weight within PAGE_LIMIT, median render within RENDER_LIMIT_MS or None)."""
        drawn = self.render_ms.median <= RENDER_LIMIT_MS if self.render_ms else None
        return self.weight <= PAGE_LIMIT, drawn


@dataclass
class SiteResult:
    """Sizes of a site and its pages."""

    pages: list[PageResult]
    vega_bytes: int
    own_asset_bytes: int
    figure_bytes: int
    site_bytes: int
    browser_skipped: str | None = None
    label: str = "default site"
    data_bytes: int = 0  # every data file of the site


def folder_bytes(folder: Path) -> int:
    """Total size of every file under `folder` (0 if it does not exist)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def measure_sizes(site: Path, label: str = "default site") -> SiteResult:
    """Measure the bytes of every HTML page under `site` and of its shared parts."""
    pages = []
    vega = own = figures = data = 0
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
        data += folder_bytes(model / DATA_DIR)
    result = SiteResult(pages, vega, own, figures, folder_bytes(site), label=label)
    result.data_bytes = data
    return result


def data_requests(page, site: Path) -> list[Path]:
    """Start recording the data files `page` requests under `site`; return the growing list."""
    from urllib.parse import unquote, urlsplit

    seen: list[Path] = []

    def on_request(request) -> None:
        parts = urlsplit(request.url)
        path = Path(unquote(parts.path))
        if parts.scheme == "file" and path.parent.name == DATA_DIR and path.is_file():
            seen.append(path)

    page.on("request", on_request)
    return seen


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
                        tab = context.new_page()
                        loaded = data_requests(tab, site)
                        report = open_page(
                            tab, file_url(site / page.path), expect_charts=page.charts > 0
                        )
                        files = set(loaded)
                    finally:
                        context.close()
                    page.data_files = len(files)
                    page.data_bytes = sum(path.stat().st_size for path in files)
                    times[page.path].append(report.render_ms)
                    page.problems = sorted(set(page.problems) | set(report.problems()))
        finally:
            browser.close()
    for page in result.pages:
        page.render_ms = Samples(tuple(times[page.path]))
        log.info("page %s: %s", page.path, page.render_ms.fmt(0, "ms"))


def measure_wide(folder: Path, reps: int) -> SiteResult:
    """Build the 24-layer x 16-head card of tests/wide_support.py into `folder`; measure its pages.

    A random-init BERT (d_model 64) over 40 texts of 150-169 tokens, 8 showcase examples, every
    analysis: the pages at the sizes issue #16 names. Built once, cold, in this process.
    """
    sys.path.insert(0, str(ROOT / "tests"))
    from wide_support import write_wide_card

    from generator.build import build_cards
    from generator.card import load_card

    card = write_wide_card(folder, "bert-24x16")
    site = folder / "site"
    log.info("pages: building the wide 24x16 site into %s", site)
    build_cards([load_card(card)], site, folder / "artifacts", progress=False)
    result = measure_sizes(site, label="wide 24 layers x 16 heads")
    measure_render(result, site, reps)
    return result
