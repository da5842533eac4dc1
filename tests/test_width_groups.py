"""Width groups: the cheapest split of a batch by text width, and results equal to one batch."""

from types import SimpleNamespace

import numpy as np
import pytest
from cards import FIXTURES

from generator.corpus import Corpus
from generator.extract import attribution_capture as capture
from generator.extract import head_budget, width_groups
from generator.extract.batching import trimmed_width
from generator.extract.tokenize import TokenizedCorpus, load_tokenizer
from generator.models.loading import load_model

LENGTHS = [5, 6, 7, 7, 9, 21, 22, 6, 8, 19]


def test_the_cheapest_split_is_chosen_and_covers_every_row_once():
    lengths = np.array(LENGTHS)
    cost = lambda rows, width: rows * width  # noqa: E731 (padded tokens)
    groups = width_groups.width_groups(lengths, 64, cost, min_saved=0)
    rows = np.concatenate([g for g, _ in groups])
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    for group, width in groups:  # every text fits its group's width
        assert all(trimmed_width(n, 64) <= width for n in lengths[group])
    widths = sorted({trimmed_width(n, 64) for n in lengths})
    brute = min(
        sum(cost(int(np.sum(part)), w) for part, w in ((lengths <= s, s), (lengths > s, 24)))
        for s in widths[:-1]
    )
    assert sum(cost(len(g), w) for g, w in groups) == brute == 6 * 8 + 4 * 24
    whole = width_groups.width_groups(lengths, 64, cost, min_saved=1e9)  # not worth a compile
    assert [(g.tolist(), w) for g, w in whole] == [(list(range(len(lengths))), 24)]


class Writer(dict):
    def write_array(self, name, array, axes):
        self[name] = np.asarray(array)


def context_of(name: str, task: str, head_sample: int | None = None):
    """An AttributionContext of a tiny fixture over random texts of LENGTHS tokens."""
    loaded = load_model(FIXTURES / name)
    rng = np.random.default_rng(0)
    ids = tuple(rng.integers(5, 90, n).astype(np.int32) for n in LENGTHS)
    texts = tuple(f"text {i}" for i in range(len(ids)))
    labels = tuple("ab"[i % 2] for i in range(len(ids)))
    corpus = Corpus(texts, labels, None, "test", "0")
    tokens = TokenizedCorpus(ids, np.array(LENGTHS), 64)
    card = SimpleNamespace(head_sample=head_sample, name=name, dtype="float32")
    pooled = rng.standard_normal((len(ids), loaded.config.d_model)).astype(np.float32)
    return capture.attribution_context(
        card,
        loaded,
        task,
        tokenizer=load_tokenizer(FIXTURES / name),
        tokens=tokens,
        corpus=corpus,
        pooled_last=pooled,
        pad_id=0,
        writer=Writer(),
    )


def run_both(monkeypatch, run):
    """Run `run()` with one group and with width groups forced; return both writers' arrays."""
    monkeypatch.setattr(head_budget, "LAYERWISE_FLOPS", 0.0)  # tiny models too, layer by layer
    results = []
    for saved in (float("inf"), 0.0):
        monkeypatch.setattr(width_groups, "MIN_SAVED_FLOPS", saved)
        results.append(run())
    return results


@pytest.mark.parametrize(("name", "task"), [("tiny-bert", "embedding"), ("tiny-gpt2", "causal-lm")])
def test_head_importance_in_width_groups_equals_one_batch(monkeypatch, name, task):
    def run():
        context = context_of(name, task)
        details = capture.head_importance(context)
        return details, dict(context.writer)

    (one, single), (two, grouped) = run_both(monkeypatch, run)
    lengths = np.array(LENGTHS)
    config = load_model(FIXTURES / name).config
    fidelity = task == "embedding"
    assert len(head_budget.sample_width_groups(config, lengths, 24, fidelity=fidelity)) == 2
    assert one.keys() == two.keys()
    for key, value in one.items():  # the objectives differ by float rounding only
        assert two[key] == (pytest.approx(value, abs=1e-6) if isinstance(value, float) else value)
    assert set(single) == set(grouped)
    assert np.abs(single["heads/ablation_per_text"]).max() > 1e-4  # the comparison can fail
    for name_, array in single.items():
        np.testing.assert_allclose(grouped[name_], array, rtol=1e-4, atol=1e-6, err_msg=name_)


def test_token_attributions_in_width_groups_equal_one_batch(monkeypatch):
    def run():
        context = context_of("tiny-bert-mlm", "masked-lm")
        rows = np.arange(len(LENGTHS))
        width = max(LENGTHS)
        inputs = capture.sample_batch(context, rows, width)
        capture.token_attributions(context, inputs)
        return dict(context.writer)

    single, grouped = run_both(monkeypatch, run)
    assert np.abs(single["attribution/integrated_gradients"]).max() > 1e-4
    for name, array in single.items():
        if array.dtype.kind == "f":  # ig_error: a relative error of ~1e-5, itself rounding
            atol = 1e-5 if name.endswith("ig_error") else 1e-6
            np.testing.assert_allclose(grouped[name], array, rtol=1e-4, atol=atol, err_msg=name)
        else:
            np.testing.assert_array_equal(grouped[name], array)


def test_integrated_gradients_leave_room_for_parameters_converted_to_bfloat16(monkeypatch):
    """With `dtype: bfloat16` each program converts the float32 parameters: the points' memory
    budget is what is free less their float32 size (`memory.conversion_bytes`)."""
    import jax

    from generator.models.device_memory import Available

    budgets = []
    fit = capture.rows_within

    def recording(config, rows, tokens, budget):
        budgets.append(budget)
        return fit(config, rows, tokens, budget)

    monkeypatch.setattr(capture, "rows_within", recording)
    context = context_of("tiny-bert-mlm", "masked-lm")
    count = sum(leaf.size for leaf in jax.tree.leaves(context.params))
    free = 4 * count + 2**30  # a quarter of it stays under the CPU's HOST_BACKWARD_BUDGET
    monkeypatch.setattr(capture, "device_available", lambda: Available(free, "a fake card"))
    inputs = capture.sample_batch(context, np.arange(2), max(LENGTHS))
    for dtype in ("float32", "bfloat16"):
        context.card.dtype = dtype
        capture.token_attributions(context, inputs)
    assert budgets == [free // capture.BACKWARD_SHARE, 2**30 // capture.BACKWARD_SHARE]
