"""Probe controls: control task, selectivity, bag-of-tokens baseline, re-split standard errors,
and constant inputs (one vector for every text)."""

import numpy as np
import pytest
from test_probes import alternating_splits, gaussian_classes

from generator.analyze import probes


def token_corpus(n_per_class=60, classes=4, length=12, vocabulary=200, seed=0):
    """Return padded token ids where each class draws half its tokens from its own id range.

    The other half comes from ids shared by every class, so a bag of tokens separates the
    classes easily but not trivially; -1 pads each row to a common width.
    """
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.array([f"c{i}" for i in range(classes)]), n_per_class)
    own = vocabulary // (classes + 1)
    ids = np.full((len(labels), length + 3), -1)
    for row, label in enumerate(labels):
        k = int(label[1:])
        n = rng.integers(length // 2, length + 1)
        topic = rng.integers(own * (k + 1), own * (k + 2), size=n // 2)
        shared = rng.integers(0, own, size=n - n // 2)
        ids[row, 0] = 999  # a special token every text starts with
        ids[row, 1 : n + 1] = rng.permutation(np.concatenate([topic, shared]))
    return ids, labels


def protocol_of(labels, with_split):
    splits = alternating_splits(len(labels)) if with_split else None
    return probes.choose_protocol(labels, splits)


def binomial_se(p, n):
    return float(np.sqrt(p * (1 - p) / n))


@pytest.mark.parametrize("with_split", [True, False])
def test_control_labels_keep_class_counts_and_are_seeded(with_split):
    _, labels = gaussian_classes(n_per_class=30, classes=3)
    protocol = protocol_of(labels, with_split)
    control = probes.control_labels(labels, protocol)
    parts = [f for fold in protocol.folds for f in (fold.train, fold.held_out)][:2]
    for rows in parts if with_split else [np.arange(len(labels))]:
        assert sorted(control[rows]) == sorted(labels[rows])
    assert not np.array_equal(control, labels)
    np.testing.assert_array_equal(control, probes.control_labels(labels, protocol))
    assert not np.array_equal(control, probes.control_labels(labels, protocol, seed=1))


@pytest.mark.parametrize("with_split", [True, False])
def test_control_accuracy_and_selectivity_on_separable_and_shuffled_labels(with_split):
    x, labels = gaussian_classes()
    protocol = protocol_of(labels, with_split)
    repeated = probes.resplits(labels, protocol)
    n = len(protocol.evaluated)
    scores = probes.separability(
        x, labels, protocol, repeated, probes.control_labels(labels, protocol)
    )
    chance = probes.chance_rate(labels[protocol.evaluated])
    control, control_se = scores["control"]
    assert abs(control - chance) <= 3 * binomial_se(chance, n), (control, chance)
    assert scores["linear"][0] - control > 0.6  # selectivity of a real signal is large

    shuffled = np.random.default_rng(1).permutation(labels)
    protocol = protocol_of(shuffled, with_split)
    repeated = probes.resplits(shuffled, protocol)
    scores = probes.separability(
        x, shuffled, protocol, repeated, probes.control_labels(shuffled, protocol)
    )
    chance = probes.chance_rate(shuffled[protocol.evaluated])
    se = binomial_se(chance, len(protocol.evaluated))
    linear, control = scores["linear"][0], scores["control"][0]
    assert abs(control - chance) <= 3 * se, (control, chance, se)
    selectivity_se = np.hypot(scores["linear"][1], scores["control"][1])
    assert abs(linear - control) <= 3 * max(selectivity_se, np.sqrt(2) * se), (linear, control)


def test_resplits_keep_sizes_and_classes_and_are_seeded():
    _, labels = gaussian_classes(n_per_class=40, classes=5)
    protocol = protocol_of(labels, True)
    (fold,) = protocol.folds
    repeated = probes.resplits(labels, protocol)
    assert len(repeated) == probes.REPEATS
    for part in repeated:
        (f,) = part.folds
        assert len(f.train) == len(fold.train) and len(f.held_out) == len(fold.held_out)
        assert not np.intersect1d(f.train, f.held_out).size
        assert set(labels[f.held_out]) == set(labels)  # stratified
    assert len({tuple(p.folds[0].held_out) for p in repeated}) == len(repeated)
    again = probes.resplits(labels, protocol)
    assert all(
        np.array_equal(a.folds[0].held_out, b.folds[0].held_out)
        for a, b in zip(repeated, again, strict=True)
    )
    assert probes.resplits(labels, protocol_of(labels, False)) == ()  # folds give the spread
    assert "re-splits" in probes.error_method(protocol, repeated)
    assert "fold accuracies" in probes.error_method(protocol_of(labels, False), ())


def test_resplit_standard_error_tracks_the_spread_of_the_accuracy():
    """The re-split SE of a noisy problem is of the order of the binomial SE, not ~0 or ~1."""
    x, labels = gaussian_classes(n_per_class=60, classes=3, separation=0.35)
    protocol = protocol_of(labels, True)
    value, se = probes.scored(
        lambda p: probes.linear_probe(), x, labels, protocol, probes.resplits(labels, protocol)
    )
    binomial = binomial_se(value, len(protocol.evaluated))
    assert 0.3 * binomial < se < 3 * binomial, (value, se, binomial)
    value, se = probes.scored(
        lambda p: probes.linear_probe(), x, labels, protocol_of(labels, False)
    )
    cv_binomial = binomial_se(value, len(labels))
    assert 0.3 * cv_binomial < se < 3 * cv_binomial, (value, se, cv_binomial)


@pytest.mark.parametrize("with_split", [True, False])
def test_bag_of_tokens_beats_chance_on_separable_tokens_and_not_on_random_labels(with_split):
    ids, labels = token_corpus()
    x = probes.bag_of_tokens(ids, exclude=[999])
    assert x.shape[0] == len(labels)
    assert x.sum() == np.sum((ids >= 0) & (ids != 999))  # padding and specials not counted
    protocol = protocol_of(labels, with_split)
    repeated = probes.resplits(labels, protocol)
    value, se = probes.scored(lambda p: probes.lexical_probe(), x, labels, protocol, repeated)
    chance = probes.chance_rate(labels[protocol.evaluated])
    assert value > 0.9 and value - 5 * max(se, 0.01) > chance, (value, se)
    again = probes.scored(lambda p: probes.lexical_probe(), x, labels, protocol, repeated)
    assert again == (value, se)  # deterministic

    shuffled = np.random.default_rng(2).permutation(labels)
    protocol = protocol_of(shuffled, with_split)
    value, _ = probes.scored(lambda p: probes.lexical_probe(), x, shuffled, protocol)
    chance = probes.chance_rate(shuffled[protocol.evaluated])
    n = len(protocol.evaluated)
    assert abs(value - 1 / 4) <= 3 * binomial_se(1 / 4, n), (value, chance)


def test_bag_of_words_counts_words_of_texts():
    x = probes.bag_of_words(["the tea", "The tax tax", "golf"])
    assert x.shape == (3, 4) and x.sum() == 6


def test_constant_inputs_are_detected_relative_to_their_norm_and_scored_at_chance():
    rng = np.random.default_rng(0)
    vector = rng.normal(size=16) * 50
    same = np.tile(vector, (40, 1))
    assert probes.is_constant(same)
    assert probes.is_constant(same + rng.normal(size=same.shape) * 1e-6 * 50)  # float noise
    assert not probes.is_constant(same + rng.normal(size=same.shape) * 1e-2 * 50)
    assert probes.is_constant(np.zeros((5, 3)))
    _, labels = gaussian_classes(n_per_class=10, classes=4)
    protocol = protocol_of(labels, True)
    scores = probes.separability(same, labels, protocol, probes.resplits(labels, protocol))
    assert scores["constant"] and scores["silhouette"] is None
    chance = probes.chance_rate(labels[protocol.evaluated])
    assert scores["linear"][0] == pytest.approx(chance)
