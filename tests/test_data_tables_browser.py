"""Every table a page shows holds what its headers say (real browser, built sites).

Two checks, on the tiny build and the default site:
- every table of every page (the page's own tables and each chart's "Show data" tables, opened):
  a column whose header names a quantity with a known range holds values in that range (a norm,
  an entropy or a count is never negative, a probability lies in [0, 1]); in a chart's data table
  whose rows carry a `method` column, the gradient-norm rows are never negative;
- the attributions page's scores table: for every example and method, the column headed by the
  method holds exactly the scores the chart draws for that method (the chart's own `scores`
  dataset), the gradient-norm column is never negative and the integrated-gradients column sums
  to f(x) - f(baseline) of the completeness table.
"""

from __future__ import annotations

import re

import pytest
from browser_support import file_url, open_data_tables, open_page

pytestmark = pytest.mark.browser

# Header pattern -> (lowest, highest) value a column under that header may hold.
COLUMN_RANGES = {
    r"\bnorms?\b": (0.0, None),
    r"\bentropy\b": (0.0, None),
    r"\bcounts?\b": (0.0, None),
    r"\bprob(ability)?\b|_prob\b": (0.0, 1.0),
}

_TABLES_JS = """() => Array.from(document.querySelectorAll('table')).map((t) => {
  const head = t.tHead ? Array.from(t.tHead.rows[0].cells, (c) => c.textContent.trim()) : [];
  const rows = Array.from(t.tBodies).flatMap((b) => Array.from(b.rows,
    (r) => Array.from(r.cells, (c) => c.textContent.trim())));
  const chart = t.closest('details.chart-data');
  return {id: t.id || (chart ? 'data of ' + chart.dataset.chart : t.className), head, rows};
})"""


def number(text: str) -> float | None:
    """The number a cell shows (a trailing % read as a share), or None for text."""
    match = re.fullmatch(r"(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)(%?)", text.replace("−", "-"))
    if not match:
        return None
    value = float(match.group(1))
    return value / 100 if match.group(2) else value


def range_problems(table: dict) -> list[str]:
    """Cells outside the range their column's header implies."""
    problems = []
    for column, header in enumerate(table["head"]):
        name = header.lower().replace(" ", "_") + " " + header.lower()
        for pattern, (low, high) in COLUMN_RANGES.items():
            if not re.search(pattern, name):
                continue
            for row in table["rows"]:
                value = number(row[column]) if column < len(row) else None
                if value is None:
                    continue
                if (low is not None and value < low) or (high is not None and value > high):
                    problems.append(f"{table['id']}: column {header!r} holds {row[column]}")
                    break
    if "method" in table["head"] and "score" in table["head"]:
        method, score = table["head"].index("method"), table["head"].index("score")
        negative = [r for r in table["rows"] if r[method] == "grad_norm" and float(r[score]) < 0]
        if negative:
            problems.append(f"{table['id']}: a grad_norm score is negative ({negative[0]})")
    return problems


def site_pages(build) -> list:
    _, site, _ = build
    folder = next(p for p in site.iterdir() if p.is_dir() and (p / "index.html").is_file())
    return sorted(folder.glob("*.html"))


@pytest.fixture(params=["tiny_build", "default_build"])
def build(request):
    return request.getfixturevalue(request.param)


def test_every_table_column_is_in_its_headers_range(build, page):
    problems, checked = [], 0
    for path in site_pages(build):
        open_page(page, file_url(path)).assert_clean()
        open_data_tables(page)
        for table in page.evaluate(_TABLES_JS):
            checked += len(table["rows"])
            problems += [f"{path.name}: {p}" for p in range_problems(table)]
    assert checked > 0
    assert not problems, "\n".join(problems)


_SCORES_JS = """() => {
  const table = document.querySelector('#attr-table');
  const methods = Array.from(table.tHead.rows[0].cells).slice(2).map((c) => c.dataset.method);
  const columns = {};
  methods.forEach((m, i) => {
    columns[m] = Array.from(table.tBodies[0].rows, (r) => Number(r.cells[i + 2].textContent));
  });
  const chart = window.Atlas.views['chart-token-scores'].data('scores').map((r) => r.score);
  return {methods, columns, chart};
}"""


def completeness_rows(page) -> list[dict]:
    """f(x) and f(baseline) per example from the completeness table."""
    rows = page.evaluate(
        """() => Array.from(document.querySelectorAll('table.facts tbody tr'),
             (r) => Array.from(r.cells, (c) => c.textContent.trim()))"""
    )
    return [{"objective": float(r[2]), "baseline": float(r[3])} for r in rows]


def test_attribution_scores_table_matches_the_chart_and_the_objective(build, page):
    _, site, _ = build
    path = next(p for p in site_pages(build) if p.name == "attributions.html")
    open_page(page, file_url(path)).assert_clean()
    facts = completeness_rows(page)
    examples = page.eval_on_selector_all("#select-attr-example option", "o => o.map(x => x.value)")
    methods = page.eval_on_selector_all("#select-attr-method option", "o => o.map(x => x.value)")
    assert {"integrated_gradients", "grad_norm", "grad_input"} <= set(methods)
    for example in examples:
        for method in methods:
            page.select_option("#select-attr-example", example)
            page.select_option("#select-attr-method", method)
            page.wait_for_function(
                "s => document.querySelector('#chart-token-scores')"
                ".getAttribute('data-selection') === s",
                arg=f"{example}/{method}",
            )
            data = page.evaluate(_SCORES_JS)
            column = data["columns"][method]
            assert column == pytest.approx(data["chart"], abs=5.1e-5), (
                f"example {example}: the column headed {method!r} is not what the chart draws"
            )
        columns = data["columns"]
        assert min(columns["grad_norm"]) >= 0, f"example {example}: negative gradient norm"
        gap = facts[int(example)]["objective"] - facts[int(example)]["baseline"]
        ig_sum = sum(columns["integrated_gradients"])
        tolerance = 0.02 * abs(gap) + 5e-5 * (len(column) + 2)
        assert ig_sum == pytest.approx(gap, abs=tolerance), (
            f"example {example}: integrated gradients sum to {ig_sum:.4f}, "
            f"f(x) - f(baseline) = {gap:.4f}"
        )
