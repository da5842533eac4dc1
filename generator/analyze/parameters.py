"""Group the parameter inventory by component and layer."""

from __future__ import annotations

import re

LAYER = re.compile(r"(?:^|\.)(?:layer|layers|h|block)\.(\d+)\.")
# ALBERT's shared blocks: one set of weights applied at several layers.
SHARED = re.compile(r"(?:^|\.)albert_layer_groups\.(\d+)\.albert_layers\.(\d+)\.")
# Encoder-decoder stacks (T5: encoder.block.N / decoder.block.N) label their blocks apart.
STACK = re.compile(r"^(encoder|decoder)\.block\.")
DECODER_ORDER = 100_000  # decoder blocks sort after every encoder block

# First matching rule wins: (substring of the dotted name, component kind).
KIND_RULES = (
    ("relative_attention_bias", "attention"),  # T5 position buckets (an nnx Embed)
    ("mlm_head", "head"),
    ("nsp_head", "head"),
    ("rtd_head", "head"),
    ("sop_head", "head"),
    ("lm_head", "head"),
    ("classifier", "head"),
    ("score.out", "head"),
    # norms before embeddings: BERT's `embeddings.LayerNorm` is a norm (as on the weights
    # page), drawn in the embeddings block by `outer_block`
    ("LayerNorm", "norms"),
    ("layernorm", "norms"),
    ("norm", "norms"),
    ("ln_", "norms"),
    ("embed", "embeddings"),
    ("wte", "embeddings"),
    ("wpe", "embeddings"),
    ("pooler", "pooler"),
    ("shared", "embeddings"),
    ("attention", "attention"),
    ("attn", "attention"),
    ("Attention", "attention"),
    ("DenseReluDense", "mlp"),
    ("ffn", "mlp"),  # ALBERT's ffn, ffn_output
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


def shared_of(name: str) -> tuple[int, int] | None:
    """Return (group, index) of a tensor in a block shared by several layers (ALBERT), else None."""
    match = SHARED.search(name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def shared_applications(config: dict) -> dict[tuple[int, int], list[int]]:
    """Return per shared block (group, index) the layers that apply it, from manifest.model.config.

    Empty for a model without shared blocks (no `layer_blocks` in its config).
    """
    inner = int(config.get("inner_group_num") or 1)
    out: dict[tuple[int, int], list[int]] = {}
    for layer, block in enumerate(config.get("layer_blocks") or ()):
        out.setdefault((block // inner, block % inner), []).append(layer)
    return out


def layer_span(layers: list[int]) -> str:
    """Write layer indices compactly: '0–11' when consecutive, else '0, 2'."""
    if len(layers) > 2 and list(layers) == list(range(layers[0], layers[-1] + 1)):
        return f"{layers[0]}–{layers[-1]}"
    return ", ".join(str(layer) for layer in layers)


def shared_label(layers: list[int]) -> str:
    """Return the block label of a shared block: 'shared · layers 0–11'."""
    return f"shared · layers {layer_span(layers)}"


def stack_of(name: str) -> str | None:
    """Return "encoder" / "decoder" for blocks of an encoder-decoder stack, else None."""
    match = STACK.match(name)
    return match.group(1) if match else None


def outer_block(name: str, kind: str) -> str:
    """Return the block of a tensor outside the layers: its kind, except that a norm inside
    the embedding module (BERT's `embeddings.LayerNorm`) belongs to the embeddings block."""
    modules = name.split(".")[:-1]
    if kind == "norms" and any(m.startswith("embed") for m in modules):
        return "embeddings"
    return kind


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


def counts_by_component(inventory: list[dict], shared: dict | None = None) -> list[dict]:
    """Return parameter counts per (block, kind); block is 'layer N' or the component outside layers.

    shared: `shared_applications` of the model; a shared block is counted once, as
    'shared · layers ...'.
    """
    totals: dict[tuple[int, str, str], int] = {}
    for row in parameter_table(inventory):
        layer = row["layer"]
        outer = outer_block(row["name"], row["kind"])
        block = f"layer {layer}" if layer is not None else outer
        order = layer + 1 if layer is not None else (0 if outer == "embeddings" else 10**6)
        applications = (shared or {}).get(shared_of(row["name"]))
        if applications:
            block, order = shared_label(applications), applications[0] + 1
        stack = stack_of(row["name"]) if layer is not None else None
        if stack is not None:
            block = f"{stack} {block}"
            order += DECODER_ORDER if stack == "decoder" else 0
        key = (order, block, row["kind"])
        totals[key] = totals.get(key, 0) + row["count"]
    return [
        {"block": block, "kind": kind, "count": count, "order": order}
        for (order, block, kind), count in sorted(totals.items())
    ]
