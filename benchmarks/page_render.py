"""Time-to-rendered of every page of a built site, in headless Chromium (Playwright).

`measure_pages(site_dir)` opens the site index and every page of every model folder (the pages
listed in its build-info.json, so new pages are measured with no change here) from file://, each
in a fresh browser context, and returns one row per page:

    {"model", "page", "url", "render_ms", "charts", "problems"}

`render_ms` is `performance.now()` when every chart had rendered (or the page signalled
`window.__atlasReady`): milliseconds from navigation start, the median over `repeats` loads;
`inf` when a chart never rendered. Run as a script for a Markdown table (and `--json FILE`):

    python benchmarks/page_render.py site --repeats 3 --json page-render.json

Needs the test extra (playwright) and Debian's chromium, like the browser tests, whose harness
(`tests/browser_support.py`) it uses.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"


def _support():
    """Import the browser harness from tests/."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    import browser_support

    return browser_support


def site_pages(site_dir: Path) -> list[tuple[str, Path]]:
    """Return (model name or "", page path) of the index and every model page, in order."""
    site_dir = Path(site_dir)
    pages = [("", site_dir / "index.html")] if (site_dir / "index.html").is_file() else []
    for info_path in sorted(site_dir.glob("*/build-info.json")):
        info = json.loads(info_path.read_text(encoding="utf-8"))
        pages += [(info_path.parent.name, info_path.parent / f) for f in info.get("pages", [])]
    return pages


def measure_pages(
    site_dir: str | Path,
    repeats: int = 1,
    viewport: dict | None = None,
    color_scheme: str = "light",
    browser=None,
) -> list[dict]:
    """Open every page of the site `repeats` times; return one row per page (see module doc).

    `browser`: a Playwright Browser to use (e.g. the tests' session browser); default: start
    headless Chromium for this call.
    """
    support = _support()
    if browser is None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            own = support.launch_chromium(playwright)
            try:
                return measure_pages(site_dir, repeats, viewport, color_scheme, browser=own)
            finally:
                own.close()
    rows = []
    for model, path in site_pages(Path(site_dir)):
        times, report = [], None
        for _ in range(max(1, repeats)):
            context = browser.new_context(
                viewport=viewport or support.VIEWPORT, color_scheme=color_scheme
            )
            try:
                page = context.new_page()
                report = support.open_page(page, support.file_url(path), expect_charts=bool(model))
                times.append(report.render_ms)
            finally:
                context.close()
        rows.append(
            {
                "model": model,
                "page": path.name if model else "index.html (site)",
                "url": report.url,
                "render_ms": statistics.median(times),
                "charts": report.charts,
                "problems": report.problems(),
            }
        )
    return rows


def markdown_table(rows: list[dict]) -> str:
    """Return the rows as a Markdown table."""
    lines = [
        "| model | page | charts | render ms | problems |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for row in rows:
        ms = "never" if math.isinf(row["render_ms"]) else f"{row['render_ms']:.0f}"
        problems = "; ".join(row["problems"]) or "none"
        lines.append(
            f"| {row['model'] or '-'} | {row['page']} | {row['charts']} | {ms} | {problems} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: measure a site, print a Markdown table, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, nargs="?", default=Path("site"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = measure_pages(args.site, repeats=args.repeats)
    print(markdown_table(rows))
    if args.json:
        clean = [
            {**r, "render_ms": None if math.isinf(r["render_ms"]) else r["render_ms"]} for r in rows
        ]
        args.json.write_text(json.dumps(clean, indent=2) + "\n", encoding="utf-8")
    return 1 if any(r["problems"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
