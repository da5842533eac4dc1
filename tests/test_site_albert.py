"""The tiny ALBERT site: shared weights shown once, everything else per layer (application).

tiny-albert-pretraining runs 3 steps over 2 groups of 2 shared blocks: 6 layers (block
applications) over 4 sets of block weights (layers 0 and 2 apply block 0, 1 and 3 block 1, 4
and 5 blocks 2 and 3). Every page renders in Chromium with no console error.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from browser_support import file_url, open_page, serve_directory
from cards import TINY_ALBERT
from test_render import parse
from test_site_browser import MODEL_PAGES, check_every_selector

from generator.artifacts import open_artifacts
from generator.models import read_safetensors

NAME = "tiny-albert"
N_LAYERS, N_BLOCKS, N_HEADS = 6, 4, 4
TORCH_PARAMETERS = 46_194  # sum(p.numel()) of AlbertForPreTraining.from_pretrained(fixture)


def test_manifest_records_the_sharing(albert_build):
    card, _, root = albert_build
    manifest = open_artifacts(root / NAME).manifest
    config = manifest["model"]["config"]
    assert manifest["model"]["family"] == "albert"
    assert config["n_layers"] == N_LAYERS and config["embedding_size"] == 16
    assert config["layer_groups"] == [0, 0, 0, 0, 1, 1]
    assert config["layer_blocks"] == [0, 1, 0, 1, 2, 3]
    assert config["heads"] == ["masked-lm", "sentence-order"]


def test_parameter_total_is_the_checkpoints(albert_build):
    _, _, root = albert_build
    manifest = open_artifacts(root / NAME).manifest
    total = sum(row["count"] for row in manifest["parameters"])
    stored = read_safetensors(TINY_ALBERT / "model.safetensors")  # no tied copies stored
    assert total == sum(a.size for a in stored.values()) == TORCH_PARAMETERS
    shared = [row for row in manifest["parameters"] if "albert_layer_groups" in row["name"]]
    assert len({row["name"].split(".albert_layers.")[0] for row in shared}) == 2  # groups, once
    assert len(shared) == N_BLOCKS * 16  # 16 tensors per block, not per layer


def test_probes_heads_and_attributions_are_per_application(albert_build):
    _, _, root = albert_build
    artifacts = open_artifacts(root / NAME)
    arrays = artifacts.manifest["arrays"]
    attn = artifacts.array("showcase/attentions")  # [example, layer, head, query, key]
    assert attn.shape[1:3] == (N_LAYERS, N_HEADS)
    assert arrays["showcase/hidden_states"]["shape"][1] == N_LAYERS + 1
    for name in ("showcase/queries", "showcase/keys", "showcase/values"):
        assert arrays[name]["shape"][1] == N_LAYERS, name
    assert arrays["heads/ablation"]["shape"] == [N_LAYERS, N_HEADS]
    assert arrays["heads/gradient"]["shape"] == [N_LAYERS, N_HEADS]
    assert arrays["corpus/head_metrics"]["shape"][1:3] == [N_LAYERS, N_HEADS]
    # layers 0 and 2 apply the same weights to different inputs: different attention
    mask = artifacts.array("showcase/attention_mask").astype(bool)
    n = int(mask[0].sum())
    assert not np.allclose(attn[0, 0, :, :n, :n], attn[0, 2, :, :n, :n], atol=1e-4)
    ablation = artifacts.array("heads/ablation")
    assert not np.allclose(ablation[0], ablation[2])  # head h masked in one application only
    assert artifacts.has("attribution/integrated_gradients")


def test_weights_page_shows_each_shared_block_once(albert_build):
    _, out, root = albert_build
    tables = {
        name: json.loads((root / NAME / "analyses" / f"{name}.json").read_text())
        for name in ("weights_shared_blocks", "weights_by_block", "weights_tensors")
    }
    blocks = tables["weights_shared_blocks"]
    assert [b["layers"] for b in blocks] == [[0, 2], [1, 3], [4], [5]]
    assert [b["block"] for b in blocks][:2] == ["shared · layers 0, 2", "shared · layers 1, 3"]
    labels = {row["block"] for row in tables["weights_by_block"]}
    assert {b["block"] for b in blocks} <= labels
    assert not labels & {str(layer) for layer in range(N_LAYERS)}  # no per-layer copies
    assert sum(row["count"] for row in tables["weights_tensors"]) == TORCH_PARAMETERS
    html = (out / NAME / "weights.html").read_text()
    assert 'id="shared-blocks"' in html and "4 blocks of weights" in html
    assert "used by 2\n  layers" in html
    scripts = {a.get("id"): text for a, text in parse(out / NAME / "weights.html").scripts}
    data = json.loads(scripts["weights-data"])
    assert {b["block"] for b in blocks} <= set(data["matrices"])  # the matrix selector's blocks
    assert not set(data["matrices"]) & {str(layer) for layer in range(N_LAYERS)}


def test_overview_describes_the_sharing(albert_build):
    _, out, _ = albert_build
    text = (out / NAME / "index.html").read_text()
    assert "6 layers apply 4 shared blocks of weights (2 groups × 2)" in text
    assert "16 (projected to d_model)" in text


@pytest.mark.browser
def test_albert_pages_render_from_file_and_http(page, albert_build):
    _, out, _ = albert_build
    with serve_directory(out) as base_url:
        for filename in MODEL_PAGES:
            for url in (file_url(out / NAME / filename), f"{base_url}/{NAME}/{filename}"):
                report = open_page(page, url)
                report.assert_clean()
                assert report.charts >= 1, url


@pytest.mark.browser
def test_albert_selectors_change_charts(page, albert_build):
    _, out, _ = albert_build
    assert check_every_selector(page, out, NAME) >= 3


@pytest.fixture(scope="module")
def albert_cls_build(tmp_path_factory):
    """Build tiny-albert-cls (classifier on the pooler) with the classification task."""
    from cards import write_albert_card
    from conftest import build_card_once

    root = tmp_path_factory.mktemp("albert-cls")
    card = write_albert_card(
        root / "cards",
        name="tiny-albert-cls",
        model=str(TINY_ALBERT.parent / "tiny-albert-cls"),
        task="classification",
        pooling="cls",
    )
    return build_card_once(root, card)


def test_classifier_checkpoint_builds_with_the_classification_task(albert_cls_build):
    _, out, root = albert_cls_build
    artifacts = open_artifacts(root / "tiny-albert-cls")
    config = artifacts.manifest["model"]["config"]
    assert config["heads"] == ["classification"] and config["with_pooler"]
    assert config["labels"] == ["negative", "neutral", "positive"]
    assert artifacts.array("showcase/logits").shape[1:] == (3,)
    assert artifacts.manifest["arrays"]["heads/ablation"]["shape"] == [4, N_HEADS]
    assert artifacts.has("corpus/pooled_cls") and artifacts.has("attribution/integrated_gradients")
    for filename in MODEL_PAGES:
        assert (out / "tiny-albert-cls" / filename).is_file()


def test_extract_cli_takes_a_random_albert_model(tmp_path):
    """The issue's first try: `modelatlas extract` on a saved random-init AlbertModel."""
    from cards import write_card
    from click.testing import CliRunner

    from generator.cli import main

    card = write_card(
        tmp_path / "cards",
        name="albert-model",
        model=str(TINY_ALBERT.parent / "tiny-albert"),
        corpus=None,
        label_field=None,
        split_field=None,
    )
    result = CliRunner().invoke(main, ["extract", str(card), "--artifacts", str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    manifest = open_artifacts(tmp_path / "albert-model").manifest
    assert manifest["model"]["model_type"] == "albert"
    assert manifest["model"]["config"]["heads"] == [] and manifest["model"]["config"]["with_pooler"]
    shared = [row for row in manifest["weights"]["tensors"] if "shared" in row]
    assert {tuple(row["shared"]) for row in shared} == {(0, 0), (1, 0)}
    assert all(row["layer"] is None for row in shared)
