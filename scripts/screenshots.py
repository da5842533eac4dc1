"""Take the README screenshots: overview and attention pages of the default site, light and dark.

    make site && python scripts/screenshots.py [SITE] [--out docs/screenshots]

Headless Chromium through Playwright (as the browser tests), 1200 px wide, the top of each page
down to its first chart (at most MAX_HEIGHT px), written as docs/screenshots/{overview,attention}-{light,dark}.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser_support import file_url, launch_chromium, open_page  # noqa: E402

MODEL = "all-minilm-l6-v2"
PAGES = {"overview": "index.html", "attention": "attention.html"}
WIDTH = 1200
MAX_HEIGHT = 1800
# down to the first chart's caption and links, or the whole page when it has no chart
FIRST_CHART_BOTTOM_JS = """() => {
  const chart = document.querySelector('figure.chart');
  const box = chart ? chart.getBoundingClientRect() : document.body.getBoundingClientRect();
  return Math.ceil(box.bottom + window.scrollY + 16);
}"""


def main(argv: list[str] | None = None) -> int:
    """Write the screenshots; fail when a page does not render cleanly."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, nargs="?", default=ROOT / "site")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            for scheme in ("light", "dark"):
                context = browser.new_context(
                    viewport={"width": WIDTH, "height": 900}, color_scheme=scheme
                )
                page = context.new_page()
                for name, filename in PAGES.items():
                    open_page(page, file_url(args.site / MODEL / filename)).assert_clean()
                    height = min(MAX_HEIGHT, page.evaluate(FIRST_CHART_BOTTOM_JS))
                    target = args.out / f"{name}-{scheme}.png"
                    page.screenshot(
                        path=target,
                        full_page=True,
                        clip={"x": 0, "y": 0, "width": WIDTH, "height": height},
                    )
                    print(f"{target} ({target.stat().st_size // 1024} KB)")
                context.close()
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
