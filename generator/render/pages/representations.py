"""Representations page: which layer separates the labels, and does it generalise?

Shows held-out probe accuracy (with a control task, selectivity and a bag-of-tokens baseline)
and silhouette against depth, 2-D maps (PCA / t-SNE) of the sequence embeddings for every
layer, pooling and checkpoint, anisotropy, layer-to-layer CKA and 2-D maps of the showcase
examples' tokens. Map coordinates travel packed (base64 int16). Wording about checkpoints
appears only when the card has checkpoints.
"""

from __future__ import annotations

import base64

import numpy as np

from generator.artifacts import Artifacts
from generator.render.charts import representations as charts
from generator.render.pages.common import Page, chart
from generator.render.pages.representation_links import link_data, misclassified_view
from generator.showcase_rows import showcase_texts

TEXT_LIMIT = 200  # characters of a text kept for tooltips
QUANT = 32767  # int16 steps per unit of a map's scale
UNLABELLED = "(no label)"
NO_SPLIT = "(no split)"
ACCURACY_METRICS = ["linear probe", "k-NN", "control task"]


def pack(values: np.ndarray, scale: float) -> str:
    """Pack coordinates as base64 little-endian int16 steps of `scale` / 32767."""
    steps = np.rint(np.asarray(values, dtype=np.float64) / scale * QUANT) if scale > 0 else values
    return base64.b64encode(np.asarray(steps, dtype="<i2").tobytes()).decode("ascii")


def _scale(values: list[list[float]]) -> float:
    return float(max((abs(v) for column in values for v in column), default=0.0)) or 1.0


def packed_maps(rows: list[dict], checkpoints: list[str], layers: int) -> dict:
    """Group projection rows as maps[pooling][method][layer] with one packed map per checkpoint.

    Each entry: {scale: [sx, sy], extent: [xmin, xmax, ymin, ymax] over all checkpoints,
    maps: [[base64 x, base64 y] per checkpoint], explained: [[ratios] per checkpoint] or None,
    constant: [true where every text has the same vector, per checkpoint]}; None where a
    method has no map for some checkpoint (t-SNE on too few texts or constant vectors).
    """
    grouped: dict[tuple, dict[str, dict]] = {}
    for row in rows:
        key = (row["pooling"], row["method"], row["layer"])
        grouped.setdefault(key, {})[row["checkpoint"]] = row
    out: dict[str, dict[str, list]] = {}
    for (pooling, method, layer), by_checkpoint in sorted(grouped.items()):
        entries = out.setdefault(pooling, {}).setdefault(method, [None] * layers)
        ordered = [by_checkpoint[name] for name in checkpoints if name in by_checkpoint]
        if len(ordered) != len(checkpoints):
            continue
        xs, ys = [r["x"] for r in ordered], [r["y"] for r in ordered]
        sx, sy = _scale(xs), _scale(ys)
        entries[layer] = {
            "scale": [sx, sy],
            "extent": [
                min(min(x) for x in xs),
                max(max(x) for x in xs),
                min(min(y) for y in ys),
                max(max(y) for y in ys),
            ],
            "maps": [[pack(r["x"], sx), pack(r["y"], sy)] for r in ordered],
            "explained": [r["explained"] for r in ordered] if method == "pca" else None,
            "constant": [bool(r.get("constant")) for r in ordered],
        }
    return out


def corpus_points(artifacts: Artifacts) -> dict:
    """Return the texts (cut to TEXT_LIMIT), label and split codes shared by every map."""
    texts = [str(t) for t in artifacts.array("corpus/texts")]
    texts = [t if len(t) <= TEXT_LIMIT else t[: TEXT_LIMIT - 1] + "…" for t in texts]
    labels = (
        np.asarray(artifacts.array("corpus/labels")).astype(str)
        if artifacts.has("corpus/labels")
        else np.full(len(texts), UNLABELLED)
    )
    splits = (
        np.asarray(artifacts.array("corpus/splits")).astype(str)
        if artifacts.has("corpus/splits")
        else np.full(len(texts), NO_SPLIT)
    )
    label_names, label_codes = np.unique(labels, return_inverse=True)
    split_names, split_codes = np.unique(splits, return_inverse=True)
    return {
        "texts": texts,
        "label_names": label_names.tolist(),
        "labels": label_codes.tolist(),
        "split_names": split_names.tolist(),
        "splits": split_codes.tolist(),
    }


