"""Weights page: parameter table and counts, distributions, spectra, heatmaps, embedding maps.

Everything comes from the extract stage's weight statistics (no corpus needed). Data the page
swaps on selection travels in one `weights-data` JSON block, compact: rounded floats, columnar
series, heatmaps as base64 int8.
"""

from __future__ import annotations

import base64
import math

import numpy as np

from generator.artifacts import Artifacts
from generator.render.charts import embeddings as embedding_charts
from generator.render.charts import weights as charts
from generator.render.charts.common import canvas_beyond
from generator.render.charts.overview import thin_note
from generator.render.pages.common import Page, chart
from generator.render.pages.gradient_section import gradient_section

HEATMAP_LEVELS = 127  # heatmap values travel as int8 multiples of max|w| / 127


def sig(value: float | None, digits: int = 4) -> float | None:
    """Round to `digits` significant digits (None stays None)."""
    return None if value is None else float(f"{value:.{digits}g}")


def encode_heatmap(pooled: np.ndarray) -> tuple[str, float]:
    """Pack a pooled matrix as base64 int8 multiples of scale / 127; return (text, scale)."""
    scale = float(np.max(np.abs(pooled))) if pooled.size else 0.0
    levels = np.zeros(pooled.shape, np.int8)
    if scale > 0:
        levels = np.rint(pooled / scale * HEATMAP_LEVELS).astype(np.int8)
    return base64.b64encode(levels.tobytes()).decode("ascii"), scale


def matrix_options(rows: list[dict]) -> tuple[list[str], dict[str, list[list[str]]]]:
    """Return the blocks in depth order and, per block, [tensor name, label] of its matrices."""
    options: dict[str, list[list[str]]] = {}
    for row in rows:
        options.setdefault(row["block"], []).append([row["name"], row["label"]])
    return list(options), options


FUSED_PARTS = ("query", "key", "value")  # the thirds of a fused q|k|v kernel, in column order


def head_bands(section: dict) -> dict[str, dict]:
    """Return per matrix split by heads where its heads' bands meet, in original indices.

    {axis: 'c' (W_Q/W_K/W_V and fused q|k|v: heads are column bands) or 'r' (W_O: row
    bands), at: [index where a head starts, the first excluded], major: [where the q, k and v
    thirds of a fused kernel meet]}. The split is the extract stage's (`head_blocks`).
    """
    d_head = int(section["settings"]["d_head"])
    shapes = {m["name"]: m["shape"] for m in section["matrices"]}
    heads: dict[str, dict[str, int]] = {}
    for h in section["heads"]:
        roles = heads.setdefault(h["name"], {})
        roles[h["role"]] = roles.get(h["role"], 0) + 1
    out = {}
    for name, roles in heads.items():
        if name not in shapes:
            continue
        if set(roles) == {"attn_out"}:
            out[name] = {"axis": "r", "at": _starts(0, roles["attn_out"], d_head), "major": []}
        elif len(roles) == 1:
            out[name] = {
                "axis": "c",
                "at": _starts(0, next(iter(roles.values())), d_head),
                "major": [],
            }
        else:
            third = shapes[name][1] // 3
            at = [
                i
                for k, part in enumerate(FUSED_PARTS)
                for i in _starts(k * third, roles.get(part, 0), d_head)
            ]
            out[name] = {"axis": "c", "at": at, "major": [third, 2 * third]}
    return out


def _starts(offset: int, n_heads: int, d_head: int) -> list[int]:
    """Return where heads 1..n-1 of a band of n heads starting at `offset` begin."""
    return [offset + h * d_head for h in range(1, n_heads)]


def heatmap_data(artifacts: Artifacts, section: dict) -> dict[str, dict]:
    """Return per matrix name: pooled shape, block size, original shape, packed values and,
    for a matrix split by heads, its head bands."""
    pooled = artifacts.array("weights/heatmaps")
    bands = head_bands(section)
    out = {}
    for m in section["matrices"]:
        rows, cols = m["heatmap_shape"]
        text, scale = encode_heatmap(np.asarray(pooled[m["heatmap"], :rows, :cols]))
        out[m["name"]] = {
            "size": [rows, cols],
            "block": m["block"],
            "shape": m["shape"],
            "scale": scale,
            "q": text,
            "bands": bands.get(m["name"]),
        }
    return out


