"""Browser checks of the attention-score views, shared by the attention, T5 and activations tests.

The scores heatmap must follow the attention page's selectors (kind, example, layer, head, also
when attention.js sets them from a grid click) and the softmax of its visible cells must give the
weights heatmap's cells (both rounded for the page: weights to 1e-3, scores to max|score|/32767).
"""

from __future__ import annotations

import math

SCORES = "chart-attention-scores"
_STATE_JS = """() => {
  const ids = ['select-kind', 'select-example', 'select-layer', 'select-head'];
  const want = ids.map((id) => document.getElementById(id)).filter((el) => el)
    .map((el) => el.value).join(' | ');
  const el = document.getElementById('chart-attention-scores');
  return {want: want, selection: el.getAttribute('data-selection'),
          scores: Atlas.views['chart-attention-scores'].data('rows')
            .map((r) => [r.query, r.key, r.score, r.visible]),
          tips: Atlas.views['chart-attention-scores'].data('rows').map((r) => r.tip),
          weights: Atlas.views['chart-attention-heatmap'].data('cells')
            .map((c) => [c.query, c.key, c.weight])};
}"""
_SYNCED_JS = """() => {
  const ids = ['select-kind', 'select-example', 'select-layer', 'select-head'];
  const want = ids.map((id) => document.getElementById(id)).filter((el) => el)
    .map((el) => el.value).join(' | ');
  return document.getElementById('chart-attention-scores').getAttribute('data-selection') === want;
}"""


def softmax_rows(scores: list[list]) -> dict[tuple[str, str], float]:
    """Softmax of each query's visible scores -> {(query, key): weight} (hidden keys: 0)."""
    by_query: dict[str, list] = {}
    for query, key, score, visible in scores:
        by_query.setdefault(query, []).append((key, score, visible))
    out = {}
    for query, cells in by_query.items():
        top = max(score for _, score, visible in cells if visible)
        total = sum(math.exp(score - top) for _, score, visible in cells if visible)
        for key, score, visible in cells:
            out[(query, key)] = math.exp(score - top) / total if visible else 0.0
    return out


def check_scores_follow_weights(page, timeout_ms: int = 10000) -> dict:
    """Wait until the scores chart shows the selected view; check it against the weights."""
    page.wait_for_function(_SYNCED_JS, timeout=timeout_ms)
    state = page.evaluate(_STATE_JS)
    assert state["scores"], "the scores heatmap is empty"
    weights = {(q, k): w for q, k, w in state["weights"]}
    got = softmax_rows(state["scores"])
    assert set(weights) <= set(got)
    worst = max(abs(got[pair] - weight) for pair, weight in weights.items())
    assert worst <= 1.5e-3, f"softmax(scores) vs weights: {worst:.3g} ({state['selection']})"
    check_score_tips(state)
    return state


def check_score_tips(state: dict) -> None:
    """Each cell's tooltip: its labels, its score to 4 significant digits, whether it is seen."""
    from generator.render.charts.attention_scores import SCORE_TIP

    for (query, key, score, visible), tip in zip(state["scores"], state["tips"], strict=True):
        assert tuple(tip) == SCORE_TIP
        assert (tip["query"], tip["key"]) == (query, key)
        assert tip["seen by the softmax"] == ("true" if visible else "false")
        shown = float(tip["score before the softmax"].replace("\u2212", "-"))
        assert shown == float(f"{score:.4g}") or abs(shown - score) <= 5e-4 * abs(score)
        assert "-" not in tip["score before the softmax"]  # d3's minus sign, U+2212


def check_score_histogram(page) -> None:
    """The activations page's score histogram has bins and follows its layer and head selects."""
    element = "chart-activations-scores"
    rows = "() => Atlas.views['chart-activations-scores'].data('rows').map((r) => r.fraction)"
    first = page.evaluate(rows)
    assert first and abs(sum(first) - 1.0) < 1e-2
    for select_id in ("select-score-head", "select-score-layer"):
        options = page.eval_on_selector_all(f"#{select_id} option", "os => os.map(o => o.value)")
        before = page.get_attribute(f"#{element}", "data-selection")
        page.select_option(f"#{select_id}", options[-1])
        page.wait_for_function(
            "([id, s]) => document.getElementById(id).getAttribute('data-selection') !== s",
            arg=[element, before],
        )
        assert abs(sum(page.evaluate(rows)) - 1.0) < 1e-2
