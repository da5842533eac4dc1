"""The tiny T5 site: overview and the attention page with its three attention kinds.

Page data is checked against the artifacts; in headless Chromium the "which attention" selector
switches between encoder self-, decoder self- and cross-attention and the heatmap follows.
"""

from __future__ import annotations

import base64

import numpy as np
import pytest
from attention_support import attention_data
from browser_support import file_url, open_page, serve_directory
from scores_support import check_score_histogram, check_scores_follow_weights

from generator.artifacts import open_artifacts


def page_data(out):
    return attention_data(out / "tiny-t5")


def test_attention_data_holds_three_kinds_matching_artifacts(t5_build):
    _, out, root = t5_build
    data = page_data(out)
    artifacts = open_artifacts(root / "tiny-t5")
    config = artifacts.manifest["model"]["config"]
    kinds = {kind["id"]: kind for kind in data["kinds"]}
    assert list(kinds) == ["encoder", "decoder", "cross"]
    assert (kinds["cross"]["query"], kinds["cross"]["key"]) == ("decoder", "input")
    assert kinds["encoder"]["n_layers"] == config["n_layers"]
    assert kinds["cross"]["n_layers"] == config["n_decoder_layers"] != config["n_layers"]
    enc_mask = artifacts.array("showcase/attention_mask")
    dec_mask = artifacts.array("showcase/decoder_attention_mask")
    for example, item in enumerate(data["examples"]):
        n = {"input": int(enc_mask[example].sum()), "decoder": int(dec_mask[example].sum())}
        assert len(item["tokens"]["input"]) == n["input"]
        assert item["tokens"]["decoder"] == [
            str(t) for t in artifacts.array("showcase/decoder_tokens")[example, : n["decoder"]]
        ]
        for kind in kinds.values():
            nq, nk = n[kind["query"]], n[kind["key"]]
            packed = np.frombuffer(base64.b64decode(item["weights"][kind["id"]]), dtype="<u2")
            weights = packed.reshape(kind["n_layers"], data["n_heads"], nq, nk) / data["scale"]
            stored = artifacts.array(f"showcase/{kind['id']}_attentions")[example, :, :, :nq, :nk]
            np.testing.assert_allclose(weights, stored, atol=0.5 / data["scale"] + 1e-7)


def test_overview_names_both_stacks(t5_build):
    _, out, _ = t5_build
    text = (out / "tiny-t5" / "index.html").read_text()
    assert "decoder layers" in text and "relative positions" in text
    assert "decoder layer 2" in text  # parameter chart data: decoder blocks apart


def test_encoder_only_page_has_no_kind_selector(tiny_build):
    _, out, _ = tiny_build
    assert 'id="select-kind"' not in (out / "tiny-bert" / "attention.html").read_text()


# --- real browser -------------------------------------------------------------------------------


def chart_state(page):
    return page.evaluate(
        """() => {
            const el = document.getElementById('chart-attention-heatmap');
            const cells = window.Atlas.views[el.id].data('cells');
            const fills = Array.from(el.querySelectorAll('path, rect')).map(n => n.getAttribute('fill'));
            return {selection: el.getAttribute('data-selection'), fills: fills.join('|'),
                    rows: Array.from(new Set(cells.map(c => c.query))),
                    columns: Array.from(new Set(cells.map(c => c.key))),
                    layers: document.getElementById('select-layer').options.length,
                    kindText: document.getElementById('kind-text').textContent};
        }"""
    )


def select_and_wait(page, select_id, value):
    before = chart_state(page)
    page.select_option(f"#{select_id}", value)
    page.wait_for_function(
        "s => document.getElementById('chart-attention-heatmap')"
        ".getAttribute('data-selection') !== s",
        arg=before["selection"],
    )
    after = chart_state(page)
    assert after["fills"] != before["fills"], f"changing {select_id} did not change the heatmap"
    return after


def labels(tokens):
    return [f"{i:04d} {t}" for i, t in enumerate(tokens)]


@pytest.mark.browser
def test_t5_pages_render_from_file_and_http(page, t5_build):
    _, out, _ = t5_build
    for filename in ("index.html", "attention.html", "attributions.html", "heads.html"):
        open_page(page, file_url(out / "tiny-t5" / filename)).assert_clean()
    with serve_directory(out) as base_url:
        for filename in ("index.html", "attention.html", "attributions.html", "heads.html"):
            open_page(page, f"{base_url}/tiny-t5/{filename}").assert_clean()


