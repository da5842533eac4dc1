"""How many corpus texts head importance measures: the card's `head_sample`, else a FLOP budget.

Head importance ablates every head over one corpus sample, so its cost grows with the sample,
the model's forward pass and its number of heads. The default sample is `HEAD_SAMPLE` texts
unless that sample's forward pass times its number of heads exceeds `HEAD_BUDGET_FLOPS`; then
it is cut in proportion, to no fewer than `MIN_HEAD_SAMPLE` texts. The rule reads only the
model's configuration and the corpus (never a measured speed), so a build is reproducible.
A smaller sample widens the standard errors that the attributions page shows for each head.
Both attribution steps run their texts in width groups (`width_groups`); their estimates count
each group.
"""

from __future__ import annotations

import math

import numpy as np

from generator.extract.batching import trimmed_width
from generator.extract.estimate import BACKWARD, StepEstimate, forward_flops
from generator.extract.showcase import choose_showcase
from generator.extract.width_groups import width_groups

HEAD_SAMPLE = 64  # texts (held-out first, round-robin over labels) when the budget allows
MIN_HEAD_SAMPLE = 16  # the default never goes below this many texts
# forward-pass FLOPs of the sample x attention heads. On the demo corpus (64 texts, 24 tokens
# wide) all-MiniLM-L6-v2 needs 2.4e12 and keeps 64 texts; a bert-base-size model needs 3.8e13
# and gets MIN_HEAD_SAMPLE texts.
HEAD_BUDGET_FLOPS = 8e12
ABLATION_TOKENS = 1 << 15  # tokens one vmapped chunk of head masks may run (bounds memory)
PRUNING_FRACTIONS = np.round(np.arange(0.0, 1.0, 0.1), 2)
RANDOM_ORDERS = 5
# Masks the pruning curves evaluate at most: every head removed (the floor), every head kept,
# then one per order (by importance and the random ones) at each further fraction.
PRUNING_MASKS = 2 + (len(PRUNING_FRACTIONS) - 1) * (1 + RANDOM_ORDERS)
# Below this many forward-pass FLOPs of the sample x heads, head importance runs the whole
# model per head: compiling the layer-by-layer programs costs more than they save (tiny models).
LAYERWISE_FLOPS = 1e11
TANGENT = 1.0  # a forward-mode product's tangent pass, in forward-pass equivalents


def head_count(config) -> int:
    """Attention heads of every kind (encoder-decoders: encoder, decoder and cross-attention)."""
    layers = config.n_layers + (2 * config.n_decoder_layers if config.seq2seq else 0)
    return layers * config.n_heads


def sample_rows(corpus, size: int) -> np.ndarray:
    """The corpus rows of a head-importance sample of `size` texts (held-out first)."""
    return choose_showcase(len(corpus), size, corpus.labels, corpus.splits)


def sample_width(tokens, rows: np.ndarray) -> int:
    """The width the texts of corpus `rows` are padded to: their longest, trimmed."""
    return trimmed_width(int(max(tokens.lengths[rows])), tokens.max_length)


def sample_and_width(corpus, tokens, size: int) -> tuple[np.ndarray, int]:
    """A sample of `size` texts (`sample_rows`) and the width it is padded to (`sample_width`)."""
    rows = sample_rows(corpus, size)
    return rows, sample_width(tokens, rows)


def sample_cost(config, tokens, rows: np.ndarray) -> float:
    """Forward-pass FLOPs of the sample `rows` (cut to their longest text) times the heads."""
    width = sample_width(tokens, rows)
    return forward_flops(config, len(rows), width) * head_count(config)


def head_sample_size(requested: int | None, config, tokens, corpus) -> tuple[int, str]:
    """The number of texts head importance measures, and where that number comes from.

    Args:
        requested: the card's `head_sample` (None: the default budget).
        config: the model's configuration.
        tokens: the tokenized corpus (`lengths`, `max_length`).
        corpus: the corpus (its size, labels and splits choose the rows).

    Returns:
        (texts, source): `requested` (at most the corpus size) with source "head_sample", else
        `HEAD_SAMPLE` texts (at most the corpus size) with source "default", or fewer when
        they cost more than `HEAD_BUDGET_FLOPS`, with source "budget".
    """
    if requested is not None:
        return min(int(requested), len(corpus)), "head_sample"
    rows = sample_rows(corpus, HEAD_SAMPLE)
    cost = sample_cost(config, tokens, rows)
    if cost <= HEAD_BUDGET_FLOPS:
        return len(rows), "default"
    cut = max(MIN_HEAD_SAMPLE, int(len(rows) * HEAD_BUDGET_FLOPS / cost))
    return min(len(rows), cut), "budget"


