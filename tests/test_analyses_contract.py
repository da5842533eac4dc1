"""The card's `analyses` restricts what is extracted, analysed and rendered; `pooling` leads.

Two tiny BERT builds: one that asks only for the heads analysis, one that asks for the
representations with `pooling: cls`.
"""

from __future__ import annotations

import json

import pytest
from cards import write_card

from generator.analysis_names import ALWAYS, ANALYSES
from generator.analyze.run import ANALYSES as ANALYSIS_FUNCTIONS
from generator.artifacts import open_artifacts
from generator.build import build_cards
from generator.card import load_card
from generator.errors import CardError
from generator.extract.activation_stats import REDUCER_SPECS
from generator.render.pages import PAGES

SKIPPED_PAGES = ("weights.html", "representations.html", "activations.html", "attributions.html")


def test_names_are_the_analyses_that_run_in_order():
    assert list(ANALYSIS_FUNCTIONS) == list(ANALYSES)
    assert {page.analysis for page in PAGES} - {None} <= set(ANALYSES)


def test_unknown_name_lists_the_valid_ones(tmp_path):
    with pytest.raises(CardError) as error:
        load_card(write_card(tmp_path, analyses=["heads", "probes"]))
    message = str(error.value)
    assert "'probes', which is not an analysis" in message
    assert "valid: " + ", ".join(ANALYSES) in message


def test_analyses_and_pooling_are_in_the_cache_key(tmp_path):
    every = load_card(write_card(tmp_path / "a")).extraction_settings()
    heads = load_card(write_card(tmp_path / "b", analyses=["heads"])).extraction_settings()
    cls = load_card(write_card(tmp_path / "c", pooling="cls")).extraction_settings()
    assert every["analyses"] == list(ANALYSES)
    assert heads["analyses"] == [*ALWAYS, "heads"]
    assert every != heads and every != cls
    assert cls["pooling"] == "cls" and every["pooling"] == "mean"


@pytest.fixture(scope="module")
def heads_only(tmp_path_factory):
    root = tmp_path_factory.mktemp("heads-only")
    card = load_card(write_card(root / "cards", name="heads-only", analyses=["heads"]))
    build_cards([card], root / "site", root / "artifacts", strict=False, progress=False)
    return root


def test_skipped_analyses_are_not_extracted(heads_only):
    artifacts = open_artifacts(heads_only / "artifacts" / "heads-only")
    assert artifacts.manifest["analyses"] == [*ALWAYS, "heads"]
    assert artifacts.has("corpus/head_metrics")
    arrays = artifacts.manifest["arrays"]
    assert not [a for a in arrays if a.startswith(("corpus/pooled_", "attribution", "gradients"))]
    assert "gradients" not in artifacts.manifest  # a section of the weights page, left out
    assert not [s["name"] for s in REDUCER_SPECS if artifacts.has(f"corpus/{s['name']}")]
    assert not artifacts.has("corpus/unit_token_sum") and not artifacts.has("neurons/max")


def test_skipped_analyses_have_no_tables(heads_only):
    index = json.loads(
        (heads_only / "artifacts" / "heads-only" / "analyses" / "index.json").read_text()
    )
    tables = index["tables"]
    assert "head_metrics" in tables and "parameter_counts" in tables
    prefixes = (
        "weights_",
        "parameter_gradients",
        "gradient_",
        "representation_",
        "activation_",
        "neuron_",
        "attribution_",
        "head_importance",
    )
    assert not [t for t in tables if t.startswith(prefixes)]


def test_skipped_pages_are_neither_written_nor_linked(heads_only):
    folder = heads_only / "site" / "heads-only"
    assert (folder / "index.html").is_file() and (folder / "heads.html").is_file()
    assert (folder / "attention.html").is_file()
    info = json.loads((folder / "build-info.json").read_text())
    assert info["pages"] == ["index.html", "attention.html", "heads.html"]
    for name in SKIPPED_PAGES:
        assert not (folder / name).exists()
        for page in ("index.html", "attention.html", "heads.html"):
            assert f'href="{name}' not in (folder / page).read_text(), (page, name)
        assert f"heads-only/{name}" not in (heads_only / "site" / "index.html").read_text()
        assert name not in (folder / "card-snippet.md").read_text()


def test_card_pooling_leads_the_representations(tmp_path):
    card = load_card(
        write_card(
            tmp_path / "cards", name="cls-first", analyses=["representations"], pooling="cls"
        )
    )
    build_cards([card], tmp_path / "site", tmp_path / "artifacts", strict=False, progress=False)
    summary = json.loads(
        (
            tmp_path / "artifacts" / "cls-first" / "analyses" / "representation_summary.json"
        ).read_text()
    )
    assert summary["poolings"][0] == "cls" and "mean" in summary["poolings"]
    page = (tmp_path / "site" / "cls-first" / "representations.html").read_text()
    assert (
        "heads.html" not in page
        and (tmp_path / "site" / "cls-first" / "representations.html").is_file()
    )
