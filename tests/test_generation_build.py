"""Generation time steps in full builds: the tiny Llama and T5 builds' generation/* arrays and
manifest, their agreement with the other captures (attributions' logit lens, T5's greedy
targets), the attention page's data, the reason an encoder-only page gives, and in headless
Chromium the time-step slider (charts change, state in the URL fragment, figures exported)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from browser_support import file_url, open_page
from test_render import parse

from generator.artifacts import open_artifacts
from generator.render.pages import generation as generation_page

CHARTS = ("generation-attention", "generation-predictions", "generation-lens")


def page_data(out, name: str) -> dict | None:
    scripts = {a.get("id"): text for a, text in parse(out / name / "attention.html").scripts}
    text = scripts.get("generation-data")
    return json.loads(text) if text else None


def test_decoder_build_stores_generation_steps(decoder_build):
    _, _, root = decoder_build
    artifacts = open_artifacts(root / "tiny-llama")
    details = artifacts.manifest["generation"]
    assert details["steps"] == details["requested"] == 16 and details["k"] == 10
    config = artifacts.manifest["model"]["config"]
    length = artifacts.array("generation/length")
    ids, probs = artifacts.array("generation/top_ids"), artifacts.array("generation/top_probs")
    attentions = artifacts.array("generation/attentions")
    mask = artifacts.array("showcase/attention_mask")
    n_examples = len(artifacts.array("showcase/index"))
    width = int(mask.sum(axis=1).max())
    assert attentions.shape == (n_examples, 16, config["n_layers"], config["n_heads"], width + 15)
    assert artifacts.manifest["arrays"]["generation/attentions"]["axes"] == [
        "example",
        "step",
        "layer",
        "head",
        "key",
    ]
    for example in range(n_examples):
        n, steps = int(mask[example].sum()), int(length[example])
        assert 1 <= steps <= 16
        np.testing.assert_array_equal(
            artifacts.array("generation/token_ids")[example, :steps], ids[example, :steps, 0]
        )
        assert np.all(np.diff(probs[example, :steps], axis=-1) <= 0)  # ranked
        for step in range(steps):  # each row sums to 1 over the prefix and is 0 beyond it
            rows = attentions[example, step]
            np.testing.assert_allclose(rows[..., : n + step].sum(axis=-1), 1.0, atol=1e-5)
            assert not rows[..., n + step :].any()


def test_step_zero_lens_equals_the_attributions_lens_at_the_last_prompt_token(decoder_build):
    """Step 0 feeds the prompt's last token: its lens is the showcase lens at that position."""
    _, _, root = decoder_build
    artifacts = open_artifacts(root / "tiny-llama")
    last = artifacts.array("showcase/attention_mask").sum(axis=1) - 1
    examples = np.arange(len(last))
    lens_ids = artifacts.array("lens/top_ids")[examples, :, last]  # [example, layer, k]
    lens_probs = artifacts.array("lens/top_probs")[examples, :, last]
    np.testing.assert_allclose(
        artifacts.array("generation/lens_top_probs")[:, 0], lens_probs, atol=1e-5
    )
    np.testing.assert_array_equal(artifacts.array("generation/lens_top_ids")[:, 0], lens_ids)


def test_t5_generation_continues_like_its_greedy_targets(t5_build):
    """The T5 card's decoder targets are the model's greedy output: the cached steps give the
    same tokens, and the cross-attention rows sum to 1 over the encoder tokens."""
    _, _, root = t5_build
    artifacts = open_artifacts(root / "tiny-t5")
    assert artifacts.manifest["generation"]["start"] == "decoder-start-token"
    targets = artifacts.array("showcase/target_ids")
    target_mask = artifacts.array("showcase/decoder_attention_mask")
    tokens, length = artifacts.array("generation/token_ids"), artifacts.array("generation/length")
    cross = artifacts.array("generation/cross_attentions")
    enc = artifacts.array("showcase/attention_mask").sum(axis=1)
    for example in range(len(targets)):
        n = min(int(target_mask[example].sum()), int(length[example]))
        np.testing.assert_array_equal(tokens[example, :n], targets[example, :n])
        rows = cross[example, : int(length[example])]
        np.testing.assert_allclose(rows[..., : enc[example]].sum(axis=-1), 1.0, atol=1e-5)


