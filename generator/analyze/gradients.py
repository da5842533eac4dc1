"""Gradient tables of the weights page: per-tensor norms, layer × component cells, per-text norms.

Inputs are the extract stage's `manifest["gradients"]` section and `gradients/*` arrays (and
`checkpoints/NAME/gradients/*` per further checkpoint), joined by parameter path with the weight
statistics' tensor rows (component, role, kind, layer) of `manifest["weights"]`. Pure functions.
"""

from __future__ import annotations

import math

import numpy as np

from generator.analyze import parameters
from generator.analyze.weights import LEAF_LABELS, depth_label, depth_order, with_applications

CARD_MODEL = "card model"  # the checkpoint label of the card's own model


def checkpoint_prefixes(gradients: dict) -> list[tuple[str, str]]:
    """Return (label, artifact prefix) of the card's model first, then each further checkpoint."""
    names = [c["name"] for c in gradients.get("checkpoints") or []]
    label = CARD_MODEL if CARD_MODEL not in names else f"{CARD_MODEL} (card)"
    return [(label, "")] + [(name, f"checkpoints/{name}/") for name in names]


def tensor_rows(gradients: dict, roles: dict[str, dict], norms: dict, n_layers: int) -> list[dict]:
    """Return one row per parameter tensor: names, place, kind, gradient and weight norms.

    Args:
        gradients: manifest["gradients"].
        roles: the weights section's tensor rows by parameter path.
        norms: {"grad_norms": [tensor], "weight_norms": [tensor]} of one checkpoint.
        n_layers: the model's layer count (for the depth order).
    """
    rows = []
    for i, tensor in enumerate(gradients["tensors"]):
        role = roles[tensor["path"]]
        grad, weight = float(norms["grad_norms"][i]), float(norms["weight_norms"][i])
        rows.append(
            {
                "name": tensor["name"],
                "path": tensor["path"],
                "layer": role["layer"],
                "stack": role["stack"],
                "kind": role["leaf"],
                "component": role["component"],
                "role": role["role"],
                "block": depth_label(role),
                "order": depth_order(role, n_layers),
                "count": tensor["count"],
                "grad_norm": grad,
                "grad_rms": grad / math.sqrt(max(tensor["count"], 1)),
                "weight_norm": weight,
                "ratio": grad / weight if weight > 0 else None,
            }
        )
    return rows


def cell_rows(rows: list[dict]) -> list[dict]:
    """Return per (block, component) the L2 norm of the gradient of all its tensors together."""
    cells: dict[tuple, dict] = {}
    for row in rows:
        key = (row["order"], row["block"], row["component"])
        cell = cells.setdefault(key, {"squares": 0.0, "tensors": 0, "count": 0})
        cell["squares"] += row["grad_norm"] ** 2
        cell["tensors"] += 1
        cell["count"] += row["count"]
    return [
        {
            "block": block,
            "order": order,
            "component": component,
            "grad_norm": math.sqrt(cell["squares"]),
            "tensors": cell["tensors"],
            "count": cell["count"],
        }
        for (order, block, component), cell in sorted(cells.items())
    ]


def ratio_rows(rows: list[dict]) -> list[dict]:
    """Return per tensor with a nonzero ratio: kind label, name and log10(grad/weight)."""
    return [
        {
            "kind": LEAF_LABELS.get(row["kind"], row["kind"]),
            "name": row["name"],
            "ratio": row["ratio"],
            "log_ratio": math.log10(row["ratio"]),
        }
        for row in rows
        if row["ratio"]
    ]


def example_rows(norms: np.ndarray, index: np.ndarray, labels) -> list[dict]:
    """Return per sampled text (with a target): its corpus row, label and gradient norm."""
    return [
        {
            "text": int(row),
            "label": None if labels is None else str(labels[row]),
            "grad_norm": float(norm),
        }
        for row, norm in zip(index, norms, strict=True)
        if np.isfinite(norm)
    ]


def gradients_analysis(artifacts) -> dict:
    """Return the gradient tables (none when the gradients were not computed or skipped).

    Tables: `parameter_gradients` (the card model, one row per tensor), `gradient_views`
    (per checkpoint label: cells, ratios, examples, loss) and `gradient_summary`.
    """
    gradients = artifacts.manifest.get("gradients")
    section = artifacts.manifest.get("weights")
    if not gradients or gradients.get("skipped") or not section:
        return {}
    config = artifacts.manifest["model"]["config"]
    section = with_applications(section, parameters.shared_applications(config))
    n_layers = int(config["n_layers"])
    roles = {row["name"]: row for row in section["tensors"]}
    index = artifacts.array("gradients/sample_index")
    labels = artifacts.array("corpus/labels") if artifacts.has("corpus/labels") else None
    losses = {c["name"]: c["loss_value"] for c in gradients.get("checkpoints") or []}
    views, card_rows = [], []
    for label, prefix in checkpoint_prefixes(gradients):
        norms = {
            name: artifacts.array(f"{prefix}gradients/{name}")
            for name in ("grad_norms", "weight_norms")
        }
        rows = tensor_rows(gradients, roles, norms, n_layers)
        card_rows = card_rows or rows
        examples = artifacts.array(f"{prefix}gradients/example_norms")
        views.append(
            {
                "checkpoint": label,
                "loss_value": losses[label] if prefix else gradients["loss_value"],
                "total_norm": math.sqrt(sum(r["grad_norm"] ** 2 for r in rows)),
                "cells": cell_rows(rows),
                "ratios": ratio_rows(rows),
                "examples": example_rows(examples, index, labels),
            }
        )
    summary = {key: gradients[key] for key in ("task", "loss", "n_targets", "sample")}
    return {
        "parameter_gradients": card_rows,
        "gradient_views": views,
        "gradient_summary": summary,
    }