@pytest.mark.browser
def test_kind_selector_switches_between_the_three_attentions(page, t5_build):
    _, out, _ = t5_build
    data = page_data(out)
    first = data["examples"][0]
    enc, dec = labels(first["tokens"]["input"]), labels(first["tokens"]["decoder"])
    open_page(page, file_url(out / "tiny-t5" / "attention.html")).assert_clean()
    state = chart_state(page)
    assert state["selection"].startswith("encoder attention")
    assert state["rows"] == enc and state["columns"] == enc and state["layers"] == 2

    state = select_and_wait(page, "select-kind", "1")  # decoder self-attention
    assert state["selection"].startswith("decoder attention")
    assert state["rows"] == dec and state["columns"] == dec and state["layers"] == 3
    assert "causal" in state["kindText"]

    state = select_and_wait(page, "select-layer", "2")  # a layer only the decoder has
    assert "layer 2" in state["selection"]

    scores = check_scores_follow_weights(page)  # decoder: causal, later keys faded
    assert not all(visible for *_, visible in scores["scores"])

    state = select_and_wait(page, "select-kind", "2")  # cross-attention
    assert state["selection"].startswith("cross attention") and "layer 2" in state["selection"]
    assert state["rows"] == dec and state["columns"] == enc
    assert "rows are decoder tokens" in state["kindText"]
    scores = check_scores_follow_weights(page)
    assert scores["selection"] == "2 | 0 | 2 | 0" and all(v for *_, v in scores["scores"])

    state = select_and_wait(page, "select-head", "3")
    assert "head 3" in state["selection"]

    state = select_and_wait(page, "select-kind", "0")  # back to the 2-layer encoder
    assert state["layers"] == 2 and "layer 1" in state["selection"]

    state = select_and_wait(page, "select-example", "1")
    second = data["examples"][1]
    assert state["rows"] == labels(second["tokens"]["input"])
    greedy = page.inner_text("#target-text")
    assert greedy.startswith("Greedy output:") and second["target"] in greedy


@pytest.mark.browser
def test_head_view_and_grid_follow_the_selected_kind(page, t5_build):
    _, out, _ = t5_build
    data = page_data(out)
    first = data["examples"][0]
    enc, dec = first["tokens"]["input"], first["tokens"]["decoder"]
    open_page(page, file_url(out / "tiny-t5" / "attention.html")).assert_clean()

    def views():
        return page.evaluate(
            """() => {
                const v = window.Atlas.views;
                const grid = window.Atlas.attentionGrid;  // the cells the maps show
                return {left: v['chart-attention-head-view'].data('left').map(d => d.token),
                        right: v['chart-attention-head-view'].data('right').map(d => d.token),
                        gridLayers: new Set(grid.map(c => c.layer)).size,
                        gridQueries: new Set(grid.map(c => c.query)).size,
                        gridKeys: new Set(grid.map(c => c.key)).size,
                        grid: document.getElementById('chart-attention-overview')
                            .getAttribute('data-selection')};
            }"""
        )

    state = views()
    assert (state["left"], state["right"], state["gridLayers"]) == (enc, enc, 2)
    select_and_wait(page, "select-kind", "2")  # cross-attention: decoder queries, encoder keys
    page.wait_for_function(
        "() => document.getElementById('chart-attention-overview')"
        ".getAttribute('data-selection').startsWith('cross')"
    )
    state = views()
    assert (state["left"], state["right"], state["gridLayers"]) == (dec, enc, 3)

    def cells(n):  # token blocks of the grid (blocks of consecutive tokens beyond 32)
        size = -(-n // data["overview_tokens"]) if n > data["overview_tokens"] else 1
        return -(-n // size)

    assert (state["gridQueries"], state["gridKeys"]) == (cells(len(dec)), cells(len(enc)))


@pytest.mark.browser
def test_activations_page_shows_encoder_score_histograms(page, t5_build):
    _, out, _ = t5_build
    open_page(page, file_url(out / "tiny-t5" / "activations.html")).assert_clean()
    assert "the corpus pass runs the encoder only" in page.inner_text("#activation-scores-section")
    check_score_histogram(page)


@pytest.mark.browser
def test_heads_page_shows_decoder_and_cross_attention_metrics(page, t5_build):
    _, out, _ = t5_build
    open_page(page, file_url(out / "tiny-t5" / "heads.html")).assert_clean()
    text = page.inner_text("#seq2seq-heads")
    assert (
        "mean distance, previous token, next token, self are not defined for cross-attention"
        in (" ".join(text.split()))
    )
    chart = "chart-heads-seq2seq"
    cells = "() => Atlas.views['chart-heads-seq2seq'].data('rows').length"
    n_cells = page.evaluate(cells)
    assert n_cells == 3 * 4  # decoder layers x heads
    for select_id, value in (("select-s2s-kind", "cross"), ("select-s2s-metric", "special")):
        before = page.get_attribute(f"#{chart}", "data-selection")
        page.select_option(f"#{select_id}", value)
        page.wait_for_function(
            "([id, s]) => document.getElementById(id).getAttribute('data-selection') !== s",
            arg=[chart, before],
        )
        assert page.evaluate(cells) == n_cells
    before = page.get_attribute(f"#{chart}", "data-selection")
    page.select_option("#select-s2s-metric", "previous")  # undefined across two sequences
    page.wait_for_function(
        "([id, s]) => document.getElementById(id).getAttribute('data-selection') !== s",
        arg=[chart, before],
    )
    assert page.evaluate(cells) == 0
    assert "not defined for this attention" in page.inner_text("#seq2seq-heads-note")