def token_data(artifacts: Artifacts, tokens: dict) -> dict:
    """Return the token map data: tokens, their example, the examples' sentences, maps per layer."""
    if not tokens["points"]:
        return {"tokens": [], "examples": [], "token_example": [], "maps": []}
    shown = showcase_texts(artifacts)
    labelled = artifacts.has("corpus/labels")
    examples = []
    for example in sorted({p["example"] for p in tokens["points"]}):
        item = shown[example]
        text = item.text if len(item.text) <= TEXT_LIMIT else item.text[: TEXT_LIMIT - 1] + "…"
        label = f"[{item.label}] " if labelled and item.in_corpus else ""
        examples.append(f"{example + 1}. {label}{text}")
    return {
        "tokens": [p["token"] for p in tokens["points"]],
        "token_example": [p["example"] for p in tokens["points"]],
        "examples": examples,
        "maps": tokens["maps"],
    }


def accuracy_rows(separability: list[dict], reference: str) -> list[dict]:
    """Rows of the accuracy chart: probes and control task of the reference model.

    Linear-probe rows carry the selectivity (and its SE) of their layer and pooling.
    """
    selectivity = {
        (r["pooling"], r["layer"]): r
        for r in separability
        if r["checkpoint"] == reference and r["metric"] == "selectivity"
    }
    rows = []
    for r in separability:
        if r["checkpoint"] != reference or r["metric"] not in ACCURACY_METRICS:
            continue
        extra = (
            selectivity.get((r["pooling"], r["layer"])) if r["metric"] == "linear probe" else None
        )
        rows.append(
            {
                **r,
                "constant": bool(r.get("constant")),
                "selectivity": extra["value"] if extra else None,
                "selectivity_se": extra["se"] if extra else None,
            }
        )
    return rows


def probe_table(separability: list[dict], reference: str, lexical: dict | None) -> list[dict]:
    """Per pooling and layer of the reference: linear probe, control, selectivity, vs lexical.

    Each row: {pooling, layer, constant, linear, control, selectivity, over_lexical}, the
    scores as (value, se) pairs (None when missing); `over_lexical` is the linear-probe
    accuracy minus the bag-of-tokens baseline's.
    """
    cells: dict[tuple, dict] = {}
    for r in separability:
        if r["checkpoint"] != reference or r["metric"] == "silhouette":
            continue
        cell = cells.setdefault(
            (r["pooling"], r["layer"]),
            {"pooling": r["pooling"], "layer": r["layer"], "constant": bool(r.get("constant"))},
        )
        cell[r["metric"]] = (r["value"], r["se"])
    rows = []
    for cell in cells.values():
        linear = cell.get("linear probe")
        rows.append(
            {
                "pooling": cell["pooling"],
                "layer": cell["layer"],
                "constant": cell["constant"],
                "linear": linear,
                "control": cell.get("control task"),
                "selectivity": cell.get("selectivity"),
                "over_lexical": None
                if linear is None or lexical is None
                else linear[0] - lexical["accuracy"],
            }
        )
    return rows


def layer_zero(separability: list[dict], reference: str, pooling: str) -> dict | None:
    """Return the layer-0 linear-probe row of `pooling` (reference model), unless constant."""
    return next(
        (
            r
            for r in separability
            if (r["checkpoint"], r["pooling"], r["layer"], r["metric"])
            == (reference, pooling, 0, "linear probe")
            and not r.get("constant")
        ),
        None,
    )


def map_caption(several: bool) -> str:
    """Caption of the sequence-embedding map; alignment across checkpoints only when there are."""
    text = (
        "Each point is one text, coloured by label and shaped by split; hover for the text, "
        "click it for its details and nearest neighbours."
    )
    if several:
        text += (
            " PCA axes come from the card's own model and every checkpoint is projected on "
            "them; t-SNE maps of checkpoints are rotated, scaled and shifted onto its map "
            "(Procrustes). The axis ranges are shared by all checkpoints, so the points visibly "
            "move."
        )
    return text