def split_heatmaps(heatmaps: dict[str, dict]) -> tuple[dict[str, dict], dict[str, str]]:
    """Return (heatmaps with `file` for `q`, {file name: q}): each matrix's cells on demand.

    A view shows one matrix; at 24 layers its packed cells are most of the page. File
    `weights-heatmap-I` (I: the matrix's index in name order) holds the base64 int8 cells.
    """
    entries, files = {}, {}
    for index, name in enumerate(sorted(heatmaps)):
        file = f"weights-heatmap-{index}"
        files[file] = heatmaps[name]["q"]
        entries[name] = {**{k: v for k, v in heatmaps[name].items() if k != "q"}, "file": file}
    return entries, files


def split_spectra(spectra: dict[str, dict]) -> tuple[dict[str, dict], dict[str, dict]]:
    """Return ({name: {"file": ...}}, {file name: spectra}): each matrix's spectra on demand.

    A view shows one matrix; at 32 layers of 32 heads its heads' spectra (128 values each)
    were 7.7 MB of a 7.8 MB page. File `weights-spectrum-I` (I: the matrix's index in name
    order) holds `spectrum_data`'s entry of that matrix.
    """
    entries, files = {}, {}
    for index, name in enumerate(sorted(spectra)):
        file = f"weights-spectrum-{index}"
        files[file] = spectra[name]
        entries[name] = {"file": file}
    return entries, files


def spectrum_data(tables: dict) -> dict[str, dict]:
    """Return per matrix name its singular values and those of its heads, rounded."""
    heads = tables.get("weights_head_singular_values", {})
    out = {}
    for name, points in tables["weights_singular_values"].items():
        out[name] = {
            "whole": [[r, sig(s)] for r, s in points],
            "heads": [
                {
                    "series": h["series"],
                    "head": h["head"],
                    "points": [[r, sig(s)] for r, s in h["points"]],
                }
                for h in heads.get(name, [])
            ],
        }
    return out


def histogram_data(groups: list[dict]) -> dict[str, dict]:
    """Return per group its label, shared edges and each tensor's fractions, rounded."""
    return {
        g["group"]: {
            "label": g["label"],
            "edges": [sig(e, 5) for e in g["edges"]],
            "series": [
                {"label": s["label"], "order": s["order"], "f": [sig(f, 3) for f in s["fractions"]]}
                for s in g["series"]
            ],
        }
        for g in groups
    }


def band_data(rows: list[dict]) -> dict[str, list[dict]]:
    """Return the 1-D tensor quantile rows per group, with `series` = the tensor's short name."""
    keep = ("block", "order", "mean", "std", "q05", "q25", "q50", "q75", "q95")
    out: dict[str, list[dict]] = {}
    for row in rows:
        item = {k: sig(row[k]) if isinstance(row[k], float) else row[k] for k in keep}
        out.setdefault(row["group"], []).append({**item, "series": row["tensor"]})
    return out


def by_role(rows: list[dict], fields: tuple[str, ...]) -> dict[str, list[dict]]:
    """Group rows by `role`, keeping `fields` (floats rounded)."""
    out: dict[str, list[dict]] = {}
    for row in rows:
        item = {k: sig(row[k]) if isinstance(row[k], float) else row[k] for k in fields}
        out.setdefault(row["role"], []).append(item)
    return out


def embedding_data(geometry: dict) -> dict | None:
    """Return the embedding sample columnar: tokens, ids, counts, flattened PCA/t-SNE coords."""
    if not geometry:
        return None
    points = geometry["points"]
    return {
        "tokens": [p["token"] for p in points],
        "ids": [p["id"] for p in points],
        "counts": [p["count"] for p in points],
        "pca": [sig(v, 4) for p in points for v in p["pca"]],
        "tsne": [sig(v, 4) for p in points for v in p["tsne"]],
    }


