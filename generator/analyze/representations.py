"""Representation atlas: per layer, pooling and checkpoint, how well labels separate, 2-D maps,
anisotropy, layer-to-layer CKA, and 2-D maps of the showcase examples' tokens.

Probes come with controls: a control task (random labels, probes.control_labels), the
selectivity (accuracy - control accuracy) and a lexical baseline (a bag-of-tokens logistic
regression on the same folds). A layer whose vector is the same for every text (e.g. [CLS]
at layer 0) is flagged `constant`, with the reason, so the page can say why it shows nothing.

Checkpoints run in the card's order, then the card's own model, which is the reference the
others are aligned to (labelled "final"). Tables (analyses/NAME.json) are listed in
docs/artifacts.md.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

import numpy as np

from generator.analyze import geometry, probes
from generator.analyze import representation_points as points
from generator.analyze.pca import fit_pca
from generator.analyze.prefetch import results as prefetched_results
from generator.analyze.projections import (
    MIN_TSNE_SAMPLES,
    TSNE_ITERATIONS,
    TSNE_PERPLEXITY,
    TSNE_SEED,
    many_layer_maps,
    rounded,
    worth_workers,
)
from generator.artifacts import Artifacts

log = logging.getLogger(__name__)

REFERENCE = "final"
POOLED = re.compile(r"^corpus/pooled_(\w+)$")
# [CLS], [SEP], <s>, </s>, <|endoftext|>, <pad>: left out of the token map, where their
# outlying vectors would squeeze every other token into a corner
SPECIAL_TOKEN = re.compile(r"\[[A-Za-z_]+\]|<\|?/?[A-Za-z_]+\|?>")
POOLING_ORDER = ("mean", "cls", "last")
METRICS = {"linear": "linear probe", "knn": "k-NN"}
SILHOUETTE = "silhouette"
CONTROL = "control task"
SELECTIVITY = "selectivity"
ANISOTROPY = {"between": "between texts", "within": "within a text"}


def poolings(artifacts: Artifacts) -> list[str]:
    """Return the poolings present (corpus/pooled_NAME arrays): the card's `pooling` first (the
    page opens on it and the headline names its best layer), then mean, cls, last, others."""
    names = [m.group(1) for a in artifacts.manifest["arrays"] if (m := POOLED.match(a))]
    headline = card_pooling(artifacts)
    return sorted(
        names,
        key=lambda n: (
            n != headline,
            POOLING_ORDER.index(n) if n in POOLING_ORDER else 99,
            n,
        ),
    )


def card_pooling(artifacts: Artifacts) -> str:
    """Return the card's headline pooling (recorded with the extraction settings)."""
    return ((artifacts.manifest.get("inputs") or {}).get("settings") or {}).get("pooling", "mean")


def checkpoints(artifacts: Artifacts) -> list[tuple[str, str]]:
    """Return (label, artifact prefix) per checkpoint in order, the card's own model last."""
    names = [c["name"] for c in artifacts.manifest.get("checkpoints") or []]
    reference = REFERENCE if REFERENCE not in names else f"{REFERENCE} (card model)"
    return [(name, f"checkpoints/{name}/") for name in names] + [(reference, "")]


def _strings(artifacts: Artifacts, name: str) -> np.ndarray | None:
    return np.asarray(artifacts.array(name)).astype(str) if artifacts.has(name) else None


def _vectors(artifacts: Artifacts, prefix: str, name: str) -> np.ndarray:
    return np.asarray(artifacts.array(f"{prefix}corpus/{name}"), dtype=np.float64)


@dataclass(frozen=True)
class ProbeSetting:
    """What every layer's probes share: labels, folds, re-splits and control-task labels."""

    labels: np.ndarray
    protocol: object  # probes.Protocol
    repeated: tuple = ()
    control: np.ndarray | None = None

    @classmethod
    def of(cls, labels: np.ndarray | None, splits: np.ndarray | None) -> ProbeSetting | None:
        """Return the setting for these labels and splits (None: nothing to probe)."""
        protocol = probes.choose_protocol(labels, splits)
        if protocol is None:
            return None
        repeated = probes.resplits(labels, protocol)
        return cls(labels, protocol, repeated, probes.control_labels(labels, protocol))

    def jobs(self, embeddings: np.ndarray) -> list[tuple]:
        """Return one `layer_scores` job per layer of [text, layer, d_model] embeddings."""
        return [
            (embeddings[:, layer], self.labels, self.protocol, self.repeated, self.control)
            for layer in range(embeddings.shape[1])
        ]


