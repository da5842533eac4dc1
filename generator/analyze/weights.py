"""Weight tables: parameters by component and layer, histograms, spectra, head and token maps.

Inputs are the extract stage's `manifest["weights"]` section and `weights/*` arrays (see
docs/artifacts.md); every function here is pure (arrays and dicts in, tidy rows out).
"""

from __future__ import annotations

import logging

import numpy as np

from generator.analyze import parameters

log = logging.getLogger(__name__)

COMPONENT_ORDER = ("embeddings", "attention", "mlp", "norms", "pooler", "head", "other")
ROLE_LABELS = {
    "query": "query (W_Q)",
    "key": "key (W_K)",
    "value": "value (W_V)",
    "qkv": "fused q|k|v",
    "attn_out": "attention output (W_O)",
    "relative_bias": "relative position bias",
    "mlp_in": "MLP in (up)",
    "mlp_gate": "MLP gate",
    "mlp_out": "MLP out (down)",
    "norm": "norm",
    "token_embedding": "token embedding",
    "position_embedding": "position embedding",
    "type_embedding": "token-type embedding",
    "embed_proj": "embedding projection",
    "pooler": "pooler",
    "head": "task head",
    "other": "other",
}
LEAF_LABELS = {"weight": "weights", "bias": "biases", "gain": "gains"}
MAX_SPECTRUM_POINTS = 256  # longer spectra are sent at log-spaced ranks
# the token-embedding samples mapped by `embedding_projection`: input, then output embedding
EMBEDDING_SAMPLES = ("weights/embedding_sample", "weights/output_embedding_sample")


def role_label(role: str) -> str:
    """Return the reader's name of a role."""
    return ROLE_LABELS.get(role, role)


def group_label(group: str) -> str:
    """Return the reader's name of a histogram group `role:leaf`, e.g. 'query (W_Q) weights'."""
    role, _, leaf = group.partition(":")
    return f"{role_label(role)} {LEAF_LABELS.get(leaf, leaf)}"


def outer_block(row: dict) -> str:
    """Return the block of a tensor outside the layers (parameters.outer_block)."""
    return parameters.outer_block(row.get("name", ""), row.get("component", "other"))


def depth_label(row: dict) -> str:
    """Return the block label of a tensor: its layer ('3', 'dec 3'), the layers of a shared
    block ('shared · layers 0–11') or its outer block."""
    if row.get("applications"):
        return parameters.shared_label(row["applications"])
    if row.get("layer") is None:
        return outer_block(row)
    return f"dec {row['layer']}" if row.get("stack") == "decoder" else str(row["layer"])


def depth_order(row: dict, n_layers: int) -> int:
    """Return a sort key placing embeddings first, then the blocks, then everything after them.

    A shared block sorts at the first layer that applies it.
    """
    if row.get("applications"):
        return row["applications"][0]
    if row.get("layer") is None:
        block = outer_block(row)
        return -1 if block == "embeddings" else 10_000 + COMPONENT_ORDER.index(block)
    return row["layer"] + (n_layers if row.get("stack") == "decoder" else 0)


def short_name(name: str) -> str:
    """Drop the block prefix and the leaf of a dotted name: 'attention.output.LayerNorm'."""
    shared = parameters.SHARED.search(name)
    parts = (name[shared.end() :] if shared else name).split(".")
    for i in range(len(parts) - 1):
        if parts[i + 1].isdigit() and parts[i] in ("layer", "layers", "h", "block", "blocks"):
            parts = parts[i + 2 :]
            break
    return ".".join(parts[:-1]) if len(parts) > 1 else parts[0]


