"""The head-importance sample: the card's `head_sample`, else 64 texts cut to a FLOP budget."""

import numpy as np
import pytest

from benchmarks.checkpoints import BERT_BASE
from generator.corpus import Corpus
from generator.extract.estimate import forward_flops
from generator.extract.head_budget import (
    HEAD_BUDGET_FLOPS,
    HEAD_SAMPLE,
    MIN_HEAD_SAMPLE,
    head_count,
    head_importance_step,
    head_sample_size,
    layerwise,
    sample_cost,
    sample_rows,
)
from generator.extract.tokenize import TokenizedCorpus
from generator.models.registry import parse_config


def corpus_of(n_texts: int, length: int) -> tuple[Corpus, TokenizedCorpus]:
    """A corpus of `n_texts` unlabeled texts of `length` tokens each."""
    corpus = Corpus(tuple(f"text {i}" for i in range(n_texts)), None, None, "test", "0")
    ids = tuple(np.zeros(length, np.int32) for _ in range(n_texts))
    return corpus, TokenizedCorpus(ids, np.full(n_texts, length, np.int32), 128)


def small_config():
    return parse_config(
        {**BERT_BASE, "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 128}
    )


def test_small_models_keep_64_texts_and_a_card_sets_its_own():
    config = small_config()
    corpus, tokens = corpus_of(200, 24)
    assert head_sample_size(None, config, tokens, corpus) == (HEAD_SAMPLE, "default")
    assert head_sample_size(32, config, tokens, corpus) == (32, "head_sample")
    small, small_tokens = corpus_of(20, 24)
    assert head_sample_size(None, config, small_tokens, small) == (20, "default")
    assert head_sample_size(100, config, small_tokens, small) == (20, "head_sample")


def test_large_models_get_fewer_texts_in_proportion_to_the_budget():
    config = parse_config(BERT_BASE)
    corpus, tokens = corpus_of(200, 24)
    rows = sample_rows(corpus, HEAD_SAMPLE)
    cost = sample_cost(config, tokens, rows)
    assert (
        cost == forward_flops(config, HEAD_SAMPLE, 24) * 12 * 12 == pytest.approx(3.78e13, rel=0.01)
    )
    size, source = head_sample_size(None, config, tokens, corpus)
    assert source == "budget" and size == MIN_HEAD_SAMPLE  # 64 x 8e12 / 3.8e13 = 13.5 -> 16
    shallow = parse_config({**BERT_BASE, "num_hidden_layers": 2})  # 1.0e12: within budget
    assert head_sample_size(None, shallow, tokens, corpus) == (HEAD_SAMPLE, "default")
    half = parse_config({**BERT_BASE, "num_hidden_layers": 6})  # 9.4e12: cut, not to the floor
    half_cost = sample_cost(half, tokens, rows)
    expected = int(HEAD_SAMPLE * HEAD_BUDGET_FLOPS / half_cost)
    assert MIN_HEAD_SAMPLE < expected < HEAD_SAMPLE
    assert head_sample_size(None, half, tokens, corpus) == (expected, "budget")


def test_the_estimate_counts_the_sample_and_the_passes():
    corpus, tokens = corpus_of(200, 20)  # trimmed to 24 tokens
    small = small_config()  # below LAYERWISE_FLOPS: the whole model runs per head
    assert not layerwise(small, HEAD_SAMPLE, 24)
    step = head_importance_step(small, tokens, corpus, None, fidelity=False)
    assert step.budget.startswith(f"{HEAD_SAMPLE} texts x {head_count(small)} heads")
    # ablation (and the unablated pass), one backward pass (Michel et al.), pruning: every
    # head removed, every head kept, then 9 fractions x 6 orders at most
    passes = (1 + head_count(small)) + 3 + 2 + 9 * 6
    assert step.flops == pytest.approx(passes * forward_flops(small, HEAD_SAMPLE, 24))
    large = parse_config(BERT_BASE)  # layer by layer: a head of layer l runs (12 - l) / 12
    assert layerwise(large, MIN_HEAD_SAMPLE, 24)
    step = head_importance_step(large, tokens, corpus, None, fidelity=True)
    above = sum(12 * (12 - layer) / 12 for layer in range(12))
    primal = sum((12 - layer) / 12 for layer in range(12)) + 1  # a linearisation per layer
    passes = (1 + above) + (above + primal) + 2 + 9 * 6
    expected = passes * forward_flops(large, MIN_HEAD_SAMPLE, 24)
    assert step.flops == pytest.approx(expected)