def layer_scores(x, labels, protocol, repeated, control) -> dict:
    """`probes.separability` of one layer on its contiguous float64 copy, with one BLAS thread:
    the same bytes in this process and in a worker (prefetch.py, workers.py)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        x = np.ascontiguousarray(x, dtype=np.float64)
        return probes.separability(x, labels, protocol, repeated, control)


def layer_scores_of(jobs: list[tuple]) -> list[dict]:
    """Return `layer_scores` of every job: started early (prefetch.py) or run now, in workers
    when there are enough samples to repay starting them."""
    small = not worth_workers(sum(len(job[0]) for job in jobs))
    return prefetched_results(layer_scores, jobs, small=small)


def separability_rows(
    scores_per_layer: list[dict],
    checkpoint: str,
    pooling: str,
    *,
    predictions: list | None = None,
) -> list[dict]:
    """Return probe, silhouette, control-task and selectivity rows for every layer.

    Args:
        scores_per_layer: `layer_scores` of each layer, in layer order.
        checkpoint: the checkpoint label of the rows.
        pooling: the pooling of the rows.
        predictions: a list that gets each layer's linear-probe held-out predictions, or None.
    """
    rows = []
    for layer, scores in enumerate(scores_per_layer):
        if predictions is not None:
            predictions.append(scores["predicted"])
        base = {
            "checkpoint": checkpoint,
            "pooling": pooling,
            "layer": layer,
            "constant": scores["constant"],
        }

        def row(metric, value, se, base=base):
            return {
                **base,
                "metric": metric,
                "value": None if value is None else round(value, 6),
                "se": None if se is None else round(se, 6),
            }

        for key, metric in METRICS.items():
            rows.append(row(metric, *scores[key]))
        rows.append(row(SILHOUETTE, scores["silhouette"], None))
        if "control" in scores:
            (value, se), (chance, chance_se) = scores["linear"], scores["control"]
            rows.append(row(CONTROL, chance, chance_se))
            rows.append(row(SELECTIVITY, value - chance, float(np.hypot(se, chance_se))))
    return rows


def best_layers(rows: list[dict], checkpoint: str) -> dict[str, dict]:
    """Return per pooling the layer with the highest linear-probe accuracy (earliest on ties)."""
    best: dict[str, dict] = {}
    for row in rows:
        if row["checkpoint"] != checkpoint or row["metric"] != METRICS["linear"]:
            continue
        if row.get("constant"):
            continue
        current = best.get(row["pooling"])
        if current is None or row["value"] > current["accuracy"]:
            best[row["pooling"]] = {
                "layer": row["layer"],
                "accuracy": row["value"],
                "se": row["se"],
            }
    return best


def projection_rows(pooled: dict[str, dict[str, np.ndarray]], reference: str) -> list[dict]:
    """Return PCA and t-SNE map rows per pooling, layer and checkpoint.

    A layer whose vectors are all the same (probes.is_constant) gets a PCA row flagged
    `constant` (its map would be one dot) and no t-SNE row.

    Args:
        pooled: pooling -> checkpoint label -> [text, layer, d_model] embeddings.
        reference: the checkpoint the others are aligned to.
    """
    keys = [
        (pooling, layer)
        for pooling, embeddings in pooled.items()
        for layer in range(embeddings[reference].shape[1])
    ]
    layers = [
        {label: x[:, layer] for label, x in pooled[pooling].items()} for pooling, layer in keys
    ]
    rows = []
    for (pooling, layer), maps in zip(keys, many_layer_maps(layers, reference), strict=True):
        for label, item in maps.items():
            constant = probes.is_constant(pooled[pooling][label][:, layer])
            base = {"checkpoint": label, "pooling": pooling, "layer": layer, "constant": constant}
            pca = item["pca"]
            rows.append(
                {
                    **base,
                    "method": "pca",
                    "x": rounded(pca[:, 0]),
                    "y": rounded(pca[:, 1]),
                    "explained": [round(v, 6) for v in item["pca_explained"]],
                }
            )
            if item["tsne"] is not None and not constant:
                tsne = item["tsne"]
                rows.append(
                    {
                        **base,
                        "method": "tsne",
                        "x": rounded(tsne[:, 0]),
                        "y": rounded(tsne[:, 1]),
                        "explained": None,
                    }
                )
    return rows


def cka_rows(embeddings: np.ndarray, checkpoint: str, pooling: str) -> list[dict]:
    """Return linear CKA between every pair of layers of [text, layer, d_model] embeddings."""
    matrix = geometry.cka_matrix([embeddings[:, layer] for layer in range(embeddings.shape[1])])
    return [
        {
            "checkpoint": checkpoint,
            "pooling": pooling,
            "layer_a": a,
            "layer_b": b,
            "cka": None if np.isnan(matrix[a, b]) else round(float(matrix[a, b]), 6),
        }
        for a in range(len(matrix))
        for b in range(len(matrix))
    ]


def cka_to_reference_rows(embeddings: dict[str, np.ndarray], reference: str, pooling: str) -> list:
    """Return, per checkpoint and layer, linear CKA with the reference model's same layer."""
    rows = []
    target = embeddings[reference]
    for label, x in embeddings.items():
        if label == reference:
            continue
        for layer in range(x.shape[1]):
            value = geometry.linear_cka(x[:, layer], target[:, layer])
            cka = None if np.isnan(value) else round(value, 6)
            rows.append({"checkpoint": label, "pooling": pooling, "layer": layer, "cka": cka})
    return rows