def representations_context(artifacts: Artifacts, tables: dict) -> dict:
    """Context of the representations page: summary, charts and the packed page data."""
    summary = tables.get("representation_summary")
    if not summary:
        return {"reps": None, "figures": {}, "charts": [], "rep_data": None}
    checkpoints, reference = summary["checkpoints"], summary["reference"]
    several = len(checkpoints) > 1
    poolings = summary["poolings"]
    lexical = summary.get("lexical")
    separability = tables["representation_separability"]
    points = corpus_points(artifacts)
    tokens = token_data(artifacts, tables["representation_tokens"])
    figures = {
        "map": chart(
            "rep-map",
            charts.embedding_map_chart(points["label_names"], points["split_names"]),
            "Scatter plot of the sequence embeddings of one layer in two dimensions",
            map_caption(several),
            interactive=True,
        ),
        "cka": chart(
            "rep-cka",
            charts.cka_heatmap_chart(),
            "Heatmap of linear CKA between every pair of layers",
            "Linear CKA between the pooled sequence embeddings of two layers over all texts "
            f"(selected {'checkpoint and ' if several else ''}pooling): 1 means the layers "
            "hold the same information up to rotation and scale. Blank: a layer whose vector "
            "is the same for every text (e.g. [CLS] at the embedding layer), where CKA is "
            "undefined.",
            interactive=True,
        ),
    }
    protocol = summary["protocol"]
    if protocol is not None:
        accuracy = accuracy_rows(separability, reference)
        metrics = [m for m in ACCURACY_METRICS if any(r["metric"] == m for r in accuracy)]
        figures["separability"] = chart(
            "rep-separability",
            charts.separability_chart(accuracy, protocol["chance"], poolings, lexical, metrics),
            "Line chart of held-out probe accuracy by layer, with a control task and baselines",
            f"Linear probe, k-NN and control-task accuracy, {protocol['description']}; bars are "
            "±1 standard error, the dashed line is chance (the majority-class rate of the "
            "scored texts)"
            + (", the dotted line the bag-of-tokens baseline" if lexical else "")
            + "; a red cross marks a layer whose vector is the same for every text; the grey "
            "band marks the selected layer; hover a linear-probe point for its selectivity.",
            interactive=True,
        )
        silhouettes = [
            r
            for r in separability
            if r["checkpoint"] == reference
            and r["metric"] == "silhouette"
            and r["value"] is not None
        ]
        if silhouettes:
            figures["silhouette"] = chart(
                "rep-silhouette",
                charts.silhouette_chart(silhouettes, poolings),
                "Line chart of the silhouette score of the labels by layer",
                "Cosine silhouette of the labels on the scored texts: above 0, texts are closer "
                "to their own label's texts than to the nearest other label's.",
                interactive=True,
            )
        if len(checkpoints) > 1:
            linear = [r for r in separability if r["metric"] == "linear probe"]
            figures["checkpoints"] = chart(
                "rep-checkpoints",
                charts.checkpoint_probe_chart(linear, checkpoints, protocol["chance"], lexical),
                "Line chart of linear-probe accuracy by layer for every checkpoint",
                "Held-out linear-probe accuracy of every checkpoint, in the card's order "
                f"(the card's own model, {reference}, last).",
            )
    if tables["representation_anisotropy"]:
        figures["anisotropy"] = chart(
            "rep-anisotropy",
            charts.anisotropy_chart(tables["representation_anisotropy"], checkpoints),
            "Line chart of the mean cosine similarity of token pairs by layer",
            "Mean cosine similarity over every pair of token vectors from different texts "
            "(anisotropy: 0 for directions spread evenly, near 1 when all vectors share one "
            "direction) and from the same text; exact over the whole corpus, special tokens "
            "included.",
        )
    if len(checkpoints) > 1:
        figures["drift"] = chart(
            "rep-drift",
            charts.cka_to_reference_chart(
                tables["representation_cka_to_reference"], checkpoints, reference
            ),
            f"Line chart of linear CKA between each checkpoint and {reference}, per layer",
            f"Linear CKA between each checkpoint's layer and the same layer of {reference}: "
            "where a checkpoint's representations differ most.",
        )
    if tokens["maps"]:
        figures["tokens"] = chart(
            "rep-tokens",
            charts.token_map_chart(tokens["examples"]),
            "Scatter plot of the showcase examples' token vectors in two dimensions",
            "Contextual token vectors of the showcase examples at the selected layer"
            + (" (card's own model)" if several else "")
            + ", PCA fitted on these tokens per layer; colour = sentence (legend below the "
            "chart); only the chosen sentence's tokens are labelled, hover any point for its "
            "token and sentence. Special tokens ([CLS], [SEP], <s>...) are left out: their "
            "outlying vectors would squeeze the others into a corner.",
            interactive=True,
        )
    first = first_view(summary)
    add_figure_specs(figures, tables, points, tokens, first, reference=reference)
    constant = summary.get("constant", [])
    data = {
        **points,
        "checkpoints": checkpoints,
        "poolings": poolings,
        "layers": summary["layers"],
        "maps": packed_maps(tables["representation_projections"], checkpoints, summary["layers"]),
        "cka": cka_table(tables["representation_cka"]),
        "token_map": tokens,
        "constant": [[c["checkpoint"], c["pooling"], c["layer"], c["reason"]] for c in constant],
        **link_data(artifacts, tables, points["label_names"]),
    }
    # "charts": the same chart descriptions, for the figure export (it adds download links).
    table = probe_table(separability, reference, lexical) if protocol is not None else []
    return {
        "reps": summary,
        "several": several,
        "lexical": lexical,
        "layer_zero": layer_zero(separability, reference, first["pooling"]),
        "probe_table": table,
        "constant_layers": [c for c in constant if c["checkpoint"] == reference],
        "first_view": first,
        "figures": figures,
        "charts": list(figures.values()),
        "rep_data": data,
        "misclassified": misclassified_view(tables, points["texts"], first, summary),
    }