def role_options(rows: list[dict]) -> list[list[str]]:
    """Return [role, label] of the roles present in `rows`, in a fixed role order."""
    order = ("query", "key", "value", "attn_out")
    present = {row["role"]: row["role_label"] for row in rows}
    return [[role, present[role]] for role in order if role in present]


def weights_context(artifacts: Artifacts, tables: dict) -> dict:
    """Context of the weights page: tables, selector options, chart specs and page data."""
    section = artifacts.manifest.get("weights")
    if not section or "weights_tensors" not in tables:
        return {"weights": None, "charts": [], "panel": {}}
    blocks, matrices = matrix_options(tables["weights_matrices"])
    in_blocks = [r["block"] for r in tables["weights_matrices"] if r["order"] >= 0]
    first_block = in_blocks[0] if in_blocks else (blocks[0] if blocks else "")
    in_layer = [r for r in tables["weights_spectra"] if r["in_layer"]]
    d_head = int(section["settings"]["d_head"])
    n_heads = max((h["head"] + 1 for h in section["heads"]), default=0)
    geometry = tables.get("weights_embeddings") or None
    data = {
        "histograms": histogram_data(tables["weights_histograms"]),
        "bands": band_data(tables["weights_vector_bands"]),
        "matrices": matrices,
        "heatmaps": heatmap_data(artifacts, section),
        "spectra": spectrum_data(tables),
        "heads": by_role(
            tables["weights_heads"],
            ("block", "order", "head", "effective_rank", "stable_rank", "sigma_max", "frobenius"),
        ),
        "headmap": by_role(tables["weights_head_projection"], ("block", "order", "head", "x", "y")),
        "embedding": embedding_data(geometry),
    }
    output = tables.get("weights_output_embeddings") or {}
    data["output_embedding"] = embedding_data(output) if output.get("points") else None
    figures = {
        "components": chart(
            "weights-components",
            charts.component_counts_chart(tables["weights_by_component"]),
            "Bar chart of parameter counts per component",
            "Parameters per component (embeddings, attention, MLP, norms, pooler, task head), "
            "labelled with their share of the model.",
        ),
        "blocks": chart(
            "weights-blocks",
            charts.block_counts_chart(tables["weights_by_block"]),
            "Stacked bar chart of parameter counts per layer, coloured by component",
            "Parameters per block: the embeddings, each transformer layer, then what follows the "
            "layers (final norm, pooler, task head)."
            + thin_note(tables["weights_by_block"], "component"),
        ),
        "histograms": chart(
            "weights-histograms",
            charts.histogram_chart(),
            "Histograms of weight values of one matrix type, one line per layer",
            "Fraction of each tensor's entries per bin. All tensors of a type share the same "
            f"{section['settings']['histogram_bins']} bins (spanning the 0.05–99.95 % quantiles "
            "of all of them; entries beyond count in the end bins), so layers compare directly; "
            "colour runs from the first layer (dark) to the last (yellow).",
            interactive=True,
        ),
        "bands": chart(
            "weights-bands",
            charts.band_chart("value"),
            "Quantile bands of biases and norm gains across layers",
            "Per layer: median (line), 25–75 % (dark band) and 5–95 % (light band) of the "
            "entries of each bias or norm vector.",
            interactive=True,
        ),
        "depth": chart(
            "weights-depth",
            charts.depth_metrics_chart(in_layer),
            "Line charts of effective rank, stable rank and power-law exponent across layers",
            "Per weight matrix across depth: effective rank (Roy & Vetterli) as a fraction of "
            "the full rank, stable rank ‖W‖_F²/‖W‖_2², and the power-law exponent α of the "
            "eigenvalue density of WᵀW (tail fitted by maximum likelihood, x_min by KS "
            f"distance; only for matrices with ≥ {section['settings']['min_eigenvalues']} "
            "eigenvalues).",
        ),
        "heatmap": chart(
            "weights-heatmap",
            canvas_beyond(
                charts.heatmap_chart(),
                max((math.prod(e["size"]) for e in data["heatmaps"].values()), default=0),
            ),
            "Heatmap of the selected weight matrix",
            "Rows are input units, columns output units ([in, out]); attention heads are "
            "column bands of W_Q/W_K/W_V and row bands of W_O. Large matrices are reduced "
            f"to at most {section['settings']['heatmap_limit']}×"
            f"{section['settings']['heatmap_limit']} by block max-abs pooling: each cell shows "
            "the signed entry of largest magnitude in its block, so outliers stay visible. "
            "The axes count rows and columns of the original matrix; dark lines mark where "
            "one head's band ends and the next begins (thick: between the query, key and "
            "value thirds of a fused kernel).",
            interactive=True,
        ),
        "singular": chart(
            "weights-singular",
            charts.singular_values_chart(n_heads),
            "Log-log plot of the singular values of the selected matrix and of its heads",
            "Singular values by rank of the whole matrix (thick dark line) and, for attention "
            "projections, of each head's slice (thin lines, one colour per head).",
            interactive=True,
        ),
        "heads": chart(
            "weights-heads",
            charts.head_ranks_chart(d_head),
            "Grid of per-head effective ranks, layers by heads",
            "Effective rank of each head's slice of the selected projection (d_model × d_head "
            f"for W_Q/W_K/W_V, d_head × d_model for W_O). The colour scale runs from 0 to "
            f"d_head = {d_head}, the most a slice can have; hover a cell for its value.",
            interactive=True,
        ),
        "headmap": chart(
            "weights-headmap",
            charts.head_map_chart(),
            "Scatter plot of attention heads by their weights, coloured by layer",
            "Each point is one head: its slice of the selected projection, flattened and scaled "
            "to unit norm, projected on the first two principal components of all heads of that "
            "projection (heads that read or write similar directions land close together).",
            interactive=True,
        ),
    }
    if data["embedding"]:
        figures["embedding"] = chart(
            "weights-embedding",
            charts.embedding_map_chart(),
            "Scatter plot of sampled token embeddings in two dimensions",
            "Each point is a token's embedding vector; hover to see the token. PCA: the first "
            "two principal components of the sample. t-SNE: cosine distance, perplexity 30, "
            "seed 0. Red: tokens that occur in the corpus.",
            interactive=True,
        )
    figures.update(embedding_figures(tables.get("weights_embedding_norms") or [], output))
    options = {
        "histogram_groups": [[g["group"], g["label"]] for g in tables["weights_histograms"]],
        "band_groups": [
            list(pair)
            for pair in dict.fromkeys(
                (r["group"], r["label"]) for r in tables["weights_vector_bands"]
            )
        ],
        "head_roles": role_options(tables["weights_heads"]),
        "headmap_roles": role_options(tables["weights_head_projection"]),
        "first_matrices": matrices[first_block] if blocks else [],
    }
    shown = {
        "bands": bool(options["band_groups"]),
        "heads": bool(options["head_roles"]),
        "headmap": bool(options["headmap_roles"]),
        "heatmap": bool(options["first_matrices"]),
        "singular": bool(options["first_matrices"]),
    }
    figures = {key: item for key, item in figures.items() if shown.get(key, True)}
    add_figure_specs(figures, data, options)
    gradients, gradient_figures, data["gradients"], gradient_rows = gradient_section(tables)
    for key, (rows, title) in gradient_rows.items():
        spec = gradient_figures[key]["spec"]
        gradient_figures[key]["figure_spec"] = filled(spec, rows, title) if rows else None
    figures.update(gradient_figures)
    data["heatmaps"], heatmap_files = split_heatmaps(data["heatmaps"])
    data["spectra"], spectrum_files = split_spectra(data["spectra"])
    return {
        "data_files": {**heatmap_files, **spectrum_files},
        "weights": {
            "settings": section["settings"],
            "tensors": tables["weights_tensors"],
            "components": tables["weights_by_component"],
            **options,
            "blocks": blocks,
            "first_block": first_block,
            "shared_blocks": tables.get("weights_shared_blocks", []),
            "n_layers": int(artifacts.manifest["model"]["config"]["n_layers"]),
            "explained": _explained(tables["weights_head_projection"]),
            "geometry": geometry,
            "gradients": gradients,
            "output": output,
            "gradients_skipped": (artifacts.manifest.get("gradients") or {}).get("skipped"),
            "truncated_spectra": truncated_spectra(section),
            "data": data,
        },
        "charts": list(figures.values()),
        "panel": figures,
    }


