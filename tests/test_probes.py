"""Probes: split logic that cannot score on training rows, and chance-level results on noise."""

import numpy as np
import pytest

from generator.analyze import probes
from generator.analyze.probes import Fold, Protocol


def gaussian_classes(n_per_class=100, classes=5, dim=32, separation=4.0, seed=0):
    """Return [sample, feature] points around one well-separated centre per class, and labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)) * separation
    labels = np.repeat(np.array([f"c{i}" for i in range(classes)]), n_per_class)
    x = centres[np.repeat(np.arange(classes), n_per_class)] + rng.normal(size=(len(labels), dim))
    return x, labels


def alternating_splits(n, every=5):
    """Every `every`-th row is validation, the rest train (keeps classes balanced in both)."""
    return np.where(np.arange(n) % every == 0, "validation", "train")


def test_fold_refuses_overlap_duplicates_and_empty_parts():
    with pytest.raises(ValueError, match="both"):
        Fold(np.array([0, 1, 2]), np.array([2, 3]))
    with pytest.raises(ValueError, match="twice"):
        Fold(np.array([0, 0, 1]), np.array([2]))
    with pytest.raises(ValueError, match="needs"):
        Fold(np.array([0, 1]), np.array([], dtype=int))


def test_protocol_refuses_a_row_held_out_twice():
    with pytest.raises(ValueError, match="more than one fold"):
        Protocol("cross-validation", (Fold([0, 1], [2, 3]), Fold([0, 1], [3, 4])), "")


def test_split_protocol_trains_on_train_and_scores_validation_only():
    labels = np.array(["a", "b", "a", "b", "a", "b", "a", "b"])
    splits = np.array(["train", "train", "validation", "test", "train", "train", "validation", "x"])
    protocol = probes.choose_protocol(labels, splits)
    assert protocol.kind == "split"
    (fold,) = protocol.folds
    assert fold.train.tolist() == [0, 1, 4, 5]
    assert fold.held_out.tolist() == [2, 6]  # validation wins over test; other splits unused
    no_validation = np.where(splits == "validation", "train", splits)
    assert probes.choose_protocol(labels, no_validation).folds[0].held_out.tolist() == [3]


def test_without_a_usable_split_cross_validation_partitions_every_row():
    x, labels = gaussian_classes(n_per_class=12, classes=3)
    one_class_train = np.where(labels == "c0", "train", "validation")
    for splits in (None, one_class_train):
        protocol = probes.choose_protocol(labels, splits)
        assert protocol.kind == "cross-validation" and len(protocol.folds) == probes.CV_FOLDS
        assert protocol.evaluated.tolist() == list(range(len(labels)))
        for fold in protocol.folds:
            assert not np.intersect1d(fold.train, fold.held_out).size
            assert len(fold.train) + len(fold.held_out) == len(labels)
            # stratified: every class is held out in every fold
            assert set(labels[fold.held_out]) == {"c0", "c1", "c2"}


def test_no_protocol_without_two_classes_or_two_rows_per_class():
    assert probes.choose_protocol(None, None) is None
    assert probes.choose_protocol(np.array(["a", "a", "a"]), None) is None
    assert probes.choose_protocol(np.array(["a", "b", "b"]), None) is None


class Memoriser:
    """A probe that answers correctly only for rows it was fitted on (row id in column 0)."""

    fitted: list = []
    asked: list = []

    def fit(self, x, y):
        self.table = dict(zip(x[:, 0].astype(int).tolist(), y.tolist(), strict=True))
        Memoriser.fitted.append(set(self.table))
        return self

    def predict(self, x):
        rows = x[:, 0].astype(int).tolist()
        Memoriser.asked.append(set(rows))
        return np.array([self.table.get(row, "never seen") for row in rows])


@pytest.mark.parametrize("with_split", [True, False])
def test_no_probe_is_ever_scored_on_a_row_it_was_trained_on(with_split):
    _, labels = gaussian_classes(n_per_class=20, classes=4)
    x = np.arange(len(labels), dtype=float)[:, None]
    splits = alternating_splits(len(labels)) if with_split else None
    protocol = probes.choose_protocol(labels, splits)
    Memoriser.fitted, Memoriser.asked = [], []
    predicted = probes.held_out_predictions(Memoriser, x, labels, protocol)
    assert len(predicted) == len(protocol.evaluated)
    # a memoriser is perfect on its training rows, so any leak would score above zero
    assert probes.accuracy_with_error(predicted, labels[protocol.evaluated])[0] == 0.0
    for fitted, asked in zip(Memoriser.fitted, Memoriser.asked, strict=True):
        assert not fitted & asked


def test_well_separated_classes_are_found_and_shuffled_labels_stay_at_chance():
    x, labels = gaussian_classes()
    for splits in (alternating_splits(len(labels)), None):
        protocol = probes.choose_protocol(labels, splits)
        scores = probes.separability(x, labels, protocol)
        assert scores["linear"][0] > 0.95 and scores["knn"][0] > 0.95
        assert scores["silhouette"] > 0.3

        shuffled = np.random.default_rng(1).permutation(labels)
        protocol = probes.choose_protocol(shuffled, splits)
        chance = probes.chance_rate(shuffled[protocol.evaluated])
        se = np.sqrt(chance * (1 - chance) / len(protocol.evaluated))
        scores = probes.separability(x, shuffled, protocol)
        for key in ("linear", "knn"):
            assert abs(scores[key][0] - chance) <= 3 * se, (key, scores[key], chance, se)
        assert scores["silhouette"] < 0.02  # b takes the nearest other label: noise is <= 0


def test_accuracy_error_chance_and_silhouette():
    acc, se = probes.accuracy_with_error(np.array(["a", "b", "a", "a"]), np.array(["a"] * 4))
    assert acc == 0.75 and se == pytest.approx(np.sqrt(0.75 * 0.25 / 4))
    assert probes.chance_rate(np.array(["a", "b", "b", "c"])) == 0.5
    from sklearn.metrics import silhouette_score

    x, labels = gaussian_classes(n_per_class=10, classes=3)
    assert probes.silhouette(x, labels) == pytest.approx(
        silhouette_score(x, labels, metric="cosine")
    )
    assert probes.silhouette(x[:3], np.array(["a", "a", "a"])) is None