def anisotropy_rows(unit_sums: np.ndarray, lengths: np.ndarray, checkpoint: str) -> list[dict]:
    """Return mean token-pair cosine per layer, between texts and within a text."""
    cosines = geometry.mean_cosines(unit_sums, lengths)
    return [
        {
            "checkpoint": checkpoint,
            "layer": layer,
            "measure": measure,
            "value": None if value is None else round(value, 6),
        }
        for key, measure in ANISOTROPY.items()
        for layer, value in enumerate(cosines[key])
    ]


def _first_token(artifacts: Artifacts) -> str | None:
    """Return the token every text starts with, or None when they differ (or ids are absent)."""
    if not artifacts.has("corpus/input_ids"):
        return None
    first = np.unique(np.asarray(artifacts.array("corpus/input_ids"))[:, 0])
    if len(first) != 1 or first[0] < 0:
        return None
    if artifacts.has("corpus/vocab_ids") and artifacts.has("corpus/vocab_tokens"):
        ids = np.asarray(artifacts.array("corpus/vocab_ids"))
        strings = np.asarray(artifacts.array("corpus/vocab_tokens")).astype(str)
        at = np.flatnonzero(ids == first[0])
        if len(at):
            return f"{strings[at[0]]} (id {int(first[0])})"
    return f"id {int(first[0])}"


def constant_reason(pooling: str, layer: int, first_token: str | None) -> str:
    """Return why every text has the same vector at `layer` with `pooling`, in words."""
    if layer == 0 and pooling == "cls" and first_token is not None:
        return (
            f"every text starts with the same token, {first_token}, at position 0, and layer 0 "
            "(the embedding layer's output) depends only on a token and its position, not on "
            "the rest of the text"
        )
    return (
        f"the vectors of all texts agree to within {probes.CONSTANT_TOLERANCE:g} of their norm "
        "at this layer with this pooling"
    )


def constant_layers(
    pooled: dict[str, dict[str, np.ndarray]], first_token: str | None
) -> list[dict]:
    """Return {checkpoint, pooling, layer, reason} for each layer that is one vector for all texts.

    Args:
        pooled: pooling -> checkpoint label -> [text, layer, d_model] embeddings.
        first_token: the token every text starts with (`_first_token`), or None.
    """
    return [
        {
            "checkpoint": label,
            "pooling": pooling,
            "layer": layer,
            "reason": constant_reason(pooling, layer, first_token),
        }
        for pooling, by_checkpoint in pooled.items()
        for label, x in by_checkpoint.items()
        for layer in range(x.shape[1])
        if probes.is_constant(x[:, layer])
    ]