def tensor_table(section: dict, n_layers: int) -> list[dict]:
    """Return one row per parameter tensor with its statistics and share of the model."""
    total = sum(row["count"] for row in section["tensors"]) or 1
    return [
        {
            "name": row["name"],
            "shape": "×".join(str(s) for s in row["shape"]),
            "count": row["count"],
            "share": row["count"] / total,
            "component": row["component"],
            "role": row["role"],
            "role_label": role_label(row["role"]),
            "leaf": row["leaf"],
            "block": depth_label(row),
            "order": depth_order(row, n_layers),
            "frobenius": row["frobenius"],
            "mean": row["mean"],
            "std": row["std"],
            "max_abs": row["max_abs"],
            "near_zero": row["near_zero"],
        }
        for row in section["tensors"]
    ]


def counts_by_component(table: list[dict]) -> list[dict]:
    """Return parameter counts and shares per component, in a fixed component order."""
    total = sum(row["count"] for row in table) or 1
    counts: dict[str, int] = {}
    for row in table:
        counts[row["component"]] = counts.get(row["component"], 0) + row["count"]
    return [
        {"component": c, "count": counts[c], "share": counts[c] / total}
        for c in COMPONENT_ORDER
        if c in counts
    ]


def counts_by_block(table: list[dict]) -> list[dict]:
    """Return parameter counts per (block, component): embeddings, each layer, then the rest."""
    totals: dict[tuple[int, str, str], int] = {}
    for row in table:
        key = (row["order"], row["block"], row["component"])
        totals[key] = totals.get(key, 0) + row["count"]
    return [
        {"block": block, "order": order, "component": component, "count": count}
        for (order, block, component), count in sorted(totals.items())
    ]


def histogram_groups(section: dict, counts: np.ndarray, n_layers: int) -> list[dict]:
    """Return per histogram group its shared bin edges and each tensor's fraction per bin.

    Fractions are counts / entries of the tensor, so tensors of different sizes compare.
    """
    bins = int(section["settings"]["histogram_bins"])
    groups: dict[str, dict] = {}
    for index, row in enumerate(section["tensors"]):
        lo, hi = section["histogram_ranges"][row["group"]]
        group = groups.setdefault(
            row["group"],
            {
                "group": row["group"],
                "label": group_label(row["group"]),
                "edges": [float(e) for e in np.linspace(lo, hi, bins + 1)],
                "series": [],
            },
        )
        fractions = np.asarray(counts[index], dtype=np.float64) / max(row["count"], 1)
        group["series"].append(
            {
                "name": row["name"],
                "label": f"{depth_label(row)} · {short_name(row['name'])}",
                "block": depth_label(row),
                "order": depth_order(row, n_layers),
                "fractions": [float(f) for f in fractions],
                "beyond_range": row["beyond_range"],
            }
        )
    for group in groups.values():
        group["series"].sort(key=lambda s: (s["order"], s["label"]))
    return sorted(groups.values(), key=lambda g: group_order(g["group"]))


LEAF_ORDER = ("weight", "gain", "bias")


def group_order(group: str) -> tuple[int, int, str]:
    """Sort key of a histogram group: roles in ROLE_LABELS order, then weights, gains, biases."""
    role, _, leaf = group.partition(":")
    roles = list(ROLE_LABELS)
    return (
        roles.index(role) if role in roles else len(roles),
        LEAF_ORDER.index(leaf) if leaf in LEAF_ORDER else len(LEAF_ORDER),
        group,
    )


def vector_bands(section: dict, n_layers: int) -> list[dict]:
    """Return quantile bands of every per-layer 1-D tensor (biases, norm gains and biases)."""
    levels = section["settings"]["quantiles"]
    rows = []
    for row in section["tensors"]:
        if len(row["shape"]) != 1 or (row["layer"] is None and not row.get("applications")):
            continue
        names = (f"q{round(q * 100):02d}" for q in levels)
        quantiles = dict(zip(names, row["quantiles"], strict=True))
        rows.append(
            {
                "group": row["group"],
                "label": group_label(row["group"]),
                "tensor": short_name(row["name"]),
                "block": depth_label(row),
                "order": depth_order(row, n_layers),
                "mean": row["mean"],
                "std": row["std"],
                **quantiles,
            }
        )
    return sorted(rows, key=lambda r: (group_order(r["group"]), r["tensor"], r["order"]))


