"""Overview page: card prose, architecture, parameters per block, corpus summary."""

from __future__ import annotations

from generator.artifacts import Artifacts
from generator.render.charts import overview as charts
from generator.render.pages.common import Page, chart


def architecture_rows(manifest: dict) -> list[tuple[str, str]]:
    """Return (property, value) rows describing the architecture."""
    config = manifest["model"]["config"]
    total = sum(row["count"] for row in manifest["parameters"])
    rows = [
        ("family", config["family"]),
        ("model_type", manifest["model"]["model_type"]),
        ("layers", config["n_layers"]),
        ("attention heads per layer", config["n_heads"]),
        ("d_model (hidden size)", config["d_model"]),
        ("d_head", config["d_head"]),
        ("MLP width", config["d_mlp"]),
        ("activation", config["activation"]),
        ("vocabulary", f"{config['vocab_size']:,}"),
        ("max positions", _positions(config)),
        ("parameters", f"{total:,}"),
        ("forward dtype / stored dtype", f"{manifest['dtype']} / {manifest['store_dtype']}"),
    ]
    if "n_decoder_layers" in config:  # encoder-decoder (T5)
        rows[2:3] = [
            ("encoder layers", config["n_layers"]),
            ("decoder layers", config["n_decoder_layers"]),
        ]
        rows.insert(-2, ("MLP kind", config.get("feed_forward_proj", config["activation"])))
        scaled = (
            "scaled by d_model^-0.5 first" if config.get("scale_decoder_outputs") else "unscaled"
        )
        rows.insert(-2, ("decoder output to LM head", scaled))
    return [(name, str(value)) for name, value in rows + family_rows(config)]


def family_rows(config: dict) -> list[tuple[str, str]]:
    """Return the rows that only some families have: attention kind, positions, windows, heads."""
    kind = "causal (decoder)" if config.get("causal") else "bidirectional"
    if config.get("family") == "xlnet":
        kind += ", relative positions (Transformer-XL: distance i - j, r_w/r_r/r_s biases)"
    rows = [("attention", kind)]
    kv_heads = config.get("n_kv_heads")
    if kv_heads and kv_heads != config["n_heads"]:
        kind = "multi-query" if kv_heads == 1 else "grouped-query"
        rows.append(("key/value heads", f"{kv_heads} ({kind})"))
    rope = config.get("rope")
    if rope:
        rows.append(("positions", f"rotary ({rope['rope_type']}, theta {rope['theta']:g})"))
    windows = [w for w in config.get("sliding_windows") or [] if w]
    if windows:
        layers = sum(1 for w in config["sliding_windows"] if w)
        rows.append(
            ("sliding window", f"{windows[0]} tokens on {layers} of {config['n_layers']} layers")
        )
    blocks = config.get("layer_blocks")
    if blocks:  # ALBERT: factorised embeddings, layers apply shared blocks of weights
        rows.append(("embedding size", f"{config['embedding_size']} (projected to d_model)"))
        distinct = len(set(blocks))
        rows.append(
            (
                "shared layers",
                f"{config['n_layers']} layers apply {distinct} shared block"
                f"{'' if distinct == 1 else 's'} of weights ({config['n_groups']} group"
                f"{'' if config['n_groups'] == 1 else 's'} × {config['inner_group_num']})",
            )
        )
    if config.get("heads"):
        rows.append(("output heads", ", ".join(config["heads"])))
    if config.get("attention_note"):  # XLNet: the content stream; the query stream is not shown
        rows.append(("attention probes", config["attention_note"]))
    return rows


def _positions(config: dict) -> str:
    """Describe the position limit; relative-position models (T5) have none."""
    if config.get("max_positions") is None:
        buckets = config.get("relative_buckets")
        extra = f": {buckets} buckets up to distance {config.get('relative_max_distance')}"
        return "none (relative positions" + (extra if buckets else "") + ")"
    return f"{config['max_positions']:,}"


HUB_CARD_LABELS = {
    "license": "license",
    "base_model": "base model",
    "datasets": "datasets",
    "language": "language",
}


def hub_card_rows(manifest: dict) -> list[tuple[str, str]]:
    """Return (label, values) rows of the checkpoint's hub-card metadata ([] when it has none)."""
    metadata = manifest["model"].get("hub_card") or {}
    return [
        (label, ", ".join(metadata[key]))
        for key, label in HUB_CARD_LABELS.items()
        if key in metadata
    ]


def overview_context(artifacts: Artifacts, tables: dict) -> dict:
    """Context of the overview page: architecture, parameter chart, corpus summary."""
    manifest = artifacts.manifest
    figures = [
        chart(
            "parameters",
            charts.parameter_counts_chart(tables["parameter_counts"]),
            "Bar chart of parameter counts per block, coloured by component",
            "Parameters per block: embeddings, each transformer layer, and the pooler."
            + charts.thin_note(tables["parameter_counts"], "kind"),
        )
    ]
    corpus = manifest.get("corpus")
    if corpus:
        figures.append(
            chart(
                "lengths",
                charts.length_histogram_chart(tables["length_histogram"], corpus["max_length"]),
                "Histogram of tokens per text",
                "Tokens per text after tokenisation, special tokens "
                "included; texts longer than max_length are truncated (a dashed rule marks it when "
                "texts come near it).",
            )
        )
        if tables["label_counts"]:
            figures.append(
                chart(
                    "labels",
                    charts.label_counts_chart(tables["label_counts"]),
                    "Bar chart of texts per label",
                    "Texts per label and split.",
                )
            )
    return {
        "architecture": architecture_rows(manifest),
        "hub_card": hub_card_rows(manifest),
        "corpus": corpus,
        "facts": tables.get("corpus_facts"),
        "charts": figures,
    }


PAGE = Page("index.html", "Overview", "model_overview.html", overview_context)
