"""Separability of labelled embeddings: linear probe, k-NN and silhouette, never scored on training rows.

Protocol: with a split field, every probe is fitted on the `train` rows and scored on the
`validation` rows (or `test` when there is no validation split); without one, on stratified
k-fold cross-validation (seeded), each row scored once by the probe of the fold that held it
out. A `Fold` cannot hold a row in both parts, and `held_out_predictions` is the only place a
probe is fitted or asked to predict: it fits on `fold.train` and predicts `fold.held_out` only.

Axes: sample (text), feature (d_model).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

HOLD_OUT_SPLITS = ("validation", "test")  # first one present is the held-out split
CV_FOLDS = 5
SEED = 0
KNN_NEIGHBOURS = 5
LOGISTIC_C = 1.0
LOGISTIC_MAX_ITER = 2000


@dataclass(frozen=True)
class Fold:
    """Row indices a probe is fitted on (`train`) and scored on (`held_out`); disjoint."""

    train: np.ndarray
    held_out: np.ndarray

    def __post_init__(self):
        train = np.unique(np.asarray(self.train, dtype=np.int64))
        held_out = np.unique(np.asarray(self.held_out, dtype=np.int64))
        if len(train) != len(self.train) or len(held_out) != len(self.held_out):
            raise ValueError("a fold lists a row twice")
        if not len(train) or not len(held_out):
            raise ValueError("a fold needs training rows and held-out rows")
        if np.intersect1d(train, held_out).size:
            raise ValueError("a fold holds a row in both its training and held-out parts")
        object.__setattr__(self, "train", train)
        object.__setattr__(self, "held_out", held_out)


@dataclass(frozen=True)
class Protocol:
    """How probes are evaluated: the folds and a sentence saying so."""

    kind: str  # "split" or "cross-validation"
    folds: tuple[Fold, ...]
    description: str

    def __post_init__(self):
        rows = np.concatenate([fold.held_out for fold in self.folds])
        if len(np.unique(rows)) != len(rows):
            raise ValueError("a row is held out by more than one fold")

    @property
    def evaluated(self) -> np.ndarray:
        """Return the sorted rows that probes are scored on."""
        return np.sort(np.concatenate([fold.held_out for fold in self.folds]))


def split_protocol(labels: np.ndarray, splits: np.ndarray) -> Protocol | None:
    """Return train -> held-out split evaluation, or None when the split cannot support it."""
    splits = np.asarray(splits).astype(str)
    train = np.flatnonzero(splits == "train")
    held_name = next((name for name in HOLD_OUT_SPLITS if np.any(splits == name)), None)
    if held_name is None or len(np.unique(np.asarray(labels)[train])) < 2:
        return None
    held_out = np.flatnonzero(splits == held_name)
    description = (
        f"fitted on the {len(train)} train texts, scored on the {len(held_out)} {held_name} texts"
    )
    return Protocol("split", (Fold(train, held_out),), description)


def cv_protocol(labels: np.ndarray, folds: int = CV_FOLDS) -> Protocol | None:
    """Return seeded stratified k-fold evaluation, or None with fewer than 2 rows per class."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels).astype(str)
    _, counts = np.unique(labels, return_counts=True)
    k = min(folds, int(counts.min())) if len(counts) >= 2 else 0
    if k < 2:
        return None
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=SEED)
    parts = tuple(Fold(a, b) for a, b in splitter.split(np.zeros(len(labels)), labels))
    description = (
        f"no train/validation split: stratified {k}-fold cross-validation over all "
        f"{len(labels)} texts, each text scored by the probe that did not see it"
    )
    return Protocol("cross-validation", parts, description)


def choose_protocol(labels: np.ndarray | None, splits: np.ndarray | None) -> Protocol | None:
    """Return the evaluation protocol for a corpus: its split when usable, else k-fold."""
    if labels is None or len(np.unique(np.asarray(labels).astype(str))) < 2:
        return None
    if splits is not None:
        protocol = split_protocol(labels, splits)
        if protocol is not None:
            return protocol
    return cv_protocol(labels)


def linear_probe():
    """Return the linear probe: standardised features, multinomial logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(C=LOGISTIC_C, max_iter=LOGISTIC_MAX_ITER)
    )


def knn_probe(train_rows: int):
    """Return the k-NN probe: standardised features, cosine distance, k = 5 (fewer if needed)."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    k = max(1, min(KNN_NEIGHBOURS, train_rows))
    return make_pipeline(
        StandardScaler(), KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute")
    )


def held_out_predictions(
    make_probe, x: np.ndarray, y: np.ndarray, protocol: Protocol
) -> np.ndarray:
    """Fit a fresh probe per fold on its training rows; return predictions for `protocol.evaluated`.

    Args:
        make_probe: () -> an unfitted scikit-learn classifier.
        x: [sample, feature] embeddings of every text.
        y: [sample] labels of every text.
        protocol: the folds.

    Returns:
        [evaluated] predicted labels, aligned with `protocol.evaluated`.
    """
    from sklearn.exceptions import ConvergenceWarning

    y = np.asarray(y).astype(str)
    predicted = {}
    for fold in protocol.folds:
        probe = make_probe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            probe.fit(x[fold.train], y[fold.train])
        for row, label in zip(fold.held_out, probe.predict(x[fold.held_out]), strict=True):
            predicted[int(row)] = label
    return np.array([predicted[int(row)] for row in protocol.evaluated])


def accuracy_with_error(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Return accuracy and its binomial standard error sqrt(p(1-p)/n)."""
    correct = np.asarray(predicted) == np.asarray(truth)
    p = float(correct.mean())
    return p, float(np.sqrt(p * (1 - p) / len(correct)))


def chance_rate(labels: np.ndarray) -> float:
    """Return the majority-class rate of `labels` (the best any constant guess scores)."""
    _, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
    return float(counts.max() / counts.sum())


def silhouette(x: np.ndarray, labels: np.ndarray) -> float | None:
    """Return the cosine silhouette score of labelled rows, or None when undefined."""
    from sklearn.metrics import silhouette_score

    labels = np.asarray(labels).astype(str)
    n_labels = len(np.unique(labels))
    if n_labels < 2 or n_labels >= len(labels):
        return None
    return float(silhouette_score(np.asarray(x, dtype=np.float64), labels, metric="cosine"))


def separability(x: np.ndarray, labels: np.ndarray, protocol: Protocol) -> dict:
    """Score one layer's embeddings: linear probe, k-NN (accuracy and SE), silhouette.

    All three use only the evaluated rows for scoring; the silhouette needs no fitting.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(labels).astype(str)
    truth = y[protocol.evaluated]
    train_rows = min(len(fold.train) for fold in protocol.folds)
    linear = held_out_predictions(linear_probe, x, y, protocol)
    knn = held_out_predictions(lambda: knn_probe(train_rows), x, y, protocol)
    linear_acc, linear_se = accuracy_with_error(linear, truth)
    knn_acc, knn_se = accuracy_with_error(knn, truth)
    return {
        "linear": (linear_acc, linear_se),
        "knn": (knn_acc, knn_se),
        "silhouette": silhouette(x[protocol.evaluated], truth),
    }
