"""Representation atlas: per layer, pooling and checkpoint, how well labels separate, 2-D maps,
anisotropy, layer-to-layer CKA, and 2-D maps of the showcase examples' tokens.

Checkpoints run in the card's order, then the card's own model, which is the reference the
others are aligned to (labelled "final"). Tables (analyses/NAME.json) are listed in
docs/artifacts.md.
"""

from __future__ import annotations

import logging
import re
import time

import numpy as np

from generator.analyze import geometry, probes
from generator.analyze.pca import fit_pca
from generator.analyze.projections import (
    MIN_TSNE_SAMPLES,
    TSNE_ITERATIONS,
    TSNE_PERPLEXITY,
    TSNE_SEED,
    many_layer_maps,
    rounded,
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
ANISOTROPY = {"between": "between texts", "within": "within a text"}


def poolings(artifacts: Artifacts) -> list[str]:
    """Return the poolings present (corpus/pooled_NAME arrays): mean, cls, last, then others."""
    names = [m.group(1) for a in artifacts.manifest["arrays"] if (m := POOLED.match(a))]
    return sorted(names, key=lambda n: (POOLING_ORDER.index(n) if n in POOLING_ORDER else 99, n))


def checkpoints(artifacts: Artifacts) -> list[tuple[str, str]]:
    """Return (label, artifact prefix) per checkpoint in order, the card's own model last."""
    names = [c["name"] for c in artifacts.manifest.get("checkpoints") or []]
    reference = REFERENCE if REFERENCE not in names else f"{REFERENCE} (card model)"
    return [(name, f"checkpoints/{name}/") for name in names] + [(reference, "")]


def _strings(artifacts: Artifacts, name: str) -> np.ndarray | None:
    return np.asarray(artifacts.array(name)).astype(str) if artifacts.has(name) else None


def _vectors(artifacts: Artifacts, prefix: str, name: str) -> np.ndarray:
    return np.asarray(artifacts.array(f"{prefix}corpus/{name}"), dtype=np.float64)


def separability_rows(
    embeddings: np.ndarray, labels: np.ndarray, protocol, checkpoint: str, pooling: str
) -> list[dict]:
    """Return probe and silhouette rows for every layer of [text, layer, d_model] embeddings."""
    rows = []
    for layer in range(embeddings.shape[1]):
        scores = probes.separability(embeddings[:, layer], labels, protocol)
        base = {"checkpoint": checkpoint, "pooling": pooling, "layer": layer}
        for key, metric in METRICS.items():
            value, se = scores[key]
            rows.append({**base, "metric": metric, "value": round(value, 6), "se": round(se, 6)})
        value = scores["silhouette"]
        rows.append(
            {
                **base,
                "metric": SILHOUETTE,
                "value": None if value is None else round(value, 6),
                "se": None,
            }
        )
    return rows


def best_layers(rows: list[dict], checkpoint: str) -> dict[str, dict]:
    """Return per pooling the layer with the highest linear-probe accuracy (earliest on ties)."""
    best: dict[str, dict] = {}
    for row in rows:
        if row["checkpoint"] != checkpoint or row["metric"] != METRICS["linear"]:
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
            base = {"checkpoint": label, "pooling": pooling, "layer": layer}
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
            if item["tsne"] is not None:
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
        "seed": probes.SEED,
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
    splits = _strings(artifacts, "corpus/splits")
    protocol = probes.choose_protocol(labels, splits)
    order = checkpoints(artifacts)
    reference = order[-1][0]
    lengths = np.asarray(artifacts.array("corpus/token_lengths"))

    separability, cka, cka_reference, anisotropy = [], [], [], []
    pooled = {}
    timings = {"probes": 0.0, "projections": 0.0, "cka": 0.0}
    for pooling in poolings(artifacts):
        embeddings = {
            label: _vectors(artifacts, prefix, f"pooled_{pooling}") for label, prefix in order
        }
        for label, x in embeddings.items():
            clock = time.perf_counter()
            if protocol is not None:
                separability += separability_rows(x, labels, protocol, label, pooling)
            timings["probes"] += time.perf_counter() - clock
            clock = time.perf_counter()
            cka += cka_rows(x, label, pooling)
            timings["cka"] += time.perf_counter() - clock
        pooled[pooling] = embeddings
        cka_reference += cka_to_reference_rows(embeddings, reference, pooling)
    clock = time.perf_counter()
    projections = projection_rows(pooled, reference)
    timings["projections"] = time.perf_counter() - clock
    for label, prefix in order:
        if artifacts.has(f"{prefix}corpus/unit_token_sum"):
            sums = _vectors(artifacts, prefix, "unit_token_sum")
            anisotropy += anisotropy_rows(sums, lengths, label)

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
        },
        "best": best_layers(separability, reference),
        "has_tsne": any(row["method"] == "tsne" for row in projections),
        "settings": settings(),
    }
    log.info(
        "%s: representations in %.1f s wall, %.1f s CPU (wall: probes %.1f s, projections "
        "%.1f s, CKA %.1f s)",
        artifacts.root.name,
        time.perf_counter() - started,
        time.process_time() - cpu,
        timings["probes"],
        timings["projections"],
        timings["cka"],
    )
    return {
        "representation_summary": summary,
        "representation_separability": separability,
        "representation_projections": projections,
        "representation_cka": cka,
        "representation_cka_to_reference": cka_reference,
        "representation_anisotropy": anisotropy,
        "representation_tokens": token_maps(artifacts),
    }
