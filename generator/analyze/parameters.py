"""Group the parameter inventory by component and layer."""

from __future__ import annotations

import re

LAYER = re.compile(r"(?:^|\.)(?:layer|layers|h|block)\.(\d+)\.")

# First matching rule wins: (substring of the dotted name, component kind).
KIND_RULES = (
    ("mlm_head", "head"),
    ("nsp_head", "head"),
    ("rtd_head", "head"),
    ("lm_head", "head"),
    ("classifier", "head"),
    ("score.out", "head"),
    ("embed", "embeddings"),
    ("wte", "embeddings"),
    ("wpe", "embeddings"),
    ("pooler", "pooler"),
    ("LayerNorm", "norms"),
    ("layernorm", "norms"),
    ("norm", "norms"),
    ("ln_", "norms"),
    ("attention", "attention"),
    ("attn", "attention"),
    ("intermediate", "mlp"),
    ("mlp", "mlp"),
    ("output.dense", "mlp"),
)


def component_kind(name: str) -> str:
    """Classify a parameter by its dotted name: embeddings, attention, mlp, norms, pooler, head, other."""
    for needle, kind in KIND_RULES:
        if needle in name:
            return kind
    return "other"


def layer_of(name: str) -> int | None:
    """Return the transformer layer index in a dotted parameter name, or None outside layers."""
    match = LAYER.search(name)
    return int(match.group(1)) if match else None


def parameter_table(inventory: list[dict]) -> list[dict]:
    """Return one row per tensor: name, shape, count, share of the model, kind, layer."""
    total = sum(row["count"] for row in inventory) or 1
    return [
        {
            "name": row["name"],
            "shape": "×".join(str(s) for s in row["shape"]),
            "count": row["count"],
            "share": row["count"] / total,
            "kind": component_kind(row["name"]),
            "layer": layer_of(row["name"]),
        }
        for row in inventory
    ]


def counts_by_component(inventory: list[dict]) -> list[dict]:
    """Return parameter counts per (block, kind); block is 'layer N' or the component outside layers."""
    totals: dict[tuple[int, str, str], int] = {}
    for row in parameter_table(inventory):
        layer = row["layer"]
        block = f"layer {layer}" if layer is not None else row["kind"]
        order = layer + 1 if layer is not None else (0 if row["kind"] == "embeddings" else 10**6)
        key = (order, block, row["kind"])
        totals[key] = totals.get(key, 0) + row["count"]
    return [
        {"block": block, "kind": kind, "count": count, "order": order}
        for (order, block, kind), count in sorted(totals.items())
    ]