def spectra_table(section: dict, n_layers: int) -> list[dict]:
    """Return per weight matrix: shape, effective and stable rank, σ_max and the fitted α."""
    rows = []
    for m in section["matrices"]:
        if m["spectrum"] is None:
            continue
        rank = min(m["shape"])
        rows.append(
            {
                "name": m["name"],
                "role": m["role"],
                "role_label": role_label(m["role"]),
                "block": depth_label(m),
                "order": depth_order(m, n_layers),
                "in_layer": m["layer"] is not None or bool(m.get("applications")),
                "shape": "×".join(str(s) for s in m["shape"]),
                "effective_rank": m["effective_rank"],
                "effective_rank_ratio": m["effective_rank"] / rank,
                "stable_rank": m["stable_rank"],
                "sigma_max": m["sigma_max"],
                "alpha": m["alpha"],
                "alpha_xmin": m["alpha_xmin"],
                "alpha_ks": m["alpha_ks"],
                "alpha_tail": m["alpha_tail"],
            }
        )
    return rows


def matrix_index(section: dict, n_layers: int) -> list[dict]:
    """Return every weight matrix in depth order: name, block, label, shape, heatmap pooling."""
    rows = [
        {
            "name": m["name"],
            "block": depth_label(m),
            "order": depth_order(m, n_layers),
            "role": m["role"],
            "label": f"{role_label(m['role'])} · {short_name(m['name'])}",
            "shape": m["shape"],
            "has_spectrum": m["spectrum"] is not None,
        }
        for m in section["matrices"]
    ]
    return sorted(rows, key=lambda r: (r["order"], r["name"]))


def spectrum_points(sigma: np.ndarray, limit: int = MAX_SPECTRUM_POINTS) -> list[list[float]]:
    """Return [rank (1-based), σ] pairs, at most `limit` of them at log-spaced ranks."""
    sigma = np.asarray(sigma, dtype=np.float64)
    sigma = sigma[np.isfinite(sigma)]
    ranks = np.arange(1, len(sigma) + 1)
    if len(sigma) > limit:
        ranks = np.unique(np.geomspace(1, len(sigma), limit).round().astype(int))
    return [[int(r), float(sigma[r - 1])] for r in ranks]


def head_table(section: dict, n_layers: int) -> list[dict]:
    """Return per attention head and projection: effective and stable rank, σ_max, ‖W‖_F."""
    return [
        {
            "role": h["role"],
            "role_label": role_label(h["role"]),
            "block": depth_label({**h, "component": "attention"}),
            "order": depth_order({**h, "component": "attention"}, n_layers),
            "cross": h["cross"],
            "head": h["head"],
            "effective_rank": h["effective_rank"],
            "stable_rank": h["stable_rank"],
            "sigma_max": h["sigma_max"],
            "frobenius": h["frobenius"],
        }
        for h in section["heads"]
    ]


def head_spectra(section: dict, singular: np.ndarray) -> dict[str, list[dict]]:
    """Return per tensor the singular values of each head's slice: [{series, role, head, points}].

    Heads of a fused q|k|v tensor are named by their part ('key head 3').
    """
    roles: dict[str, set[str]] = {}
    for h in section["heads"]:
        roles.setdefault(h["name"], set()).add(h["role"])
    out: dict[str, list[dict]] = {}
    for h in section["heads"]:
        prefix = f"{h['role']} " if len(roles[h["name"]]) > 1 else ""
        out.setdefault(h["name"], []).append(
            {
                "series": f"{prefix}head {h['head']}",
                "role": h["role"],
                "head": h["head"],
                "points": spectrum_points(singular[h["spectrum"]]),
            }
        )
    return out


def unit_gram(gram: np.ndarray) -> np.ndarray:
    """Return the Gram matrix of the same vectors scaled to unit norm (the cosine matrix)."""
    gram = np.asarray(gram, dtype=np.float64)
    norms = np.sqrt(np.maximum(np.diag(gram), 1e-300))
    return gram / norms[:, None] / norms[None, :]


