"""End-to-end builds of the tiny XLNet checkpoints: left-padding conventions, pages in Chromium.

XLNet's tokenizer ends every text with `<sep> <cls>` and pads on the left; the pipeline pads on
the right (outputs at real tokens do not depend on the side: tests/test_parity_families.py).
These builds check what follows from the convention: `cls` pooling and the classifier read the
last real token, the special-token mask flags the two final tokens, the permutation-lm
objective, the content-stream note on the pages, and every page renders with no console error.
"""

from __future__ import annotations

import numpy as np
import pytest
from browser_support import file_url, open_page
from cards import FIXTURES, small_corpus
from family_support import TEXTS as FAMILY_TEXTS
from family_support import family_card

from generator.artifacts import open_artifacts
from generator.build import build_cards
from generator.card import load_card
from generator.render.pages import PAGES

# Eight of the family builds' texts (the same list as before they were shared)
TEXTS = [*FAMILY_TEXTS[:7], FAMILY_TEXTS[8]]
LABELS = ["home", "outdoors"] * 4
CARDS = {"tiny-xlnet": "permutation-lm", "tiny-xlnet-cls": "classification"}


@pytest.fixture(scope="module")
def xlnet_builds(tmp_path_factory):
    """Build both XLNet cards once (cls pooling): returns (site folder, artifacts folder)."""
    root = tmp_path_factory.mktemp("xlnet-builds")
    corpus = small_corpus(root / "corpus", TEXTS, LABELS)
    cards = [
        load_card(family_card(root / "cards", name, corpus, max_length=64, pooling="cls"))
        for name in CARDS
    ]
    out, artifacts = root / "site", root / "artifacts"
    build_cards(cards, out, artifacts, strict=True, progress=False)
    return out, artifacts


@pytest.mark.parametrize("name", CARDS)
def test_xlnet_artifacts_follow_its_conventions(xlnet_builds, name):
    from transformers import AutoTokenizer

    _, artifacts_root = xlnet_builds
    artifacts = open_artifacts(artifacts_root / name)
    manifest = artifacts.manifest
    config = manifest["model"]["config"]
    assert manifest["model"]["family"] == "xlnet" and config["cls_last"] is True
    assert config["heads"][0] == CARDS[name] and not config["causal"]
    assert "query stream" in config["attention_note"]
    tokenizer = AutoTokenizer.from_pretrained(FIXTURES / name)
    ids = artifacts.array("showcase/input_ids")
    mask = artifacts.array("showcase/attention_mask").astype(bool)
    special = artifacts.array("showcase/special_mask").astype(bool)
    hidden = artifacts.array("showcase/hidden_states")  # [example, layer, token, d_model]
    pooled = artifacts.array("corpus/pooled_cls")[artifacts.array("showcase/index")]
    for example, n in enumerate(mask.sum(1)):
        assert mask[example, :n].all(), "stored rows are right-padded"
        row = ids[example, :n]
        assert (row[-2], row[-1]) == (tokenizer.sep_token_id, tokenizer.cls_token_id)
        assert special[example, n - 2 : n].all() and not special[example, : n - 2].any()
        assert not special[example, n:].any(), "padding is not a special token"
        np.testing.assert_allclose(pooled[example], hidden[example, :, n - 1], atol=1e-5)
        assert np.abs(pooled[example] - hidden[example, :, 0]).max() > 1e-3
    attn = artifacts.array("showcase/attentions")
    keys_hidden = ~mask[:, None, None, None, :]
    assert np.all(np.where(keys_hidden, attn, 0.0) == 0.0), "padded keys get exactly 0"
    attribution = manifest["attribution"]
    assert attribution["task"] == CARDS[name] and not attribution.get("skipped")
    if name == "tiny-xlnet":
        assert "query stream" in attribution["description"]
        assert artifacts.has("showcase/top_logits")
    else:
        assert artifacts.array("showcase/logits").shape == (len(mask), 3)


def test_xlnet_pages_say_the_query_stream_is_not_shown(xlnet_builds):
    out, _ = xlnet_builds
    for name in CARDS:
        overview = (out / name / "index.html").read_text(encoding="utf-8")
        attention = (out / name / "attention.html").read_text(encoding="utf-8")
        assert "The query stream of pre-training" in overview
        assert 'id="attention-note"' in attention and "is not shown" in attention
        assert "relative positions" in overview
    bert = (FIXTURES.parent.parent / "templates" / "model_attention.html").read_text()
    assert "{% if attention.note %}" in bert  # other families: no note unless they record one


@pytest.mark.browser
@pytest.mark.parametrize("name", CARDS)
def test_every_xlnet_page_renders(page, xlnet_builds, name):
    out, _ = xlnet_builds
    for model_page in PAGES:
        report = open_page(page, file_url(out / name / model_page.filename))
        report.assert_clean()
        assert report.charts >= 1, model_page.filename
