"""Take the screenshots in docs/screenshots: every page of the default site, and the site index.

    make site && python scripts/screenshots.py [SITE] [--out docs/screenshots]
    python scripts/screenshots.py SITE --model NAME --only attention,weights --prefix NAME

Headless Chromium through Playwright (as the browser tests), 1200 px wide. Every page whole in
the light theme (at most MAX_HEIGHT px): docs/screenshots/page-{name}.png; the overview and
attention pages down to their first chart in both themes, {name}-{light,dark}.png (the README
shows those four).

    python scripts/screenshots.py SITE --model tiny-albert --only attention,weights --prefix albert

takes only the named pages of another model, light theme, as docs/screenshots/albert-{name}.png
(the ALBERT screenshots of docs/model-families.md: a tiny build of tests/fixtures/
tiny-albert-pretraining, e.g. tests/cards.py's `write_albert_card`; the XLNet ones:
`--model tiny-xlnet --only attention,weights --prefix tiny-xlnet`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser_support import file_url, launch_chromium, open_page  # noqa: E402

MODEL = "all-minilm-l6-v2"
README_PAGES = ("overview", "attention")
WIDTH = 1200
MAX_HEIGHT = 6000
# down to the first chart's caption and links, or the whole page when it has no chart
FIRST_CHART_BOTTOM_JS = """() => {
  const chart = document.querySelector('figure.chart');
  const box = chart ? chart.getBoundingClientRect() : document.body.getBoundingClientRect();
  return Math.ceil(box.bottom + window.scrollY + 16);
}"""
PAGE_BOTTOM_JS = "() => Math.ceil(document.documentElement.scrollHeight)"


def site_pages(site: Path, model: str = MODEL) -> dict[str, Path]:
    """Screenshot name -> page file: the site index and every page of `model`."""
    folder = site / model
    pages = {"site-index": site / "index.html", "overview": folder / "index.html"}
    for path in sorted(folder.glob("*.html")):
        if path.name != "index.html":
            pages[path.stem] = path
    return pages


def shoot(page, path: Path, target: Path, bottom_js: str, charts: bool = True) -> None:
    """Open `path` (it must render cleanly) and write its top, down to `bottom_js`, to `target`.

    charts: the page must show charts (every model page; not the site index).
    """
    open_page(page, file_url(path), expect_charts=charts).assert_clean()
    height = min(MAX_HEIGHT, page.evaluate(bottom_js))
    page.screenshot(
        path=target, full_page=True, clip={"x": 0, "y": 0, "width": WIDTH, "height": height}
    )
    print(f"{target} ({target.stat().st_size // 1024} KB, {height} px)")


def main(argv: list[str] | None = None) -> int:
    """Write the screenshots; fail when a page does not render cleanly."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, nargs="?", default=ROOT / "site")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--model", default=MODEL, help="model folder of the site")
    parser.add_argument("--only", default="", help="comma-separated page names, e.g. weights")
    parser.add_argument("--prefix", default="page", help="file name prefix of the whole pages")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    pages = site_pages(args.site, args.model)
    only = [name for name in args.only.split(",") if name]
    if only:
        pages = {name: pages[name] for name in only}
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            for scheme in ("light",) if only else ("light", "dark"):
                context = browser.new_context(
                    viewport={"width": WIDTH, "height": 900}, color_scheme=scheme
                )
                page = context.new_page()
                for name, path in pages.items():
                    charts = name != "site-index"
                    if scheme == "light":
                        target = args.out / f"{args.prefix}-{name}.png"
                        shoot(page, path, target, PAGE_BOTTOM_JS, charts)
                    if name in README_PAGES and not only:
                        top = args.out / f"{name}-{scheme}.png"
                        shoot(page, path, top, FIRST_CHART_BOTTOM_JS, charts)
                context.close()
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