def test_page_data_matches_the_artifacts(decoder_build):
    _, out, root = decoder_build
    artifacts = open_artifacts(root / "tiny-llama")
    data = page_data(out, "tiny-llama")
    length = artifacts.array("generation/length")
    attentions = artifacts.array("generation/attentions")
    shape = (data["n_layers"], data["n_heads"])
    for example, item in enumerate(data["examples"]):
        assert len(item["generated"]) == length[example]
        assert item["generated"] == [
            str(t) for t in artifacts.array("generation/tokens")[example, : length[example]]
        ]
        step = int(length[example]) - 1
        rows = generation_page.attention_rows(item, "self", shape, step, layer=1, head=1)
        assert len(rows) == len(item["base"]) + step and rows[-1]["new"] == "fed token"
        stored = attentions[example, step, 1, 1, : len(rows)]
        np.testing.assert_allclose([r["weight"] for r in rows], stored, atol=5e-4 + 1e-7)


def test_encoder_only_page_says_why_there_are_no_time_steps(tiny_build):
    _, out, _ = tiny_build
    html = (out / "tiny-bert" / "attention.html").read_text(encoding="utf-8")
    assert page_data(out, "tiny-bert") is None
    assert 'id="generation-reason"' in html and "encoder-only model" in html
    assert not (out / "tiny-bert" / "figures" / "attention-generation-lens.svg").exists()


STATE_JS = (
    "() => {"
    " const out = {hash: location.hash,"
    " step: document.getElementById('step-text').textContent};"
    f" for (const id of {json.dumps(list(CHARTS))})"
    " { const element = document.getElementById('chart-' + id);"
    " out[id] = {selection: element.getAttribute('data-selection'),"
    " rows: window.Atlas.views['chart-' + id].data('rows')}; }"
    " return out; }"
)


@pytest.mark.browser
def test_time_step_slider_changes_the_charts_and_the_fragment(page, decoder_build):
    _, out, _ = decoder_build
    data = page_data(out, "tiny-llama")
    item = data["examples"][0]
    shape = (data["n_layers"], data["n_heads"])
    for chart_id in CHARTS:  # exported as figures
        for fmt in ("svg", "png"):
            assert (out / "tiny-llama" / "figures" / f"attention-{chart_id}.{fmt}").stat().st_size
    url = file_url(out / "tiny-llama" / "attention.html")
    open_page(page, url).assert_clean()
    first = page.evaluate(STATE_JS)
    assert first["generation-attention"]["rows"] == generation_page.attention_rows(
        item, "self", shape, 0
    )
    step = len(item["generated"]) - 1
    page.fill("#select-step", str(step))
    page.dispatch_event("#select-step", "input")
    page.wait_for_function(
        "s => document.getElementById('chart-generation-lens').getAttribute('data-selection') !== s",
        arg=first["generation-lens"]["selection"],
    )
    later = page.evaluate(STATE_JS)
    assert f"step={step}" in later["hash"] and f"step {step} of" in later["step"]
    assert later["generation-attention"]["rows"] == generation_page.attention_rows(
        item, "self", shape, step
    )
    assert later["generation-predictions"]["rows"] == generation_page.prediction_rows(item, step)
    assert later["generation-lens"]["rows"] == generation_page.lens_rows(item, step)
    assert later["generation-lens"]["rows"] != first["generation-lens"]["rows"]
    # The layer and head selectors of the page drive the step's attention row.
    page.select_option("#select-head", "1")
    page.wait_for_function(
        "() => document.getElementById('chart-generation-attention')"
        ".getAttribute('data-selection').endsWith('head 1')"
    )
    rows = page.evaluate(STATE_JS)["generation-attention"]["rows"]
    assert rows == generation_page.attention_rows(item, "self", shape, step, layer=0, head=1)
    # The fragment restores the step.
    page.goto("about:blank")
    open_page(page, f"{url}#step=2&head=1").assert_clean()
    restored = page.evaluate(STATE_JS)
    assert "step 2 of" in restored["step"]
    assert restored["generation-attention"]["rows"] == generation_page.attention_rows(
        item, "self", shape, 2, head=1
    )


@pytest.mark.browser
def test_t5_time_steps_render_with_cross_attention(page, t5_build):
    _, out, _ = t5_build
    data = page_data(out, "tiny-t5")
    assert data["kinds"] == ["self", "cross"]
    open_page(page, file_url(out / "tiny-t5" / "attention.html")).assert_clean()
    rows = page.evaluate("() => window.Atlas.views['chart-generation-cross'].data('rows')")
    shape = (data["n_layers"], data["n_heads"])
    assert rows == generation_page.attention_rows(data["examples"][0], "cross", shape, 0)
    assert (out / "tiny-t5" / "figures" / "attention-generation-cross.svg").exists()