def layerwise(config, rows: int, width: int) -> bool:
    """True when head importance ablates layer by layer (`extract/head_layers.py`).

    Every family but encoder-decoders can, and does when the sample's forward pass times the
    number of heads reaches `LAYERWISE_FLOPS`.
    """
    cost = forward_flops(config, rows, width) * head_count(config)
    return not config.seq2seq and cost >= LAYERWISE_FLOPS


def mask_chunk(rows: int, width: int) -> int:
    """Head masks per vmapped chunk: every mask runs the whole sample (ABLATION_TOKENS)."""
    return max(1, ABLATION_TOKENS // (rows * width))


def head_passes(config, *, fidelity: bool, chunk: int, by_layer: bool) -> dict[str, float]:
    """Forward-pass equivalents of each part of head importance over one sample.

    Layer by layer (`by_layer`, see `layerwise`): ablating a head of layer l runs the layers
    l.. only, (L - l) / L of a forward pass; the fidelity Taylor estimate takes one primal and
    one tangent pass per head over the same layers; the layers below run once. Otherwise the
    whole model runs per head (and one primal pass per chunk of heads for the Taylor estimate).
    Michel et al.: one batched backward pass. The pruning curves take at most one pass per
    distinct mask (fewer when they stop early): the mask with every head removed, the one with
    every head, and one per order at each further fraction.
    """
    heads = head_count(config)
    if not by_layer:
        above, primal = float(heads), math.ceil(heads / chunk)
    else:  # sum over layers l of (L - l) / L, times the heads of a layer
        layers = config.n_layers
        above = config.n_heads * (layers + 1) / 2
        primal = (layers + 1) / 2 + 1.0  # one linearisation per layer, the layers below once
    gradient = above * TANGENT + primal if fidelity else BACKWARD
    return {"ablation": 1.0 + above, "gradient": float(gradient), "pruning": float(PRUNING_MASKS)}


def head_sample_flops(config, rows: int, width: int, fidelity: bool) -> float:
    """FLOPs of layer-by-layer head importance over `rows` texts of `width` tokens."""
    chunk = mask_chunk(rows, width)
    passes = head_passes(config, fidelity=fidelity, chunk=chunk, by_layer=True)
    return sum(passes.values()) * forward_flops(config, rows, width)


def sample_width_groups(config, lengths: np.ndarray, width: int, *, fidelity: bool) -> list:
    """The sample's width groups (`width_groups`): layer by layer only, else one group."""
    if not layerwise(config, len(lengths), width):
        return [(np.arange(len(lengths)), width)]
    cost = lambda rows, cut: head_sample_flops(config, rows, cut, fidelity)  # noqa: E731
    return width_groups(lengths, width, cost)


def attribution_groups(config, lengths: np.ndarray, width: int, steps: int) -> list:
    """The showcase's width groups for integrated gradients with `steps` points (`width_groups`)."""
    return width_groups(
        lengths, width, lambda rows, cut: attribution_flops(config, rows, cut, steps)
    )


def token_attributions_flops(config, lengths: np.ndarray, width: int, steps: int) -> float:
    """FLOPs of the token attributions of texts of `lengths` padded to `width`, in width groups."""
    width = trimmed_width(int(max(lengths)), width)
    groups = attribution_groups(config, lengths, width, steps)
    return sum(attribution_flops(config, len(rows), cut, steps) for rows, cut in groups)


def attribution_flops(config, rows: int, width: int, steps: int) -> float:
    """FLOPs of the gradient methods: `steps` path points, the input and the baseline."""
    return (steps + 2) * BACKWARD * forward_flops(config, rows, width)


def head_importance_step(config, tokens, corpus, requested: int | None, *, fidelity: bool):
    """The head-importance step's estimate: its sample, passes and FLOPs (a StepEstimate).

    The passes are those of the whole sample at its width; the FLOPs count each width group.
    """
    size, _ = head_sample_size(requested, config, tokens, corpus)
    rows, width = sample_and_width(corpus, tokens, size)
    by_layer = layerwise(config, size, width)
    passes = head_passes(
        config, fidelity=fidelity, chunk=mask_chunk(size, width), by_layer=by_layer
    )
    parts = ", ".join(f"{name} {value:.0f}" for name, value in passes.items())
    budget = (
        f"{size} texts x {head_count(config)} heads: {sum(passes.values()):.0f} forward-pass "
        f"equivalents ({parts}; pruning at most)"
    )
    flops = sum(passes.values()) * forward_flops(config, size, width)
    groups = sample_width_groups(config, tokens.lengths[rows], width, fidelity=fidelity)
    if len(groups) > 1:
        flops = sum(head_sample_flops(config, len(g), cut, fidelity) for g, cut in groups)
        budget += f", texts in {len(groups)} width groups ({', '.join(str(c) for _, c in groups)})"
    return StepEstimate("head_importance", budget, flops)