def first_view(summary: dict) -> dict:
    """Return the view the page opens on: first pooling, its best layer (else the last), PCA."""
    pooling = summary["poolings"][0]
    best = summary["best"].get(pooling)
    return {"pooling": pooling, "layer": best["layer"] if best else summary["layers"] - 1}


def _filled(spec: dict, **datasets: list[dict]) -> dict:
    """Return a copy of `spec` with the named datasets' rows filled in."""
    return {**spec, "datasets": {**spec.get("datasets", {}), **datasets}}


def cka_table(rows: list[dict]) -> list[list]:
    """Return the CKA table compactly for the page: [checkpoint, pooling, layer_a, layer_b, cka]."""
    return [[r["checkpoint"], r["pooling"], r["layer_a"], r["layer_b"], r["cka"]] for r in rows]


def cka_rows(cka: list[list], checkpoint: str, pooling: str) -> list[dict]:
    """Return the CKA heatmap's rows of one checkpoint and pooling (as `ckaRows` in the script)."""
    return [
        {"layer_a": a, "layer_b": b, "cka": value}
        for name, kind, a, b, value in cka
        if name == checkpoint and kind == pooling
    ]


def map_rows(projections: list[dict], points: dict, view: dict) -> dict | None:
    """Return the map's {points, extent} of one view (`checkpoint`, `pooling`, `method`, `layer`).

    The extent spans the view's map of every checkpoint; None when the checkpoint has no map
    there. The page script draws the same points from the packed maps (`mapRows`).
    """
    key = (view["pooling"], view["method"], view["layer"])
    maps = [r for r in projections if (r["pooling"], r["method"], r["layer"]) == key]
    own = next((r for r in maps if r["checkpoint"] == view["checkpoint"]), None)
    if own is None:
        return None
    rows = [
        {
            "x": x,
            "y": y,
            "text": points["texts"][i],
            "label": points["label_names"][points["labels"][i]],
            "split": points["split_names"][points["splits"][i]],
        }
        for i, (x, y) in enumerate(zip(own["x"], own["y"], strict=True))
    ]
    xs = [x for r in maps for x in r["x"]]
    ys = [y for r in maps for y in r["y"]]
    return {"points": rows, "extent": [{"x": min(xs), "y": min(ys)}, {"x": max(xs), "y": max(ys)}]}


def token_rows(tokens: dict, layer: int, labelled: int) -> list[dict]:
    """Return the token map's rows at `layer`, the tokens of example `labelled` labelled.

    As `tokenRows` in the page script; empty when the layer has no map.
    """
    if layer >= len(tokens["maps"]):
        return []
    coordinates = tokens["maps"][layer]
    return [
        {
            "x": x,
            "y": y,
            "token": token,
            "example": tokens["examples"][example],
            "label": token if example == labelled else "",
        }
        for x, y, token, example in zip(
            coordinates["x"],
            coordinates["y"],
            tokens["tokens"],
            tokens["token_example"],
            strict=True,
        )
    ]


def add_figure_specs(
    figures: dict, tables: dict, points: dict, tokens: dict, first: dict, *, reference: str
) -> None:
    """Give every page-filled chart a `figure_spec`: the page's first view, rows filled in."""
    pooling, layer = first["pooling"], first["layer"]
    if "map" in figures:
        view = {"checkpoint": reference, "pooling": pooling, "method": "pca", "layer": layer}
        mapped = map_rows(tables["representation_projections"], points, view)
        if mapped is not None:
            figures["map"]["figure_spec"] = _filled(figures["map"]["spec"], **mapped)
    if "cka" in figures:
        rows = cka_rows(cka_table(tables["representation_cka"]), reference, pooling)
        if rows:
            figures["cka"]["figure_spec"] = _filled(figures["cka"]["spec"], cka=rows)
    if "tokens" in figures and layer < len(tokens["maps"]):
        rows = token_rows(tokens, layer, tokens["token_example"][0])
        figures["tokens"]["figure_spec"] = _filled(figures["tokens"]["spec"], tokens=rows)
    for key in ("separability", "silhouette"):
        if key in figures:
            figures[key]["figure_spec"] = _filled(figures[key]["spec"], selected=[{"layer": layer}])


PAGE = Page(
    "representations.html",
    "Representations",
    "model_representations.html",
    representations_context,
    scripts=("representations.js",),
    analysis="representations",
)