def truncated_spectra(section: dict) -> list[dict]:
    """Return the matrices whose spectrum is truncated: name, k, full rank, rank intervals."""
    return [
        {
            "name": m["name"],
            "k": m["spectrum_rank"],
            "rank": m["spectrum_full_rank"],
            "stable": m["stable_rank_interval"],
            "effective": m["effective_rank_interval"],
        }
        for m in section["matrices"]
        if m.get("spectrum_method") == "truncated"
    ]


def embedding_figures(norms: list[dict], output: dict) -> dict:
    """Describe the row-norm chart of the embeddings and, untied, the output embedding's charts."""
    figures = {}
    if norms:
        untied = output.get("status") == "untied"
        figures["embedding_norms"] = chart(
            "weights-embedding-norms",
            embedding_charts.norm_histogram_chart(norms),
            "Distribution of the L2 norms of the embedding rows",
            "Share of the vocabulary per bin of row norm "
            + (
                "for the input embedding and the LM head's own output embedding (shared bins)."
                if untied
                else "of the token-embedding matrix."
            ),
        )
    if output.get("points"):
        figures["output_embedding"] = chart(
            "weights-output-embedding",
            charts.embedding_map_chart(),
            "Scatter plot of sampled output-embedding rows in two dimensions",
            "The LM head's row of each sampled token (the same tokens as the input map): PCA, "
            "or t-SNE with cosine distance, perplexity 30, seed 0. Red: tokens in the corpus.",
            interactive=True,
        )
    if output.get("cosine"):
        figures["io_cosine"] = chart(
            "weights-io-cosine",
            embedding_charts.cosine_histogram_chart(output["cosine"]),
            "Histogram of the cosine between each token's input and output embedding",
            "For every token of the vocabulary, the cosine similarity between its input "
            "embedding row and its output (unembedding) row: near 1, the head reads tokens as "
            "the embedding writes them.",
        )
    return figures


