"""benchmarks/page_render.measure_pages: one row per page of a built site, with its render time."""

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.page_render import markdown_table, measure_pages, site_pages  # noqa: E402
from generator.render.pages import PAGES  # noqa: E402

pytestmark = pytest.mark.browser


def test_measure_pages_covers_every_page(browser, tiny_build):
    _, out, _ = tiny_build
    assert [p.name for _, p in site_pages(out)] == ["index.html", *(p.filename for p in PAGES)]
    rows = measure_pages(out, browser=browser)
    assert [row["model"] for row in rows] == ["", *(["tiny-bert"] * len(PAGES))]
    for row in rows:
        assert row["problems"] == [] and math.isfinite(row["render_ms"]) and row["render_ms"] > 0
    assert all(row["charts"] >= 1 for row in rows[1:])
    assert "| tiny-bert | attention.html |" in markdown_table(rows)
