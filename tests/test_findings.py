"""Findings first: facts are a pure function of the analysis tables, each naming its view."""

from __future__ import annotations

import numpy as np

from generator.analyze.representation_points import (
    misclassified,
    nearest_neighbours,
    prediction_table,
)
from generator.render.findings import PRUNING_KEEP, fact_link, findings


def head_rows(values: dict[tuple[int, int], float], metric: str) -> list[dict]:
    return [{"layer": layer, "head": head, metric: v} for (layer, head), v in values.items()]


def test_probing_fact_names_the_headline_pooling_and_chance():
    tables = {
        "representation_summary": {
            "poolings": ["cls", "mean"],
            "protocol": {"chance": 0.25},
            "best": {"cls": {"layer": 4, "accuracy": 0.8125, "se": 0.05}, "mean": {"layer": 2}},
        }
    }
    (fact,) = findings(tables)
    assert fact["text"] == (
        "Best probing layer (cls pooling): layer 4, held-out linear-probe accuracy 81.2% ± 5.0% "
        "against a chance level of 25.0%."
    )
    assert fact_link(fact) == "representations.html#pooling=cls&layer=4&chart=rep-separability"


def test_head_metric_facts_count_heads_over_half_and_link_the_top_one():
    special = head_rows({(0, 0): 0.9, (0, 1): 0.2, (1, 0): 0.51, (1, 1): 0.95}, "special")
    previous = head_rows({(0, 0): 0.1, (0, 1): 0.3, (1, 0): 0.2, (1, 1): 0.05}, "previous")
    rows = [{**a, **b} for a, b in zip(special, previous, strict=True)]
    facts = {f["topic"]: f for f in findings({"head_metrics": rows})}
    assert facts["heads-special"]["text"].startswith(
        "3 of 4 heads put more than half their attention on special tokens (most: layer 1 head 1,"
        " layer 0 head 0, layer 1 head 0; layer 1 head 1: 95.0%)"
    )
    assert facts["heads-special"]["state"] == {"metric": "special"}
    assert facts["heads-special-top"]["state"] == {"layer": 1, "head": 1}
    assert facts["heads-previous"]["text"] == (
        "No head puts more than half its attention on the previous token; the most is layer 0 "
        "head 1 with 30.0%."
    )
    assert fact_link(facts["heads-previous-top"]) == (
        "attention.html#layer=0&head=1&chart=attention-heatmap"
    )


def test_pruning_fact_is_the_longest_prefix_keeping_the_objective():
    curve = [
        {"order": "by importance", "fraction": f, "objective": o}
        for f, o in [(0.0, 2.0), (0.25, 1.9), (0.5, 1.85), (0.75, 1.0), (1.0, 1.9)]
    ] + [{"order": "random", "fraction": 0.9, "objective": 2.0}]
    heads = [
        {"layer": 0, "head": 0, "ablation": 0.1, "kind": "self-attention"},
        {"layer": 0, "head": 1, "ablation": 0.3, "kind": "self-attention"},
        {"layer": 1, "head": 0, "ablation": 0.2, "kind": "cross-attention"},
    ]
    facts = {f["topic"]: f for f in findings({"pruning_curve": curve, "head_importance": heads})}
    # 1.85 >= 0.9 * 2.0 but 1.0 is not: the objective holds up to half the heads (1.0 at the
    # end does not count, the prefix is broken).
    assert PRUNING_KEEP == 0.9
    assert "with up to 50% of the heads removed" in facts["pruning"]["text"]
    assert facts["importance"]["text"] == (
        "Most important heads (objective drop when removed alone): layer 0 head 1: drop 0.3000;"
        " layer 1 head 0 (cross-attention): drop 0.2000; layer 0 head 0: drop 0.1000."
    )


def test_dimension_and_spectrum_facts():
    outliers = [
        {"dim": 7, "flagged": True, "layer_label": "after 2", "value": -812.5, "ratio": 40.0},
        {"dim": 3, "flagged": True, "layer_label": "after 1", "value": 90.0, "ratio": 12.0},
        {"dim": 5, "flagged": False, "layer_label": "after 1", "value": 1.0, "ratio": 1.1},
    ]
    dead = [{"layer": 0, "dim": 1, "max_abs": 0.0}, {"layer": 2, "dim": 9, "max_abs": 0.0}]
    spectra = [
        {"name": "a.q", "block": "0", "alpha": 3.5},
        {"name": "a.k", "block": "1", "alpha": 2.25},
        {"name": "emb", "block": "embeddings", "alpha": None},
    ]
    facts = {
        f["topic"]: f
        for f in findings(
            {
                "activation_outliers": outliers,
                "activation_dead_dimensions": dead,
                "weights_spectra": spectra,
            }
        )
    }
    assert facts["dimensions"]["text"] == (
        "2 massive-activation dimension–layer pairs; the largest is dimension 7 at after 2, peak"
        " -812.5 (40.0× the layer's typical dimension). 2 dead dimension–layer pairs."
    )
    assert facts["dimensions"]["state"] == {"profile-layer": "after 2"}
    assert facts["spectra"]["text"] == (
        "Heaviest-tailed weight spectra (smallest power-law exponent α): a.k (α = 2.25); a.q"
        " (α = 3.50)."
    )
    assert fact_link(facts["spectra"]) == "weights.html#block=1&matrix=a.k&chart=weights-singular"


def test_missing_tables_give_no_facts():
    assert findings({}) == []


def test_nearest_neighbours_by_cosine_never_the_text_itself():
    x = np.array([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]])
    got = nearest_neighbours(x, k=2)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    similarity = unit @ unit.T
    for i in range(len(x)):
        others = [j for j in range(len(x)) if j != i]
        want = sorted(others, key=lambda j: (-similarity[i, j], j))[:2]
        assert got[i].tolist() == want


def test_misclassified_rows_are_the_wrong_predictions_at_that_layer():
    labels = np.array(["a", "b", "a", "b", "a"])
    table = prediction_table(
        {"mean": [np.array(["a", "a"]), np.array(["b", "b"])]}, labels, np.array([2, 3])
    )
    assert table["rows"] == [2, 3] and table["truth"] == ["a", "b"]
    assert misclassified(table, "mean", 0) == [{"row": 3, "truth": "b", "predicted": "a"}]
    assert misclassified(table, "mean", 1) == [{"row": 2, "truth": "a", "predicted": "b"}]
    assert misclassified(table, "cls", 0) == []