# --- Figures: the page's first view, with its rows filled in (mirrors weights.js) -----------


def histogram_rows(group: dict) -> list[dict]:
    """Return the chart rows of one histogram group (mirrors `histogramRows`)."""
    edges = group["edges"]
    return [
        {
            "label": series["label"],
            "order": series["order"],
            "x": (edges[b] + edges[b + 1]) / 2,
            "start": edges[b],
            "end": edges[b + 1],
            "fraction": fraction,
        }
        for series in group["series"]
        for b, fraction in enumerate(series["f"])
    ]


def _span(start: int, size: int, total: int) -> str:
    end = min(start + size, total) - 1
    return f"{start}–{end}" if end > start else str(start)


def heatmap_rows(entry: dict) -> list[dict]:
    """Return the cells and head-band boundaries of one packed heatmap (mirrors `heatmapRows`).

    A cell spans the original rows [r0, r1) and columns [c0, c1) of the block it pools; its
    `relative` (the colour) is w / the matrix's max |w|.
    """
    rows, cols = entry["size"]
    levels = np.frombuffer(base64.b64decode(entry["q"]), dtype=np.int8).reshape(rows, cols)
    (br, bc), shape = entry["block"], entry["shape"]
    peak = float(np.abs(levels).max(initial=0))  # the colour: w / max |w| = level / max |level|
    cells = [
        {
            "kind": "cell",
            "r0": r * br,
            "r1": min((r + 1) * br, shape[0]),
            "c0": c * bc,
            "c1": min((c + 1) * bc, shape[1]),
            "w": float(levels[r, c]) / HEATMAP_LEVELS * entry["scale"],
            "relative": float(levels[r, c]) / peak if peak > 0 else 0.0,
            "rows": _span(r * br, br, shape[0]),
            "cols": _span(c * bc, bc, shape[1]),
        }
        for r in range(rows)
        for c in range(cols)
    ]
    return cells + boundary_rows(entry.get("bands"))


