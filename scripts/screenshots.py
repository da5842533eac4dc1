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

    python scripts/screenshots.py --wide [--work /tmp/modelatlas-wide]

builds the 24-layer x 16-head random-init BERT of tests/wide_support.py (texts of 150-169
tokens) into WORK (reused when WORK already holds its site) and writes the charts of WIDE_CHARTS,
each clipped to its chart, as docs/screenshots/wide-{name}.png (the legibility checks of #16).
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
WIDE_KIND = "bert-24x16"
# (page, chart id, screenshot name) of the wide build: the layer x head grids, a per-layer line
# chart of each page that has one, and the long example's per-token heatmap.
WIDE_CHARTS = (
    ("heads", "heads-heatmap", "heads-grid"),
    ("heads", "heads-layers", "heads-per-layer"),
    ("attributions", "head-ablation", "head-importance"),
    ("weights", "weights-depth", "weights-per-layer"),
    ("activations", "activations-bands", "activations-per-layer"),
    ("activations", "activations-dimension", "activations-tokens"),
    ("attention", "attention-heatmap", "attention-heatmap"),
    ("attention", "attention-overview", "attention-grid"),
)
WIDE_CLIP = (1280, 900)  # px at most of each chart, from its top left corner


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


def wide_site(work: Path) -> Path:
    """Return the model folder of the wide build in `work`, building it first if missing."""
    from wide_support import write_wide_card

    folder = work / "site" / f"wide-{WIDE_KIND}"
    if not (folder / "index.html").exists():
        from generator.build import build_cards
        from generator.card import load_card

        card = write_wide_card(work, WIDE_KIND)
        build_cards([load_card(card)], work / "site", work / "artifacts", strict=True)
    return folder


def shoot_wide(browser, folder: Path, out: Path) -> None:
    """Write every chart of WIDE_CHARTS, clipped to WIDE_CLIP, as out/wide-{name}.png."""
    context = browser.new_context(viewport={"width": WIDTH, "height": 900})
    page = context.new_page()
    opened = None
    for name, chart_id, shot in WIDE_CHARTS:
        if name != opened:
            open_page(page, file_url(folder / f"{name}.html"), timeout_ms=300_000).assert_clean()
            opened = name
        chart = page.locator(f"#chart-{chart_id}")
        chart.scroll_into_view_if_needed()
        box = chart.bounding_box()
        target = out / f"wide-{shot}.png"
        page.screenshot(
            path=target,
            full_page=True,
            clip={
                "x": box["x"],
                "y": box["y"] + page.evaluate("window.scrollY"),
                "width": min(box["width"], WIDE_CLIP[0]),
                "height": min(box["height"], WIDE_CLIP[1]),
            },
        )
        print(f"{target} ({target.stat().st_size // 1024} KB)")
    context.close()


def main(argv: list[str] | None = None) -> int:
    """Write the screenshots; fail when a page does not render cleanly."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, nargs="?", default=ROOT / "site")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--model", default=MODEL, help="model folder of the site")
    parser.add_argument("--only", default="", help="comma-separated page names, e.g. weights")
    parser.add_argument("--prefix", default="page", help="file name prefix of the whole pages")
    parser.add_argument("--wide", action="store_true", help="the 24-layer x 16-head build's charts")
    parser.add_argument("--work", type=Path, default=Path("/tmp/modelatlas-wide"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    if args.wide:
        folder = wide_site(args.work)
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                shoot_wide(browser, folder, args.out)
            finally:
                browser.close()
        return 0

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