def lexical_features(artifacts: Artifacts) -> tuple[object, str]:
    """Return the lexical baseline's [text, entry] count matrix and a sentence describing it.

    Token ids (corpus/input_ids, special tokens left out) when stored, else the words of
    corpus/texts.
    """
    if artifacts.has("corpus/input_ids"):
        special = (artifacts.manifest.get("attention") or {}).get("special_token_ids") or []
        x = probes.bag_of_tokens(artifacts.array("corpus/input_ids"), special)
        return x, (
            f"counts of the {x.shape[1]:,} distinct token ids of the corpus (the model's "
            "tokenizer; special tokens left out)"
        )
    x = probes.bag_of_words(artifacts.array("corpus/texts"))
    return x, f"counts of the {x.shape[1]:,} distinct lower-cased words of the corpus"


def lexical_baseline(artifacts: Artifacts, labels: np.ndarray, protocol, repeated) -> dict:
    """Return the bag-of-tokens baseline: {accuracy, se, features} on the probes' folds."""
    x, features = lexical_features(artifacts)
    value, se = probes.scored(lambda p: probes.lexical_probe(), x, labels, protocol, repeated)
    return {"accuracy": round(value, 6), "se": round(se, 6), "features": features}


def token_maps(artifacts: Artifacts) -> dict:
    """Return 2-D PCA maps per layer of the showcase examples' token vectors.

    Special tokens (SPECIAL_TOKEN) are left out.

    Returns:
        {"points": [{example, row, position, token}], "maps": [{layer, x, y, explained}]};
        points list every non-padding, non-special token; maps give their coordinates in that
        order.
    """
    if not artifacts.has("showcase/hidden_states"):
        return {"points": [], "maps": []}
    hidden = artifacts.array("showcase/hidden_states")  # [example, layer, token, d_model]
    mask = np.asarray(artifacts.array("showcase/attention_mask")).astype(bool)
    tokens = np.asarray(artifacts.array("showcase/tokens")).astype(str)
    rows = np.asarray(artifacts.array("showcase/index"))
    special = np.vectorize(lambda t: bool(SPECIAL_TOKEN.fullmatch(t)), otypes=[bool])(tokens)
    example, position = np.nonzero(mask & ~special)
    points = [
        {"example": int(e), "row": int(rows[e]), "position": int(p), "token": str(tokens[e, p])}
        for e, p in zip(example, position, strict=True)
    ]
    maps = []
    for layer in range(hidden.shape[1]):
        vectors = np.asarray(hidden[:, layer], dtype=np.float64)[example, position]
        pca = fit_pca(vectors)
        xy = pca.transform(vectors)
        maps.append(
            {
                "layer": layer,
                "x": rounded(xy[:, 0]),
                "y": rounded(xy[:, 1]),
                "explained": [round(float(v), 6) for v in pca.explained_variance_ratio],
            }
        )
    return {"points": points, "maps": maps}


def settings() -> dict:
    """Return the fixed settings of probes and projections, for the page and the record."""
    return {
        "linear_probe": f"standardised features, logistic regression (C={probes.LOGISTIC_C}, "
        f"lbfgs, max {probes.LOGISTIC_MAX_ITER} iterations)",
        "knn": f"standardised features, {probes.KNN_NEIGHBOURS} nearest neighbours, cosine",
        "silhouette": "cosine distance, on the rows probes are scored on",
        "cv_folds": probes.CV_FOLDS,
        "repeats": probes.REPEATS,
        "seed": probes.SEED,
        "control": "Hewitt & Liang 2019, adapted to one label per text: every "
        "text gets a random label, a seeded permutation of the labels within the train texts "
        "and within the scored texts (class proportions kept), and the same linear probe is "
        "fitted on them; selectivity = linear-probe accuracy - control accuracy",
        "lexical": f"logistic regression (C={probes.LOGISTIC_C}) on raw token counts, fitted "
        "and scored on the same texts as the probes",
        "tsne": {
            "perplexity": TSNE_PERPLEXITY,
            "iterations": TSNE_ITERATIONS,
            "seed": TSNE_SEED,
            "init": "pca",
            "min_samples": MIN_TSNE_SAMPLES,
        },
    }


def representations(artifacts: Artifacts) -> dict:
    """Compute every representation table of an artifact folder ({} without a corpus).

    Runs with one BLAS/OpenMP thread: the probes' small matrix products get no faster with
    more threads and much slower when the cores are shared, and one thread keeps results
    bit-reproducible.
    """
    from threadpoolctl import threadpool_limits

    if not artifacts.manifest.get("corpus") or not poolings(artifacts):
        return {}
    with threadpool_limits(limits=1):
        return _representations(artifacts)


