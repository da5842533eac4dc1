"""Weight tables of the analyze stage: projections, groupings and the tiny build's tables."""

import numpy as np
import pytest

from generator.analyze.weights import (
    counts_by_block,
    counts_by_component,
    depth_label,
    depth_order,
    gram_projection,
    group_order,
    shared_blocks,
    short_name,
    spectrum_points,
    tensor_table,
    unit_gram,
    with_applications,
)
from generator.artifacts import open_artifacts


def test_gram_projection_equals_pca_of_the_vectors():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(30, 50)) * np.linspace(3, 0.1, 50)
    scores, explained = gram_projection(vectors @ vectors.T)
    centred = vectors - vectors.mean(0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    expected = u[:, :2] * s[:2]
    for k in range(2):
        sign = np.sign(scores[:, k] @ expected[:, k])
        np.testing.assert_allclose(scores[:, k], sign * expected[:, k], atol=1e-8)
    np.testing.assert_allclose(explained, s[:2] ** 2 / np.sum(s**2), rtol=1e-8)


def test_unit_gram_is_the_cosine_matrix():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(5, 7)) * np.array([[1], [10], [0.1], [3], [2]])
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    np.testing.assert_allclose(unit_gram(v @ v.T), unit @ unit.T, atol=1e-12)


def test_depth_labels_and_order_place_embeddings_first_and_heads_last():
    rows = [
        {"layer": None, "component": "embeddings"},
        {"layer": 0, "stack": ""},
        {"layer": 1, "stack": "decoder"},
        {"layer": None, "component": "head"},
    ]
    assert [depth_label(r) for r in rows] == ["embeddings", "0", "dec 1", "head"]
    orders = [depth_order(r, n_layers=4) for r in rows]
    assert orders == sorted(orders) and orders[2] == 5
    assert short_name("encoder.layer.3.attention.output.LayerNorm.scale") == (
        "attention.output.LayerNorm"
    )
    assert group_order("query:weight") < group_order("query:bias") < group_order("key:weight")


def test_shared_blocks_are_labelled_with_the_layers_that_apply_them():
    """ALBERT: 3 steps over 2 groups of 2 blocks = 6 layers over 4 shared blocks."""
    from generator.analyze.parameters import (
        counts_by_component as inventory_counts,
    )
    from generator.analyze.parameters import (
        layer_span,
        shared_applications,
    )

    config = {"inner_group_num": 2, "layer_blocks": [0, 1, 0, 1, 2, 3]}
    shared = shared_applications(config)
    assert shared == {(0, 0): [0, 2], (0, 1): [1, 3], (1, 0): [4], (1, 1): [5]}
    assert shared_applications({"n_layers": 2}) == {}
    assert layer_span(list(range(12))) == "0–11" and layer_span([0, 2]) == "0, 2"
    prefix = "encoder.albert_layer_groups.0.albert_layers.1."
    row = {"name": prefix + "ffn.kernel", "count": 10, "shared": [0, 1], "layer": None}
    section = {"tensors": [row], "matrices": [], "heads": [], "head_vectors": {}}
    annotated = with_applications(section, shared)
    assert annotated["tensors"][0]["applications"] == [1, 3] and "applications" not in row
    assert with_applications(section, {}) is section
    assert depth_label(annotated["tensors"][0]) == "shared · layers 1, 3"
    assert depth_order(annotated["tensors"][0], n_layers=6) == 1
    assert short_name(prefix + "attention.LayerNorm.scale") == "attention.LayerNorm"
    assert shared_blocks(annotated) == [
        {"block": "shared · layers 1, 3", "group": 0, "index": 1, "layers": [1, 3], "count": 10}
    ]
    inventory = [{"name": prefix + "ffn.kernel", "shape": [2, 5], "count": 10}]
    assert inventory_counts(inventory, shared) == [
        {"block": "shared · layers 1, 3", "kind": "mlp", "count": 10, "order": 2}
    ]


def test_spectrum_points_are_capped_at_log_spaced_ranks():
    sigma = np.linspace(10, 1, 1000)
    points = spectrum_points(sigma, limit=50)
    ranks = [r for r, _ in points]
    assert ranks[0] == 1 and ranks[-1] == 1000 and len(ranks) <= 50
    assert all(s == pytest.approx(sigma[r - 1]) for r, s in points)
    assert len(spectrum_points(np.array([3.0, 2.0, np.nan]))) == 2


def test_tiny_build_weight_tables(tiny_build):
    _, _, artifacts_root = tiny_build
    artifacts = open_artifacts(artifacts_root / "tiny-bert")
    from generator.analyze.run import analyze

    tables = analyze(artifacts)
    inventory = artifacts.manifest["parameters"]
    table = tables["weights_tensors"]
    assert sorted(r["name"] for r in table) == sorted(r["name"] for r in inventory)
    assert sum(r["share"] for r in table) == pytest.approx(1.0)
    assert sum(r["count"] for r in tables["weights_by_component"]) == sum(
        r["count"] for r in inventory
    )
    assert sum(r["count"] for r in tables["weights_by_block"]) == sum(r["count"] for r in inventory)
    for group in tables["weights_histograms"]:
        assert len(group["edges"]) == 65
        for series in group["series"]:
            assert sum(series["fractions"]) == pytest.approx(1.0)
    n_layers = artifacts.manifest["model"]["config"]["n_layers"]
    n_heads = artifacts.manifest["model"]["config"]["n_heads"]
    assert len(tables["weights_head_projection"]) == 4 * n_layers * n_heads
    embeddings = tables["weights_embeddings"]
    vocab = artifacts.manifest["model"]["config"]["vocab_size"]
    assert len(embeddings["points"]) == min(vocab, 2000)
    assert embeddings["neighbours"] and embeddings["probes_from_corpus"]
    corpus_tokens = set(artifacts.array("corpus/vocab_tokens").tolist())
    assert all(row["probe"] in corpus_tokens for row in embeddings["neighbours"])


def test_counts_by_component_and_block_preserve_totals():
    section = {
        "tensors": [
            {"name": "a", "shape": [2, 5], "count": 10, "component": "attention", "role": "query", "leaf": "weight",
             "layer": 0, "stack": "", "frobenius": 1.0, "mean": 0.0, "std": 1.0, "max_abs": 1.0,
             "near_zero": 0.0},
            {"name": "b", "shape": [30], "count": 30, "component": "embeddings", "role": "token_embedding",
             "leaf": "weight", "layer": None, "stack": "", "frobenius": 1.0, "mean": 0.0,
             "std": 1.0, "max_abs": 1.0, "near_zero": 0.0},
        ]
    }  # fmt: skip
    table = tensor_table(section, n_layers=1)
    assert [r["component"] for r in counts_by_component(table)] == ["embeddings", "attention"]
    blocks = counts_by_block(table)
    assert [r["block"] for r in blocks] == ["embeddings", "0"]
    assert sum(r["count"] for r in blocks) == 40
