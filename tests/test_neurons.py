"""MLP neurons: the probe of every family, the on-device reducer and host merge, the stored
arrays of a tiny build against a numpy recomputation, the analysis tables and the page rows."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from cards import FIXTURES, write_card
from scipy.special import erf

from generator.analyze.neurons import SHOWN_NEURONS, context_window, top_neuron_rows
from generator.artifacts import open_artifacts
from generator.extract import neurons
from generator.extract.activation_stats import VALUES
from generator.models import load_model
from generator.models.layers import unrolled_layers

NUMPY_ACTIVATIONS = {
    "gelu": lambda x: 0.5 * x * (1.0 + erf(x / np.sqrt(2.0))),
    "gelu_new": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
    "gelu_pytorch_tanh": lambda x: (
        0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    ),
    "relu": lambda x: np.maximum(x, 0.0),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
}


def _dense(layer, x: np.ndarray) -> np.ndarray:
    """Apply an nnx.Linear's kernel (and bias) in float64 numpy."""
    out = x @ np.asarray(layer.kernel[...], np.float64)
    return out + np.asarray(layer.bias[...], np.float64) if layer.bias is not None else out


def _bert_mlps(model):
    from generator.models.bert import BertIntermediate

    layers = [layer.intermediate for layer in model.encoder.layer]
    return BertIntermediate, "__call__", layers, lambda m, x: _dense(m.dense, x)


def _gpt2_mlps(model):
    from generator.models.gpt2 import GPT2MLP

    return GPT2MLP, "hidden", [block.mlp for block in model.h], lambda m, x: _dense(m.c_fc, x)


def _llama_mlps(model):
    from generator.models.llama import LlamaMLP

    return LlamaMLP, "hidden", [layer.mlp for layer in model.layers], None


def _t5_mlps(model):
    cls = type(model.encoder.block[0].layer[-1].DenseReluDense)
    return cls, "hidden", [b.layer[-1].DenseReluDense for b in model.encoder.block], None


CASES = {
    "tiny-bert": _bert_mlps,
    "tiny-gpt2": _gpt2_mlps,
    "tiny-llama": _llama_mlps,
    "tiny-t5": _t5_mlps,
    "tiny-t5-v1_1": _t5_mlps,
}


def numpy_hidden(module, x: np.ndarray, act, single) -> np.ndarray:
    """Recompute an MLP's hidden activation from its input in numpy (gated: act(gate) * up)."""
    if single is not None:
        return act(single(module, x))
    if hasattr(module, "gate_proj"):
        return act(_dense(module.gate_proj, x)) * _dense(module.up_proj, x)
    if hasattr(module, "wi_0"):
        return act(_dense(module.wi_0, x)) * _dense(module.wi_1, x)
    return act(_dense(module.wi, x))


@pytest.mark.parametrize("case", sorted(CASES))
def test_mlp_probe_is_the_hidden_activation_after_the_non_linearity(case, monkeypatch):
    loaded = load_model(FIXTURES / case)
    model, config = loaded.model, loaded.config
    cls, method, modules, single = CASES[case](model)
    seen = {}
    original = getattr(cls, method)

    def record(self, x):
        seen[id(self)] = np.asarray(x, np.float64)
        return original(self, x)

    monkeypatch.setattr(cls, method, record)
    ids = np.array([[3, 7, 11, 5, 2, 9], [4, 8, 6, 0, 0, 0]], np.int32)
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], np.int32)
    run = model.encode if hasattr(model, "encode") else model
    with unrolled_layers():  # eager blocks, so `record` sees concrete inputs (scan traces them)
        out = run(ids, mask)
    probe = np.asarray(out["mlp_activations"], np.float64)
    assert probe.shape == (2, config.n_layers, 6, config.d_mlp)
    act = NUMPY_ACTIVATIONS[config.activation]
    for layer, module in enumerate(modules):
        expected = numpy_hidden(module, seen[id(module)], act, single)
        np.testing.assert_allclose(probe[:, layer], expected, rtol=1e-4, atol=1e-5)