def _representations(artifacts: Artifacts) -> dict:
    started, cpu = time.perf_counter(), time.process_time()
    labels = _strings(artifacts, "corpus/labels")
    setting = ProbeSetting.of(labels, _strings(artifacts, "corpus/splits"))
    protocol = setting.protocol if setting is not None else None
    repeated = setting.repeated if setting is not None else ()
    order = checkpoints(artifacts)
    reference = order[-1][0]
    lengths = np.asarray(artifacts.array("corpus/token_lengths"))

    separability, cka, cka_reference, anisotropy = [], [], [], []
    pooled, predicted = {}, {}
    timings = {"probes": 0.0, "projections": 0.0, "cka": 0.0, "lexical": 0.0}
    for pooling in poolings(artifacts):
        pooled[pooling] = {
            label: _vectors(artifacts, prefix, f"pooled_{pooling}") for label, prefix in order
        }
    clock = time.perf_counter()
    if setting is not None:
        every = [x for by_label in pooled.values() for x in by_label.values()]
        scores = iter(layer_scores_of([job for x in every for job in setting.jobs(x)]))
        for pooling, embeddings in pooled.items():
            for label, x in embeddings.items():
                layers = predicted.setdefault(pooling, []) if label == reference else None
                per_layer = [next(scores) for _ in range(x.shape[1])]
                separability += separability_rows(per_layer, label, pooling, predictions=layers)
    timings["probes"] = time.perf_counter() - clock
    for pooling, embeddings in pooled.items():
        clock = time.perf_counter()
        for label, x in embeddings.items():
            cka += cka_rows(x, label, pooling)
        timings["cka"] += time.perf_counter() - clock
        cka_reference += cka_to_reference_rows(embeddings, reference, pooling)
    clock = time.perf_counter()
    projections = projection_rows(pooled, reference)
    timings["projections"] = time.perf_counter() - clock
    for label, prefix in order:
        if artifacts.has(f"{prefix}corpus/unit_token_sum"):
            sums = _vectors(artifacts, prefix, "unit_token_sum")
            anisotropy += anisotropy_rows(sums, lengths, label)

    clock = time.perf_counter()
    lexical = (
        lexical_baseline(artifacts, labels, protocol, repeated) if protocol is not None else None
    )
    timings["lexical"] = time.perf_counter() - clock
    evaluated = protocol.evaluated if protocol is not None else np.arange(0)
    summary = {
        "checkpoints": [label for label, _ in order],
        "reference": reference,
        "poolings": poolings(artifacts),
        "layers": int(_vectors(artifacts, "", f"pooled_{poolings(artifacts)[0]}").shape[1]),
        "texts": int(len(lengths)),
        "labels": sorted(set(labels.tolist())) if labels is not None else [],
        "protocol": None
        if protocol is None
        else {
            "kind": protocol.kind,
            "description": protocol.description,
            "evaluated": int(len(evaluated)),
            "chance": round(probes.chance_rate(labels[evaluated]), 6),
            "errors": probes.error_method(protocol, repeated),
        },
        "lexical": lexical,
        "constant": constant_layers(pooled, _first_token(artifacts)),
        "best": best_layers(separability, reference),
        "has_tsne": any(row["method"] == "tsne" for row in projections),
        "settings": settings(),
    }
    log.info(
        "%s: representations in %.1f s wall, %.1f s CPU (wall: probes %.1f s, projections "
        "%.1f s, CKA %.1f s, lexical baseline %.1f s)",
        artifacts.root.name,
        time.perf_counter() - started,
        time.process_time() - cpu,
        timings["probes"],
        timings["projections"],
        timings["cka"],
        timings["lexical"],
    )
    return {
        "representation_summary": summary,
        "representation_separability": separability,
        "representation_projections": projections,
        "representation_cka": cka,
        "representation_cka_to_reference": cka_reference,
        "representation_anisotropy": anisotropy,
        "representation_tokens": token_maps(artifacts),
        "representation_predictions": points.prediction_table(predicted, labels, evaluated)
        if protocol is not None
        else {},
        "representation_neighbours": points.neighbour_table(
            pooled[poolings(artifacts)[0]][reference], poolings(artifacts)[0]
        ),
    }