def gram_projection(gram: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Return 2-D PCA coordinates of vectors given only their Gram matrix, and explained ratios.

    Centring the Gram matrix (J G J, J = I - 11ᵀ/n) gives the Gram matrix of the centred
    vectors; its top eigenvectors scaled by √eigenvalue are the principal-component scores.
    """
    gram = np.asarray(gram, dtype=np.float64)
    n = gram.shape[0]
    centring = np.eye(n) - 1.0 / n
    centred = centring @ gram @ centring
    values, vectors = np.linalg.eigh((centred + centred.T) / 2)
    order = np.argsort(values)[::-1][:2]
    values, vectors = np.maximum(values[order], 0.0), vectors[:, order]
    scores = vectors * np.sqrt(values)
    for k in range(scores.shape[1]):  # deterministic signs: largest |score| positive
        if scores[np.argmax(np.abs(scores[:, k])), k] < 0:
            scores[:, k] *= -1
    total = max(float(np.trace(centred)), 1e-300)
    if scores.shape[1] < 2:
        scores = np.pad(scores, ((0, 0), (0, 2 - scores.shape[1])))
    return scores, [float(v / total) for v in values]


def head_projection(section: dict, grams: dict[str, np.ndarray], n_layers: int) -> list[dict]:
    """Return PCA coordinates of every head's flattened W_Q / W_K / W_V / W_O slice.

    Each slice is scaled to unit Frobenius norm first, so the map compares directions (what a
    head reads or writes), not sizes (which the per-head rank chart shows).
    """
    rows = []
    for role, gram in grams.items():
        index = section["head_vectors"][role]
        scores, explained = gram_projection(unit_gram(gram))
        for where, (x, y) in zip(index, scores, strict=True):
            rows.append(
                {
                    "role": role,
                    "role_label": role_label(role),
                    "block": depth_label({**where, "component": "attention"}),
                    "order": depth_order({**where, "component": "attention"}, n_layers),
                    "head": where["head"],
                    "x": float(x),
                    "y": float(y),
                    "explained_x": explained[0],
                    "explained_y": explained[1] if len(explained) > 1 else 0.0,
                }
            )
    return rows


def embedding_projection(sample: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Return 2-D PCA and t-SNE coordinates of sampled token embeddings [sample, d_model].

    PCA: the centred sample's top two principal components. t-SNE: scikit-learn, cosine
    distance, perplexity min(30, (n-1)/3), PCA initialisation, `seed`. Both with one BLAS
    thread: faster than several beside the other analyses, and the same bytes on any machine,
    so a sample mapped before is read back (analyze/map_cache.py).
    """
    from generator.analyze.map_cache import remembered

    return remembered(fit_embedding_projection, sample, seed)


def fit_embedding_projection(sample: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Fit `embedding_projection(sample, seed)` (not cached)."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = np.asarray(sample, dtype=np.float64)
    centred = x - x.mean(axis=0)
    perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
    with threadpool_limits(limits=1):
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        pca = centred @ vt[:2].T
        tsne = TSNE(
            n_components=2,
            perplexity=perplexity,
            metric="cosine",
            init="pca",
            learning_rate="auto",
            random_state=seed,
        ).fit_transform(x)
    explained = (s[:2] ** 2) / max(float(np.sum(s**2)), 1e-300)
    return {"pca": pca, "tsne": tsne, "pca_explained": explained}


def embedding_projection_job(artifacts, name: str = EMBEDDING_SAMPLES[0]):
    """Start a token-embedding map (t-SNE, seconds) in a worker process; None without a sample.

    name: the sample array (the input embedding's, or `weights/output_embedding_sample`).
    `analyze` starts it before the other analyses so that it runs beside them. A map the
    extraction started (`start_analysis_jobs`, analyze/prefetch.py) and that has finished or is
    running is taken instead (waited for at most `prefetch.RUNNING_GRACE` seconds).
    """
    from generator.analyze.prefetch import TakenJob, active_prefetch
    from generator.analyze.projections import worth_workers
    from generator.analyze.workers import BackgroundJob

    geometry = (artifacts.manifest.get("weights") or {}).get("embeddings")
    if not geometry or not artifacts.has(name):
        return None
    sample = np.asarray(artifacts.array(name), dtype=np.float64)
    seed = geometry["settings"]["seed"]
    prefetch = active_prefetch()
    early = prefetch.take(embedding_projection, sample, seed) if prefetch else None
    if early is not None:
        log.info("%s: map started during the extraction", name)
        return TakenJob(early, embedding_projection, sample, seed)
    return BackgroundJob(embedding_projection, sample, seed, small=not worth_workers(len(sample)))


def with_applications(section: dict, shared: dict[tuple[int, int], list[int]]) -> dict:
    """Return the weights section with `applications` (the layers that apply it) added to every
    tensor, matrix, head and head vector of a shared block; unchanged without shared blocks."""
    if not shared:
        return section

    def annotate(row: dict) -> dict:
        if row.get("shared") is None:
            return row
        return {**row, "applications": shared.get(tuple(row["shared"]), [])}

    return {
        **section,
        "tensors": [annotate(row) for row in section["tensors"]],
        "matrices": [annotate(row) for row in section["matrices"]],
        "heads": [annotate(row) for row in section["heads"]],
        "head_vectors": {
            role: [annotate(where) for where in index]
            for role, index in section["head_vectors"].items()
        },
    }


def shared_blocks(section: dict) -> list[dict]:
    """Return per shared block (ALBERT): its label, the layers that apply it, its parameters."""
    blocks: dict[tuple[int, ...], dict] = {}
    for row in section["tensors"]:
        if not row.get("applications"):
            continue
        block = blocks.setdefault(
            tuple(row["shared"]),
            {
                "block": depth_label(row),
                "group": row["shared"][0],
                "index": row["shared"][1],
                "layers": list(row["applications"]),
                "count": 0,
            },
        )
        block["count"] += row["count"]
    return sorted(blocks.values(), key=lambda b: b["layers"][0])


def weights_analysis(artifacts, embedding_job=None, output_job=None) -> dict:
    """Compute every weight table of an artifact folder (see the module docstring).

    embedding_job, output_job: the started `embedding_projection_job` of the input and the
    output embedding, else the maps are computed here.
    Blocks that several layers share (ALBERT) appear once, labelled with those layers.
    """
    section = artifacts.manifest.get("weights")
    if not section:
        return {}
    config = artifacts.manifest["model"]["config"]
    section = with_applications(section, parameters.shared_applications(config))
    n_layers = int(config["n_layers"])
    table = tensor_table(section, n_layers)
    singular = artifacts.array("weights/singular_values")
    matrices = [m for m in section["matrices"] if m["spectrum"] is not None]
    tables = {
        "weights_tensors": table,
        "weights_by_component": counts_by_component(table),
        "weights_by_block": counts_by_block(table),
        "weights_histograms": histogram_groups(
            section, artifacts.array("weights/histograms"), n_layers
        ),
        "weights_vector_bands": vector_bands(section, n_layers),
        "weights_spectra": spectra_table(section, n_layers),
        "weights_matrices": matrix_index(section, n_layers),
        "weights_singular_values": {
            m["name"]: spectrum_points(singular[m["spectrum"]]) for m in matrices
        },
        "weights_heads": head_table(section, n_layers),
        "weights_head_singular_values": head_spectra(
            section, artifacts.array("weights/head_singular_values")
        ),
    }
    grams = {
        role: artifacts.array(f"weights/head_gram_{role}")
        for role in section["head_vectors"]
        if artifacts.has(f"weights/head_gram_{role}")
    }
    shared = shared_blocks(section)
    if shared:  # only models that share layer weights (ALBERT) have this table
        tables["weights_shared_blocks"] = shared
    tables["weights_head_projection"] = head_projection(section, grams, n_layers)
    tables["weights_embeddings"] = embedding_tables(
        artifacts, section.get("embeddings"), embedding_job
    )
    tables["weights_output_embeddings"] = output_embedding_tables(
        artifacts, section.get("embeddings"), output_job
    )
    tables["weights_embedding_norms"] = norm_histogram(artifacts)
    return tables


NORM_BINS = 40
COSINE_BINS = 40


def binned_rows(values: np.ndarray, edges: np.ndarray, **fields) -> list[dict]:
    """Return {start, end, count, share, **fields} per bin of `values` over `edges`."""
    counts, _ = np.histogram(values, bins=edges)
    total = max(int(counts.sum()), 1)
    return [
        {"start": float(lo), "end": float(hi), "count": int(c), "share": int(c) / total, **fields}
        for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)
    ]


def norm_histogram(artifacts) -> list[dict]:
    """Return the row-norm histograms of the input (and untied output) embedding, shared bins."""
    series = [
        (label, np.asarray(artifacts.array(name), dtype=np.float64))
        for label, name in (
            ("input embedding", "weights/embedding_norms"),
            ("output embedding", "weights/output_embedding_norms"),
        )
        if artifacts.has(name)
    ]
    if not series:
        return []
    values = np.concatenate([v for _, v in series])
    lo, hi = float(values.min()), float(values.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, NORM_BINS + 1)
    return [row for label, v in series for row in binned_rows(v, edges, matrix=label)]


def output_embedding_tables(artifacts, geometry: dict | None, job=None) -> dict:
    """Return the output embedding's status and, untied, its maps, neighbours and the cosine
    histogram of each token's input and output rows."""
    output = (geometry or {}).get("output")
    if not output:
        return {}
    if output["status"] != "untied":
        return {"status": output["status"], "reason": output["reason"]}
    out = {
        "status": "untied",
        "name": output["name"],
        **embedding_tables(artifacts, geometry, job, "weights/output_embedding_sample"),
        "neighbours": output["neighbours"],
        "cosine": [],
    }
    if artifacts.has("weights/embedding_io_cosine"):
        cosine = np.asarray(artifacts.array("weights/embedding_io_cosine"), dtype=np.float64)
        out["cosine"] = binned_rows(cosine, np.linspace(-1.0, 1.0, COSINE_BINS + 1))
        out["cosine_median"] = float(np.median(cosine))
    return out


def embedding_tables(
    artifacts, geometry: dict | None, job=None, name: str = "weights/embedding_sample"
) -> dict:
    """Return the token-embedding maps (PCA and t-SNE of the sample) and the neighbour lists.

    job: a started `embedding_projection_job` whose result are the maps, else computed here.
    name: the sample array (input embedding, or the output embedding's on the same ids).
    """
    if not geometry or not artifacts.has(name):
        return {}
    if job is not None:
        maps = job.result()
    else:
        sample = np.asarray(artifacts.array(name), dtype=np.float64)
        maps = embedding_projection(sample, seed=geometry["settings"]["seed"])
    tokens = artifacts.array("weights/embedding_sample_tokens")
    ids = artifacts.array("weights/embedding_sample_ids")
    counts = artifacts.array("weights/embedding_sample_counts")
    points = [
        {
            "id": int(ids[i]),
            "token": str(tokens[i]),
            "count": int(counts[i]),
            "pca": [float(v) for v in maps["pca"][i]],
            "tsne": [float(v) for v in maps["tsne"][i]],
        }
        for i in range(len(ids))
    ]
    return {
        "points": points,
        "pca_explained": [float(v) for v in maps["pca_explained"]],
        "neighbours": geometry["neighbours"],
        "vocab_size": geometry["vocab_size"],
        "sample_from_corpus": geometry["sample_from_corpus"],
        "probes_from_corpus": geometry["probes_from_corpus"],
        "settings": geometry["settings"],
    }
