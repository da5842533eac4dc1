"""Separability of labelled embeddings: linear probe, k-NN and silhouette, never scored on training rows.

Protocol: with a split field, every probe is fitted on the `train` rows and scored on the
`validation` rows (or `test` when there is no validation split); without one, on stratified
k-fold cross-validation (seeded), each row scored once by the probe of the fold that held it
out. A `Fold` cannot hold a row in both parts, and `held_out_predictions` is the only place a
probe is fitted or asked to predict: it fits on `fold.train` and predicts `fold.held_out` only.

Standard errors: with a split, the standard deviation of the accuracy over REPEATS seeded
stratified re-splits of the train + held-out rows with the same sizes (`resplits`); with
cross-validation, the standard deviation of the fold accuracies / sqrt(k); the binomial
sqrt(p(1-p)/n) only where neither exists.

Controls (Hewitt & Liang 2019, adapted to one label per text): the control task gives every
text a random label, a seeded permutation of the labels within the training rows and within
the held-out rows (class proportions kept exactly); selectivity = accuracy - control accuracy.
The lexical baseline is a bag-of-tokens logistic regression on the same folds.

Axes: sample (text), feature (d_model, or vocabulary entry for the lexical baseline).
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
REPEATS = 10  # re-splits behind the SE of split-protocol accuracies (5 gave too noisy an SD)
# rows count as one vector when their RMS distance to the mean is below this share of their
# RMS norm (float32 rounding is ~1e-7; the least-spread real layer of MiniLM's [CLS] is ~1e-3)
CONSTANT_TOLERANCE = 1e-5


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


def resplits(labels: np.ndarray, protocol: Protocol, repeats: int = REPEATS) -> tuple:
    """Return seeded stratified re-splits of a split protocol's rows, each with the same sizes.

    Each re-split is a one-fold `Protocol` over the train + held-out rows of `protocol`; the
    spread of a probe's accuracy over them is its standard error. Returns () for
    cross-validation (its folds give the spread) and when the classes are too small to
    stratify.
    """
    from sklearn.model_selection import StratifiedShuffleSplit

    if protocol.kind != "split" or repeats < 2:
        return ()
    (fold,) = protocol.folds
    rows = np.concatenate([fold.train, fold.held_out])
    y = np.asarray(labels).astype(str)[rows]
    splitter = StratifiedShuffleSplit(
        n_splits=repeats,
        train_size=len(fold.train),
        test_size=len(fold.held_out),
        random_state=SEED,
    )
    try:
        parts = list(splitter.split(np.zeros(len(rows)), y))
    except ValueError:  # a class with one row, or fewer held-out rows than classes
        return ()
    return tuple(Protocol("split", (Fold(rows[a], rows[b]),), "re-split") for a, b in parts)


def error_method(protocol: Protocol, repeated: tuple) -> str:
    """Return one sentence saying how the standard errors of `protocol` are computed."""
    if repeated:
        return (
            f"standard deviation of the accuracy over {len(repeated)} seeded stratified "
            "re-splits of the train and held-out texts with the same sizes (the value drawn "
            "is the card's own split)"
        )
    if protocol.kind == "cross-validation" and len(protocol.folds) > 1:
        k = len(protocol.folds)
        return f"standard deviation of the {k} fold accuracies / sqrt({k})"
    return "binomial sqrt(p(1-p)/n) over the scored texts"


def control_labels(labels: np.ndarray, protocol: Protocol, seed: int = SEED) -> np.ndarray:
    """Return control-task labels: a seeded permutation of `labels` within each part.

    With a split the training rows, the held-out rows and the other rows are each permuted
    among themselves, so each part keeps its class counts; with cross-validation all rows
    are permuted together. The labels no longer depend on the text: a probe cannot predict a
    held-out row's control label.
    """
    y = np.asarray(labels).astype(str).copy()
    rng = np.random.default_rng(seed)
    if protocol.kind == "split":
        (fold,) = protocol.folds
        rest = np.setdiff1d(np.arange(len(y)), np.concatenate([fold.train, fold.held_out]))
        groups = [fold.train, fold.held_out, rest]
    else:
        groups = [np.arange(len(y))]
    for rows in groups:
        y[rows] = y[rng.permutation(rows)]
    return y


def is_constant(x: np.ndarray, tolerance: float = CONSTANT_TOLERANCE) -> bool:
    """Return True when every row of [sample, feature] `x` is (numerically) the same vector.

    The test is relative: the RMS distance of the rows to their mean is at most `tolerance`
    times their RMS norm (all-zero rows count as constant).
    """
    x = np.asarray(x, dtype=np.float64)
    spread = float(np.sum((x - x.mean(axis=0)) ** 2))
    scale = float(np.sum(x**2))
    return len(x) < 2 or spread <= tolerance**2 * scale


def bag_of_tokens(token_ids: np.ndarray, exclude=()) -> object:
    """Return [sample, vocabulary entry] token counts (scipy CSR) of padded token ids.

    Args:
        token_ids: [sample, token] ids, negative past each text's end.
        exclude: ids left out (special tokens such as [CLS] and [SEP]).
    """
    from scipy import sparse

    ids = np.asarray(token_ids)
    rows, positions = np.nonzero(ids >= 0)
    values = ids[rows, positions]
    keep = ~np.isin(values, np.asarray(list(exclude), dtype=values.dtype))
    vocabulary, columns = np.unique(values[keep], return_inverse=True)
    return sparse.csr_matrix(
        (np.ones(int(keep.sum())), (rows[keep], columns.ravel())),
        shape=(len(ids), max(1, len(vocabulary))),
    )


def bag_of_words(texts) -> object:
    """Return [sample, word] counts (scipy CSR) of texts: lower-cased words of 2+ characters."""
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer().fit_transform([str(t) for t in texts]).tocsr()


def lexical_probe():
    """Return the lexical baseline's classifier: logistic regression on raw token counts."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=LOGISTIC_C, max_iter=LOGISTIC_MAX_ITER)


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


def accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Return the share of `predicted` equal to `truth`."""
    return float(np.mean(np.asarray(predicted) == np.asarray(truth)))


def scored(
    make_probe, x, y: np.ndarray, protocol: Protocol, repeated: tuple = (), predicted=None
) -> tuple:
    """Return (held-out accuracy, standard error) of a probe; see the module docstring.

    Args:
        make_probe: (protocol) -> an unfitted classifier for that protocol's folds.
        x: [sample, feature] inputs (numpy or scipy sparse).
        y: [sample] labels.
        protocol: the folds the accuracy is measured on.
        repeated: re-splits (`resplits`) whose spread is the standard error.
        predicted: the probe's `held_out_predictions` on `protocol`, when already made.
    """
    y = np.asarray(y).astype(str)
    if predicted is None:
        predicted = held_out_predictions(lambda: make_probe(protocol), x, y, protocol)
    truth = y[protocol.evaluated]
    value, binomial = accuracy_with_error(predicted, truth)
    if repeated:
        values = [
            accuracy(held_out_predictions(lambda p=p: make_probe(p), x, y, p), y[p.evaluated])
            for p in repeated
        ]
        return value, float(np.std(values, ddof=1))
    if protocol.kind == "cross-validation" and len(protocol.folds) > 1:
        position = {int(row): i for i, row in enumerate(protocol.evaluated)}
        values = []
        for fold in protocol.folds:
            at = [position[int(row)] for row in fold.held_out]
            values.append(accuracy(predicted[at], truth[at]))
        return value, float(np.std(values, ddof=1) / np.sqrt(len(values)))
    return value, binomial


def _knn_for(protocol: Protocol):
    return knn_probe(min(len(fold.train) for fold in protocol.folds))


def separability(
    x: np.ndarray,
    labels: np.ndarray,
    protocol: Protocol,
    repeated: tuple = (),
    control: np.ndarray | None = None,
) -> dict:
    """Score one layer's embeddings: linear probe, k-NN, silhouette, and the control task.

    All use only the evaluated rows for scoring; the silhouette needs no fitting.

    Args:
        x: [sample, feature] embeddings of one layer.
        labels: [sample] labels.
        protocol: the folds.
        repeated: re-splits for the standard errors (`resplits`); () for fold or binomial.
        control: [sample] control-task labels (`control_labels`), or None to skip it.

    Returns:
        {"linear": (accuracy, se), "knn": (accuracy, se), "silhouette": float or None,
        "constant": bool, "predicted": the linear probe's [evaluated] held-out predictions,
        and "control": (accuracy, binomial se) when `control` is given}.
        A constant input (`is_constant`) gets no silhouette; its probes can only guess.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(labels).astype(str)
    constant = is_constant(x)
    evaluated = protocol.evaluated
    predicted = held_out_predictions(linear_probe, x, y, protocol)
    scores = {
        "linear": scored(lambda p: linear_probe(), x, y, protocol, repeated, predicted),
        "predicted": predicted,
        "knn": scored(_knn_for, x, y, protocol, repeated),
        "silhouette": None if constant else silhouette(x[evaluated], y[evaluated]),
        "constant": constant,
    }
    if control is not None:
        control = np.asarray(control).astype(str)
        predicted = held_out_predictions(linear_probe, x, control, protocol)
        scores["control"] = accuracy_with_error(predicted, control[protocol.evaluated])
    return scores
