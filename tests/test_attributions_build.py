"""Attributions on built artifacts: IG completeness, head importance, logit lens, page."""

import numpy as np
import pytest
from browser_support import file_url, open_page

from generator.artifacts import open_artifacts

# The shared builds each card's attributions are checked on, by task: the family builds (a
# 16-text corpus, tests/family_support.py) and the tiny-BERT build (the embedding task).
FAMILY_MODELS = {
    "tiny-bert-mlm": "masked-lm",
    "tiny-gpt2": "causal-lm",
    "tiny-llama": "causal-lm",
    "tiny-bert-cls": "classification",
}
EMBEDDING_MODEL = "tiny-bert"


def check_attributions(artifacts, task):
    manifest = artifacts.manifest
    assert manifest["attribution"]["task"] == task
    errors = np.asarray(artifacts.array("attribution/ig_error"))
    assert np.median(errors) <= 0.02, f"median IG completeness error {np.median(errors):.4f}"
    ig = np.asarray(artifacts.array("attribution/integrated_gradients"), np.float64)
    gap = np.asarray(artifacts.array("attribution/objective"), np.float64) - np.asarray(
        artifacts.array("attribution/baseline_objective"), np.float64
    )
    np.testing.assert_allclose(ig.sum(axis=1), gap, rtol=0.02, atol=1e-4)
    ablation = np.asarray(artifacts.array("heads/ablation"))
    config = manifest["model"]["config"]
    rows = config["n_layers"] + 2 * config.get("n_decoder_layers", 0)
    assert ablation.shape == (rows, config["n_heads"])
    assert sum(s["rows"] for s in manifest["attribution"]["heads"]["sets"]) == rows
    curve = np.asarray(artifacts.array("heads/pruning_by_importance"))
    assert curve[0] == pytest.approx(
        manifest["attribution"]["heads"]["objective"], rel=1e-4, abs=1e-5
    )
    per_text = np.asarray(artifacts.array("heads/ablation_per_text"))
    np.testing.assert_allclose(per_text.mean(axis=0), ablation, rtol=1e-5, atol=1e-7)
    heads = manifest["attribution"]["heads"]
    assert heads["sample_size"] == len(per_text) == len(artifacts.array("heads/sample_index"))
    assert heads["sample_source"] == "default"  # small models keep the whole sample
    # curves are NaN exactly past the fraction where they collapsed (none do here)
    assert np.isfinite(curve).all() == (heads["collapsed_at"] is None)
    if task == "embedding":
        check_output_fidelity(artifacts, curve)


def check_output_fidelity(artifacts, curve):
    """The embedding task's head objective is 1 with every head and removing heads lowers it."""
    assert curve[0] == pytest.approx(1.0, abs=1e-5)
    assert artifacts.manifest["attribution"]["heads"]["objective_without_heads"] <= 1.0 + 1e-6
    assert np.all(curve <= curve[0] + 1e-6), f"pruning raised the objective: {curve}"
    assert np.all(np.asarray(artifacts.array("heads/pruning_random")) <= curve[0] + 1e-6)
    assert np.all(np.asarray(artifacts.array("heads/ablation_per_text")) >= -1e-5)
    assert np.all(np.asarray(artifacts.array("heads/gradient")) >= 0)


@pytest.mark.parametrize("name", [*sorted(FAMILY_MODELS), EMBEDDING_MODEL])
def test_family_attributions_are_complete(family_builds, tiny_build, name):
    if name == EMBEDDING_MODEL:
        artifacts, task = open_artifacts(tiny_build[2] / name), "embedding"
    else:
        artifacts, task = open_artifacts(family_builds[1] / name), FAMILY_MODELS[name]
    check_attributions(artifacts, task)
    lens = artifacts.has("lens/final_rank")
    assert lens == (task in ("masked-lm", "causal-lm"))
    if lens:
        rank = np.asarray(artifacts.array("lens/final_rank"))
        assert np.all(rank[:, -1] == 0)  # the last layer's top token is the final prediction


def test_default_site_attributions(default_build):
    _, site, artifacts_root = default_build
    artifacts = open_artifacts(artifacts_root / "all-minilm-l6-v2")
    check_attributions(artifacts, "embedding")
    heads = artifacts.manifest["attribution"]["heads"]
    assert heads["layerwise"] is True  # MiniLM is past LAYERWISE_FLOPS
    page = (site / "all-minilm-l6-v2" / "attributions.html").read_text(encoding="utf-8")
    assert f"Measured on {heads['sample_size']} corpus texts" in page
    assert "median standard error of a head" in page
    assert "With every head removed the mean objective is" in page


@pytest.mark.browser
@pytest.mark.parametrize("name", ["tiny-bert-mlm", "tiny-gpt2"])
def test_attributions_page_renders_and_selectors_work(family_builds, page, name):
    url = file_url(family_builds[0] / name / "attributions.html")
    open_page(page, url).assert_clean()
    chart = "#chart-token-scores"
    before = page.inner_html(chart)
    page.select_option("#select-attr-method", "grad_norm")
    page.wait_for_function(
        "s => document.querySelector('#chart-token-scores').getAttribute('data-selection') === s",
        arg="0/grad_norm",
    )
    assert page.inner_html(chart) != before
    page.select_option("#select-attr-example", "1")
    page.wait_for_function(
        "() => document.querySelector('#chart-token-scores').getAttribute('data-selection') === '1/grad_norm'"
    )
    assert page.locator("#attr-table tbody tr").count() > 2
