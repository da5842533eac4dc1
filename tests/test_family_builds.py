"""End-to-end builds of a tiny checkpoint of every family: artifacts, pooling, pages in Chromium.

All family cards are built once per test run (`tests/family_support.py`, one `build_cards` call
over a 16-text corpus) and shared with `tests/test_attributions_build.py`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from browser_support import file_url, open_page
from cards import FIXTURES, small_corpus, write_card
from click.testing import CliRunner
from family_support import FAMILY_FIXTURES, PRECISION, TEXTS, family_card

from generator.artifacts import open_artifacts
from generator.build import extract_card
from generator.card import load_card
from generator.cli import main
from generator.errors import CardError


@pytest.mark.parametrize("name", FAMILY_FIXTURES)
def test_artifacts_of_every_family(family_builds, name):
    _, artifacts_root, notes_file = family_builds
    notes = json.loads(notes_file.read_text(encoding="utf-8"))
    artifacts = open_artifacts(artifacts_root / name)
    manifest = artifacts.manifest
    config = manifest["model"]["config"]
    decoder = FAMILY_FIXTURES[name]
    precision = PRECISION.get(name, {"dtype": "float32", "store_dtype": "float32"})
    assert (manifest["dtype"], manifest["store_dtype"]) == tuple(precision.values())
    stored = manifest["arrays"]["showcase/hidden_states"]["dtype"]
    assert stored == precision["store_dtype"]
    tol = 1e-5 if precision["store_dtype"] == "float32" else 3e-2
    assert config["causal"] is decoder
    assert config["heads"] and manifest["model"]["family"] in ("bert", "gpt2", "llama")
    assert artifacts.has("corpus/pooled_mean")
    assert artifacts.has("corpus/pooled_last") is decoder
    assert artifacts.has("corpus/pooled_cls") is not decoder
    attn = artifacts.array("showcase/attentions")  # [example, layer, head, query, key]
    mask = artifacts.array("showcase/attention_mask").astype(bool)
    assert attn.shape[2] == config["n_heads"]
    if decoder:
        above = np.triu(np.ones(attn.shape[-2:], bool), k=1)
        assert np.all(attn[..., above] == 0.0), f"{name}: attention above the diagonal"
        hidden = artifacts.array("showcase/hidden_states")
        last = artifacts.array("corpus/pooled_last")[artifacts.array("showcase/index")]
        lengths = mask.sum(1)
        for example, n in enumerate(lengths):
            np.testing.assert_allclose(last[example], hidden[example, :, n - 1], atol=tol, rtol=tol)
    rows = attn.sum(-1)[mask[:, None, None, :].repeat(attn.shape[1], 1).repeat(attn.shape[2], 2)]
    np.testing.assert_allclose(rows, 1.0, atol=max(tol, 1e-4))
    head = config["heads"][0]
    if head in ("masked-lm", "causal-lm"):
        top = artifacts.array("showcase/top_logits")  # [example, token, rank]
        ids = artifacts.array("showcase/top_token_ids")
        assert top.shape[:2] == mask.shape and ids.shape == top.shape
        assert np.all(np.diff(top, axis=-1) <= 0)  # sorted, largest first
        assert manifest["arrays"]["showcase/top_logits"]["axes"] == ["example", "token", "rank"]
    else:
        logits = artifacts.array("showcase/logits")
        assert logits.shape[0] == mask.shape[0]
    assert any(note.startswith(f"{name}: memory estimate per device") for note in notes)


@pytest.mark.browser
@pytest.mark.parametrize("name", FAMILY_FIXTURES)
def test_pages_of_every_family_render(page, family_builds, name):
    out, _, _ = family_builds
    pages = ("index.html", "attention.html", "weights.html")  # weights: gradients, unembedding
    for filename in pages if FAMILY_FIXTURES[name] else pages[:2]:
        report = open_page(page, file_url(out / name / filename))
        report.assert_clean()
        assert report.charts >= 1


# What each checkpoint's config.json and architecture say about its unembedding.
OUTPUT_EMBEDDINGS = {
    "tiny-gpt2": "tied",
    "tiny-llama": "untied",
    "tiny-mistral": "untied",
    "tiny-qwen2": "tied",
    "tiny-bert-mlm": "tied",
    "tiny-roberta-mlm": "tied",
    "tiny-xlm-roberta-mlm": "tied",
    "tiny-bert-cls": "none",  # a sequence classifier: no head over the vocabulary
    "tiny-distilbert-cls": "none",
    "tiny-electra": "none",  # the discriminator scores tokens, not the vocabulary
}


@pytest.mark.parametrize("name", FAMILY_FIXTURES)
def test_output_embedding_and_gradients_of_every_family(family_builds, name):
    out, artifacts_root, _ = family_builds
    manifest = open_artifacts(artifacts_root / name).manifest
    status = OUTPUT_EMBEDDINGS[name]
    assert manifest["weights"]["embeddings"]["output"]["status"] == status
    html = (out / name / "weights.html").read_text(encoding="utf-8")
    assert f'id="output-embedding-{status}"' in html or status == "untied"
    untied = "weights/output_embedding_sample" in manifest["arrays"]
    assert untied is (status == "untied")
    gradients = manifest["gradients"]
    assert gradients["skipped"] is None and 'id="chart-weights-grad-heatmap"' in html
    assert len(gradients["tensors"]) == len(manifest["parameters"])


def test_cls_pooling_on_a_decoder_is_refused(tmp_path):
    corpus = small_corpus(tmp_path / "corpus", TEXTS[:4])
    card = load_card(family_card(tmp_path, "tiny-gpt2", corpus, label_field=None, pooling="cls"))
    with pytest.raises(CardError, match="pooling 'cls' needs an encoder.*use pooling mean or last"):
        extract_card(card, tmp_path / "artifacts", progress=False)


def test_cli_echoes_the_memory_estimate_and_reads_pickles_only_when_allowed(tmp_path):
    model = Path(shutil.copytree(FIXTURES / "tiny-bert", tmp_path / "pickled"))
    (model / "model.safetensors").unlink()
    shutil.copy(FIXTURES / "tiny-bert-pickle" / "pytorch_model.bin", model)
    corpus = small_corpus(tmp_path / "corpus", TEXTS[:4])
    card = write_card(
        tmp_path / "cards",
        name="pickled",
        model=str(model),
        corpus=str(corpus),
        label_field=None,
        split_field=None,
        max_length=16,
        showcase=2,
    )
    runner = CliRunner()
    artifacts = str(tmp_path / "artifacts")
    refused = runner.invoke(main, ["extract", str(card), "--artifacts", artifacts, "-q"])
    assert refused.exit_code != 0 and "--allow-pickle" in refused.output
    quiet = runner.invoke(
        main, ["extract", str(card), "--artifacts", artifacts, "-q", "--allow-pickle"]
    )
    assert quiet.exit_code == 0, quiet.output
    assert quiet.output == ""
    loud = runner.invoke(
        main, ["extract", str(card), "--artifacts", artifacts, "--allow-pickle", "--force"]
    )
    assert loud.exit_code == 0, loud.output
    lines = [line for line in loud.output.splitlines() if "memory estimate" in line]
    assert len(lines) == 1 and lines[0].startswith("pickled: memory estimate per device")
    verbose = runner.invoke(
        main, ["extract", str(card), "--artifacts", artifacts, "--allow-pickle", "--force", "-v"]
    )
    assert verbose.exit_code == 0, verbose.output
    assert "INFO" in verbose.output  # the log reaches the output ...
    for note in ("memory estimate", "time estimate"):  # ... but each note comes once
        assert sum(note in line for line in verbose.output.splitlines()) == 1, verbose.output
    manifest = open_artifacts(Path(artifacts) / "pickled").manifest
    assert manifest["inputs"]["weights_sha256"] is not None


def test_overview_describes_the_family(family_builds):
    out, _, _ = family_builds
    html = {name: (out / name / "index.html").read_text() for name in FAMILY_FIXTURES}
    assert "2 (grouped-query)" in html["tiny-llama"] and "rotary (default" in html["tiny-llama"]
    assert "4 tokens on 2 of 2 layers" in html["tiny-mistral"]
    assert "4 tokens on 1 of 2 layers" in html["tiny-qwen2"]
    assert "causal (decoder)" in html["tiny-gpt2"] and "causal-lm" in html["tiny-gpt2"]
    assert "bidirectional" in html["tiny-electra"]
    assert "replaced-token-detection" in html["tiny-electra"]
    assert "masked-lm" in html["tiny-roberta-mlm"] and "rotary" not in html["tiny-roberta-mlm"]