def boundary_rows(bands: dict | None) -> list[dict]:
    """Return the rule rows of a matrix's head bands (mirrors `boundaryRows`)."""
    if not bands:
        return []
    unit = "columns" if bands["axis"] == "c" else "rows"
    rows = [
        {
            "kind": "boundary",
            "axis": bands["axis"],
            "at": at,
            "major": False,
            "what": f"between heads ({unit})",
        }
        for at in bands["at"]
    ]
    return rows + [
        {
            "kind": "boundary",
            "axis": bands["axis"],
            "at": at,
            "major": True,
            "what": "between query, key and value",
        }
        for at in bands["major"]
    ]


def spectrum_rows(entry: dict | None) -> list[dict]:
    """Return the singular-value rows of one matrix and its heads (mirrors `spectrumRows`)."""
    if not entry:
        return []
    rows = [
        {"series": "whole matrix", "whole": True, "head": None, "rank": r, "sigma": s}
        for r, s in entry["whole"]
    ]
    for head in entry["heads"]:
        rows += [
            {"series": head["series"], "whole": False, "head": head["head"], "rank": r, "sigma": s}
            for r, s in head["points"]
        ]
    return [row for row in rows if row["sigma"] and row["sigma"] > 0]


def embedding_rows(embedding: dict, method: str) -> list[dict]:
    """Return the points of the embedding map for `method` (mirrors `embeddingRows`)."""
    coords = embedding[method]
    return [
        {
            "x": coords[2 * i],
            "y": coords[2 * i + 1],
            "token": token,
            "id": embedding["ids"][i],
            "count": embedding["counts"][i],
            "source": "in corpus" if embedding["counts"][i] > 0 else "not in corpus",
        }
        for i, token in enumerate(embedding["tokens"])
    ]


def filled(spec: dict, rows: list[dict], title: str) -> dict:
    """Return a copy of an interactive chart's spec with its rows and a title, for export."""
    return {**spec, "datasets": {charts.ROWS: rows}, "title": title}


def add_figure_specs(figures: dict, data: dict, options: dict) -> None:
    """Give every interactive chart a `figure_spec`: the page's first view, rows filled in."""
    first = {key: value[0] for key, value in options.items() if value}
    builders = {
        "histograms": lambda: (
            histogram_rows(data["histograms"][first["histogram_groups"][0]]),
            first["histogram_groups"][1],
        ),
        "bands": lambda: (data["bands"][first["band_groups"][0]], first["band_groups"][1]),
        "heads": lambda: (
            data["heads"][first["head_roles"][0]],
            f"Effective rank per head: {first['head_roles'][1]}",
        ),
        "heatmap": lambda: (
            heatmap_rows(data["heatmaps"][first["first_matrices"][0]]),
            first["first_matrices"][0],
        ),
        "singular": lambda: (
            spectrum_rows(data["spectra"].get(first["first_matrices"][0])),
            f"Singular values: {first['first_matrices'][0]}",
        ),
        "headmap": lambda: (
            data["headmap"][first["headmap_roles"][0]],
            f"Heads by their weights: {first['headmap_roles'][1]}",
        ),
        "embedding": lambda: (embedding_rows(data["embedding"], "tsne"), "Token embeddings, t-SNE"),
        "output_embedding": lambda: (
            embedding_rows(data["output_embedding"], "tsne"),
            "Output embeddings (unembedding rows), t-SNE",
        ),
    }
    for key, build in builders.items():
        if key in figures:
            rows, title = build()
            figures[key]["figure_spec"] = (
                filled(figures[key]["spec"], rows, title) if rows else None
            )
    if figures.get("heatmap", {}).get("figure_spec"):
        size = data["heatmaps"][first["first_matrices"][0]]["size"]
        width, height = charts.heatmap_size(*size)
        figures["heatmap"]["figure_spec"].update(width=width, height=height)


def _explained(rows: list[dict]) -> dict[str, list[float]]:
    """Return per role the variance fractions of the head map's two components."""
    return {r["role"]: [r["explained_x"], r["explained_y"]] for r in rows}


PAGE = Page(
    "weights.html",
    "Weights",
    "model_weights.html",
    weights_context,
    scripts=("selectors.js", "weights.js"),
    analysis="weights",
)