def _fake_batches(rng, n_layers=2, d_mlp=6, bucket=5):
    """Yield (batch, activations [batch, layer, token, d_mlp], mask) with padding and pad rows."""
    from generator.extract.batching import Batch

    for start, rows, size in ((0, 3, 4), (3, 4, 4), (7, 1, 2)):
        x = rng.normal(size=(size, n_layers, bucket, d_mlp)).astype(np.float32)
        mask = np.zeros((size, bucket), np.int32)
        for r in range(rows):
            mask[r, : rng.integers(1, bucket + 1)] = 1
        # padding and pad rows carry garbage that must never count
        x = np.where(mask[:, None, :, None] == 0, np.float32(50.0), x)
        yield Batch(bucket=bucket, rows=np.arange(start, start + rows), batch_size=size), x, mask


def test_batch_stats_merged_over_batches_match_numpy():
    rng = np.random.default_rng(0)
    stats = neurons.NeuronStats(2, 6, k=4)
    step = jax.jit(lambda x, m: neurons.batch_stats({"mlp_activations": x}, m))
    tokens = []  # (text, position, [layer, d_mlp]) of every visible token
    for batch, x, mask in _fake_batches(rng):
        stats.add({"neurons": jax.device_get(step(x, mask))}, batch, mask)
        for r, text in enumerate(batch.rows):
            tokens += [(int(text), p, x[r, :, p]) for p in np.flatnonzero(mask[r])]
    values = np.stack([t[2] for t in tokens])  # [token, layer, d_mlp]
    np.testing.assert_allclose(stats.sum / stats.tokens, values.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(stats.max, values.max(0))
    np.testing.assert_array_equal(stats.min, values.min(0))
    np.testing.assert_allclose(stats.positive / stats.tokens, (values > 0).mean(0))
    assert stats.tokens == len(tokens)
    where = {(t, p): v for t, p, v in tokens}
    for layer in range(2):
        for neuron in range(6):
            expected = np.sort(values[:, layer, neuron])[::-1][:4]
            np.testing.assert_array_equal(stats.top_values[layer, neuron], expected)
            for j in range(4):  # every kept (text, position) holds the value it reports
                key = (
                    int(stats.top_text[layer, neuron, j]),
                    int(stats.top_position[layer, neuron, j]),
                )
                assert where[key][layer, neuron] == stats.top_values[layer, neuron, j]


def test_storage_rule_keeps_every_neuron_only_while_small():
    assert neurons.stored_count(6, 1536) == 1536  # MiniLM: 6 * 1536 * 8 = 73,728 entries
    assert neurons.stored_count(32, 14336) == neurons.STORED_NEURONS  # Llama-3-8B
    assert neurons.stored_count(32, 4096) == 4096  # exactly 2^20 entries: still all
    assert neurons.stored_count(32, 4097) == neurons.STORED_NEURONS


def _recompute(artifacts):
    """Run the tiny model text by text (no padding) -> list of [layer, token, d_mlp] float64."""
    loaded = load_model(FIXTURES / "tiny-bert")
    ids = np.asarray(artifacts.array("corpus/input_ids"))
    out = []
    for row in ids:
        seq = row[row >= 0][None]
        probe = loaded.model(seq, np.ones_like(seq))["mlp_activations"]
        out.append(np.asarray(probe, np.float64)[0])
    return out


def test_stored_neuron_arrays_match_a_numpy_recomputation(tiny_build):
    _, _, root = tiny_build
    artifacts = open_artifacts(root / "tiny-bert")
    per_text = _recompute(artifacts)
    flat = np.concatenate([a.transpose(1, 0, 2) for a in per_text])  # [token, layer, d_mlp]
    n_layers, d_mlp = flat.shape[1:]
    assert artifacts.axes("neurons/top_values") == ["layer", "rank", "k"]
    np.testing.assert_allclose(artifacts.array("neurons/mean"), flat.mean(0), atol=1e-5)
    np.testing.assert_allclose(artifacts.array("neurons/max"), flat.max(0), atol=1e-5)
    np.testing.assert_allclose(artifacts.array("neurons/min"), flat.min(0), atol=1e-5)
    positive = artifacts.array("neurons/positive")
    assert np.abs(positive - (flat > 0).mean(0)).max() <= 2 / len(flat)  # sign ties at ~0
    ranked = np.asarray(artifacts.array("neurons/ranked"))
    assert ranked.shape == (n_layers, d_mlp)  # small model: every neuron keeps its contexts
    peak = np.asarray(artifacts.array("neurons/max"))
    assert np.all(np.diff(np.take_along_axis(peak, ranked, 1), axis=1) <= 0)
    top = artifacts.array("neurons/top_values")
    texts, positions = artifacts.array("neurons/top_text"), artifacts.array("neurons/top_position")
    for layer in range(n_layers):
        for rank, neuron in enumerate(ranked[layer]):
            expected = np.sort(flat[:, layer, neuron])[::-1][: top.shape[-1]]
            np.testing.assert_allclose(top[layer, rank], expected, atol=1e-5)
            for j in range(top.shape[-1]):
                at = per_text[texts[layer, rank, j]][layer, positions[layer, rank, j], neuron]
                assert at == pytest.approx(top[layer, rank, j], abs=1e-5)
    # the per-text histogram: every visible value counted once, in the documented bins
    counts = np.asarray(artifacts.array("corpus/act_hist_mlp"), np.float64).sum(0)
    assert artifacts.axes("corpus/act_hist_mlp") == ["text", "layer", "bin"]
    for layer in range(n_layers):
        values = np.clip(flat[:, layer].ravel(), -1e5, 1e5)
        expected, _ = np.histogram(values, bins=VALUES.edges())
        assert counts[layer].sum() == values.size
        assert np.abs(counts[layer] - expected).sum() <= 4  # log10 rounding at bin edges
    # the showcase keeps the first neurons of `ranked` for every token of every example
    chosen = np.asarray(artifacts.array("showcase/mlp_top_neurons"))
    np.testing.assert_array_equal(chosen, ranked[:, : min(neurons.SHOWCASE_NEURONS, d_mlp)])
    showcase = np.asarray(artifacts.array("showcase/mlp_top"), np.float64)
    mask = np.asarray(artifacts.array("showcase/attention_mask")).astype(bool)
    for example, row in enumerate(artifacts.array("showcase/index")):
        if row >= len(per_text):
            continue  # a showcase text outside the corpus
        n = int(mask[example].sum())
        for layer in range(n_layers):
            np.testing.assert_allclose(
                showcase[example, layer, :n], per_text[row][layer][:, chosen[layer]], atol=1e-5
            )


def test_analyses_key_without_neurons_skips_them(tmp_path):
    from generator.card import load_card
    from generator.extract.run import extract

    card = load_card(write_card(tmp_path / "cards", name="no-neurons", analyses=["activations"]))
    extract(card, tmp_path / "artifacts", strict=True, progress=False)
    artifacts = open_artifacts(tmp_path / "artifacts" / "no-neurons")
    assert not artifacts.has("neurons/max") and not artifacts.has("showcase/mlp_top")
    assert "analyses" in artifacts.manifest["neurons"]["skipped"]
    assert artifacts.has("corpus/act_hist_mlp")  # the distribution belongs to activations
    from generator.render.pages.neuron_section import neuron_section

    context, figures = neuron_section(artifacts, {}, {})
    assert context["layers"] == [] and figures == {} and "analyses" in context["reason"]


def test_context_window_and_top_rows():
    ids = np.array([[1, 2, 3, 4, 5, 6, -1, -1], [7, 8, 9, -1, -1, -1, -1, -1]])
    token_of = lambda i: f"t{i}"  # noqa: E731
    window = context_window(ids[0], 1, token_of, width=2)
    assert window == {"left": ["t1"], "token": "t2", "right": ["t3", "t4"]}
    assert context_window(ids[1], 2, token_of, width=4)["right"] == []  # stops at the end
    arrays = {
        "max": np.array([[3.0, 1.0]]),
        "mean": np.array([[0.5, 0.1]]),
        "min": np.array([[-0.1, -0.2]]),
        "positive": np.array([[0.9, 0.2]]),
        "ranked": np.array([[0, 1]]),
        "top_values": np.array([[[3.0, 2.0], [1.0, -np.inf]]]),
        "top_text": np.array([[[1, 0], [0, -1]]]),
        "top_position": np.array([[[2, 5], [0, -1]]]),
    }
    rows = top_neuron_rows(arrays, ids, token_of)
    assert [r["neuron"] for r in rows] == [0, 1] and len(rows) <= SHOWN_NEURONS
    assert rows[0]["contexts"][0]["token"] == "t9" and rows[0]["contexts"][0]["text"] == 1
    assert len(rows[1]["contexts"]) == 1  # the missing (-1) context is dropped


def test_profile_leaves_dead_dimensions_out_and_spans_exactly_the_dimensions():
    from generator.render.charts.activations import outlier_profile_chart
    from generator.render.pages.activations import profile_data, profile_rows

    rows = [
        {"layer_label": "after 0", "dim": d, "max_abs": m, "ratio": m / 2.0, "flagged": m > 6}
        for d, m in enumerate([2.0, 1e-30, 2.5, 8.0, 0.0])
    ]
    data = profile_data(rows, 3.0, 1e-3)["after 0"]
    assert sorted(data["dims"]) == [0, 2, 3] and data["excluded"] == 2
    assert data["cut"] == pytest.approx(6.0)
    assert all(r["excluded"] == 2 for r in profile_rows(data))
    spec = outlier_profile_chart(3.0, 384)
    scale = spec["layer"][0]["encoding"]["x"]["scale"]
    assert scale["domain"] == [0, 383] and scale["nice"] is False


def test_page_rows_of_the_neuron_section(tiny_build):
    from generator.analyze.run import analyze
    from generator.render.pages.neuron_section import bar_rows, heatmap_rows, neuron_section

    _, _, root = tiny_build
    artifacts = open_artifacts(root / "tiny-bert")
    tables = analyze(artifacts)
    context, figures = neuron_section(artifacts, tables, {})
    assert set(figures) == {"neuron_histogram", "neuron_bars", "neuron_heatmap"}
    data = context["data"]
    peak = np.asarray(artifacts.array("neurons/max"))
    first = bar_rows(data["bars"][data["layers"][1]])
    assert [r["neuron"] for r in first] == list(artifacts.array("neurons/ranked")[1][:16])
    assert first[0]["max"] == pytest.approx(peak[1].max(), rel=1e-3)
    rows = heatmap_rows(data["showcase"], 1, 1)
    showcase = np.asarray(artifacts.array("showcase/mlp_top"))
    n_tokens = int(artifacts.array("showcase/attention_mask")[1].sum())
    assert len(rows) == n_tokens * showcase.shape[-1]
    cell = next(r for r in rows if r["position"] == 2 and r["rank"] == 3)
    assert cell["value"] == pytest.approx(showcase[1, 1, 2, 3], rel=2e-3, abs=1e-6)
    assert cell["neuron"] == artifacts.array("showcase/mlp_top_neurons")[1, 3]


def test_neuron_section_in_the_browser(tiny_build, page):
    from browser_support import open_page

    from generator.analyze.run import analyze
    from generator.render.pages.neuron_section import heatmap_rows, neuron_section

    _, site, root = tiny_build
    report = open_page(page, (site / "tiny-bert" / "activations.html").as_uri())
    report.assert_clean()
    assert page.locator(".neuron-layer:not([hidden])").get_attribute("data-layer") == "0"
    page.select_option("#select-neuron-layer", "1")
    page.select_option("#select-neuron-example", "2")
    page.wait_for_function(
        "document.getElementById('chart-neurons-heatmap').getAttribute('data-selection')"
        " === '2 | 1'"
    )
    assert page.locator(".neuron-layer:not([hidden])").get_attribute("data-layer") == "1"
    shown = page.evaluate("Atlas.views['chart-neurons-heatmap'].data('rows')")
    artifacts = open_artifacts(root / "tiny-bert")
    context, _ = neuron_section(artifacts, analyze(artifacts), {})
    expected = heatmap_rows(context["data"]["showcase"], 2, 1)
    keys = ("position", "token_label", "neuron", "rank", "value")
    assert [{k: r[k] for k in keys} for r in shown] == expected  # JS rows = Python rows
