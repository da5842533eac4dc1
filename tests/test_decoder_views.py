"""Parameter gradients and output embeddings end to end: artifacts, tables, pages, Chromium.

The tiny Llama decoder (`decoder_build`: causal-lm, untied head) shows every view; the default
MiniLM build (no LM head, embedding loss) and the family builds (tied GPT-2) the other cases.
Stored numbers are checked against the checkpoint read with safetensors alone (independent of
our loader); the gradient norms themselves against PyTorch in test_gradients.py.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from browser_support import file_url, open_page, selector_problems
from cards import TINY_DECODER
from safetensors.numpy import load_file

from generator.artifacts import open_artifacts

NAME = "tiny-llama"
NEW_FIGURES = (
    "weights-weights-grad-heatmap",
    "weights-weights-grad-ratios",
    "weights-weights-grad-examples",
    "weights-weights-embedding-norms",
    "weights-weights-output-embedding",
    "weights-weights-io-cosine",
)


@pytest.fixture(scope="module")
def decoder(decoder_build):
    """(artifacts, the checkpoint's tensors by name without the `model.` prefix, site folder)."""
    _, out, artifacts_root = decoder_build
    raw = load_file(str(TINY_DECODER / "model.safetensors"))
    tensors = {name.removeprefix("model."): value for name, value in raw.items()}
    return open_artifacts(artifacts_root / NAME), tensors, out / NAME


def test_gradient_arrays_match_the_checkpoint_and_the_sample(decoder):
    artifacts, tensors, _ = decoder
    gradients = artifacts.manifest["gradients"]
    assert gradients["task"] == "causal-lm" and gradients["skipped"] is None
    assert "labels = input_ids" in gradients["loss"]
    index = artifacts.array("gradients/sample_index")
    sample = gradients["sample"]
    assert len(index) == sample["size"] <= sample["budget"] == 32
    assert len(set(index.tolist())) == len(index)
    # causal-lm: every token after the first of each sampled text is a target
    lengths = artifacts.array("corpus/token_lengths")[index]
    assert gradients["n_targets"] == int(np.sum(lengths - 1))
    names = [t["name"] for t in gradients["tensors"]]
    assert sorted(names) == sorted(tensors)  # every checkpoint tensor, by its checkpoint name
    weight_norms = artifacts.array("gradients/weight_norms")
    expected = [np.linalg.norm(tensors[name].astype(np.float64)) for name in names]
    np.testing.assert_allclose(weight_norms, expected, rtol=1e-6)
    grad_norms = artifacts.array("gradients/grad_norms")
    example_norms = artifacts.array("gradients/example_norms")
    assert grad_norms.shape == weight_norms.shape and np.all(np.isfinite(grad_norms))
    assert example_norms.shape == index.shape and np.all(example_norms > 0)
    # the mean of the texts' gradients (weighted by targets) cannot be longer than the longest
    total = float(np.sqrt(np.sum(grad_norms.astype(np.float64) ** 2)))
    assert total <= float(example_norms.max()) * (1 + 1e-5)


def test_gradient_tables_follow_from_the_arrays(decoder):
    artifacts, _, _ = decoder
    folder = artifacts.root / "analyses"
    rows = json.loads((folder / "parameter_gradients.json").read_text())
    grad = artifacts.array("gradients/grad_norms")
    assert [r["grad_norm"] for r in rows] == pytest.approx(grad.tolist(), rel=1e-6)
    for row in rows:
        assert row["ratio"] == pytest.approx(row["grad_norm"] / row["weight_norm"])
        assert row["grad_rms"] == pytest.approx(row["grad_norm"] / math.sqrt(row["count"]))
        assert row["kind"] in ("weight", "bias", "gain")
    assert {r["layer"] for r in rows} == {None, 0, 1}
    (view,) = json.loads((folder / "gradient_views.json").read_text())
    # the cells split the model's gradient: their squared norms add up to the whole's
    cells = sum(c["grad_norm"] ** 2 for c in view["cells"])
    assert cells == pytest.approx(sum(r["grad_norm"] ** 2 for r in rows), rel=1e-9)
    assert len(view["ratios"]) == len(rows) and len(view["examples"]) == len(
        artifacts.array("gradients/sample_index")
    )


def test_untied_output_embedding_matches_the_lm_head(decoder):
    artifacts, tensors, _ = decoder
    output = artifacts.manifest["weights"]["embeddings"]["output"]
    assert output["status"] == "untied" and output["name"] == "lm_head.out.kernel"
    head = tensors["lm_head.weight"].astype(np.float64)  # [vocab, d_model]
    embed = tensors["embed_tokens.weight"].astype(np.float64)
    ids = artifacts.array("weights/embedding_sample_ids")
    np.testing.assert_allclose(artifacts.array("weights/output_embedding_sample"), head[ids])
    norms = np.linalg.norm(head, axis=1)
    np.testing.assert_allclose(artifacts.array("weights/output_embedding_norms"), norms, rtol=1e-6)
    cosine = np.sum(head * embed, axis=1) / norms / np.linalg.norm(embed, axis=1)
    np.testing.assert_allclose(artifacts.array("weights/embedding_io_cosine"), cosine, atol=1e-6)
    assert len(output["neighbours"]) == len(
        artifacts.manifest["weights"]["embeddings"]["neighbours"]
    )
    for row in output["neighbours"]:  # nearest by cosine in the output space, probe excluded
        unit = head / norms[:, None]
        cos = unit @ unit[row["probe_id"]]
        cos[row["probe_id"]] = -np.inf
        assert [n["id"] for n in row["neighbours"]] == np.argsort(-cos)[:10].tolist()


def test_decoder_weights_page_shows_every_new_view(decoder):
    _, _, site = decoder
    html = (site / "weights.html").read_text(encoding="utf-8")
    assert 'id="gradients-heading"' in html and "labels = input_ids" in html
    assert 'id="output-neighbours"' in html and "lm_head.out.kernel" in html
    for stem in NEW_FIGURES:
        assert (site / "figures" / f"{stem}.svg").stat().st_size > 0, stem
        assert f'id="chart-{stem.removeprefix("weights-")}"' in html


@pytest.mark.browser
def test_decoder_weights_page_renders_and_its_selectors_work(page, decoder):
    _, _, site = decoder
    url = file_url(site / "weights.html")
    report = open_page(page, url)
    report.assert_clean()
    assert report.charts >= 15
    problems, checked = selector_problems(page, reopen=lambda: open_page(page, url))
    assert not problems and checked >= 7  # the output-embedding projection among them


def test_default_site_explains_the_missing_output_embedding(default_build):
    _, out, artifacts_root = default_build
    html = (out / "all-minilm-l6-v2" / "weights.html").read_text(encoding="utf-8")
    assert 'id="output-embedding-none"' in html and "no language-model head" in html
    assert 'id="chart-weights-grad-heatmap"' in html and "1 − the cosine similarity" in html
    manifest = open_artifacts(artifacts_root / "all-minilm-l6-v2").manifest
    assert manifest["gradients"]["task"] == "embedding"
    assert manifest["weights"]["embeddings"]["output"]["status"] == "none"


@pytest.mark.browser
def test_checkpoint_select_swaps_the_gradient_charts(page, checkpoint_build):
    _, out, _ = checkpoint_build
    url = file_url(out / "tiny-checkpoints" / "weights.html")
    open_page(page, url).assert_clean()
    options = page.eval_on_selector_all("#select-grad-checkpoint option", "os => os.length")
    assert options == 3  # the card's model, step-1, step-2
    for chart in ("heatmap", "ratios", "examples"):
        element = f"#chart-weights-grad-{chart}"
        before = page.get_attribute(element, "data-selection")
        svg = page.inner_html(element)
        page.select_option("#select-grad-checkpoint", "step-2")
        page.wait_for_function(
            "s => document.querySelector(s).getAttribute('data-selection') === 'step-2'",
            arg=element,
        )
        assert before == "card model" and page.inner_html(element) != svg
        open_page(page, url)
