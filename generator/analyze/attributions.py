"""Tables of the attributions page: token scores, IG completeness, head importance, logit lens."""

from __future__ import annotations

import numpy as np

from generator.artifacts import Artifacts
from generator.attribution.heads import spearman
from generator.attribution.rollout import attention_rollout, encoder_decoder_rollout

METHODS = ("grad_norm", "grad_input", "integrated_gradients", "rollout")


def rollout_scores(
    attentions: np.ndarray, visible: np.ndarray, task: str, target: int
) -> np.ndarray:
    """Attention-rollout relevance of each visible input token for the task's output position.

    masked-lm and causal-lm: the row of the predicted position; embedding and classification:
    the mean over all positions (the objective reads the whole sequence).
    """
    rollout = attention_rollout(attentions, visible)
    if task in ("masked-lm", "causal-lm"):
        return rollout[int(target)]
    return rollout.mean(axis=0)


def showcase_rollout(artifacts: Artifacts, task: str):
    """Return `rollout(example, visible, target_position) -> [visible token]` for the showcase.

    Encoder-decoders (seq2seq): the encoder rollout read through the cross-attention.
    """
    if task == "seq2seq":
        encoder = artifacts.array("showcase/encoder_attentions")
        cross = artifacts.array("showcase/cross_attentions")
        targets = np.asarray(artifacts.array("showcase/decoder_attention_mask")).astype(bool)
        return lambda example, visible, _: encoder_decoder_rollout(
            encoder[example], cross[example], visible, targets[example]
        )
    attentions = artifacts.array("showcase/attentions")
    return lambda example, visible, target: rollout_scores(
        np.asarray(attentions[example], np.float64), visible, task, target
    )


def attribution_tables(artifacts: Artifacts) -> dict:
    """Token scores per method, per-example facts, head importance and pruning tables."""
    details = artifacts.manifest.get("attribution") or {}
    if not details or details.get("skipped") or not artifacts.has("attribution/objective"):
        return {}
    task = details["task"]
    mask = np.asarray(artifacts.array("showcase/attention_mask")).astype(bool)
    tokens = artifacts.array("showcase/tokens")
    rollout_of = showcase_rollout(artifacts, task)
    rows = artifacts.array("showcase/index")
    texts = artifacts.array("corpus/texts")
    labels = artifacts.array("corpus/labels") if artifacts.has("corpus/labels") else None
    scores = {name: np.asarray(artifacts.array(f"attribution/{name}")) for name in METHODS[:3]}
    position = artifacts.array("attribution/target_position")
    token_rows, example_rows = [], []
    for example, row in enumerate(rows):
        visible = mask[example]
        rollout = rollout_of(example, visible, position[example])
        for index, pos in enumerate(np.flatnonzero(visible)):
            token_rows.append(
                {
                    "example": example,
                    "position": int(pos),
                    "token": str(tokens[example, pos]),
                    **{name: round(float(scores[name][example, pos]), 6) for name in scores},
                    "rollout": round(float(rollout[index]), 6),
                }
            )
        example_rows.append(
            {
                "example": example,
                "row": int(row),
                "text": str(texts[row]),
                "label": str(labels[row]) if labels is not None else "",
                "objective": round(float(artifacts.array("attribution/objective")[example]), 6),
                "baseline_objective": round(
                    float(artifacts.array("attribution/baseline_objective")[example]), 6
                ),
                "ig_error": float(artifacts.array("attribution/ig_error")[example]),
                "target_position": int(position[example]),
                "target_token": str(artifacts.array("attribution/target_token")[example]),
            }
        )
    tables = {"attribution_tokens": token_rows, "attribution_examples": example_rows}
    if task == "seq2seq":
        decoder_texts = artifacts.array("showcase/target_texts")
        for item in example_rows:
            item["target_text"] = str(decoder_texts[item["example"]])
    tables.update(head_tables(artifacts))
    tables.update(lens_tables(artifacts))
    return tables


def head_tables(artifacts: Artifacts) -> dict:
    """Head importance rows, their rank agreement and pruning curves."""
    if not artifacts.has("heads/ablation"):
        return {}
    ablation = np.asarray(artifacts.array("heads/ablation"), np.float64)
    gradient = np.asarray(artifacts.array("heads/gradient"), np.float64)
    heads = ablation.shape[1]
    sets = (artifacts.manifest.get("attribution") or {}).get("heads", {}).get("sets") or [
        {"kind": "self-attention", "rows": ablation.shape[0]}
    ]
    several = len(sets) > 1
    rows, start = [], 0
    for head_set in sets:
        for layer in range(head_set["rows"]):
            for head in range(heads):
                rows.append(
                    {
                        "kind": head_set["kind"],
                        "layer": layer,
                        "row": f"{head_set['kind']} {layer}" if several else str(layer),
                        "head": head,
                        "ablation": round(float(ablation[start + layer, head]), 6),
                        "gradient": round(float(gradient[start + layer, head]), 6),
                    }
                )
        start += head_set["rows"]
    fractions = artifacts.array("heads/pruning_fraction")
    curves = [
        {"fraction": round(float(f), 3), "order": order, "objective": round(float(v), 6)}
        for order, name in (
            ("by importance", "pruning_by_importance"),
            ("random", "pruning_random"),
        )
        for f, v in zip(fractions, artifacts.array(f"heads/{name}"), strict=True)
    ]
    agreement = spearman(ablation, gradient)
    return {
        "head_importance": rows,
        "pruning_curve": curves,
        "head_importance_facts": {"spearman": round(agreement, 4)},
    }


def lens_tables(artifacts: Artifacts) -> dict:
    """Logit-lens rows: per example, layer and position, the top-1 token and the final prediction."""
    if not artifacts.has("lens/top_tokens"):
        return {}
    side = "decoder_" if artifacts.axes("lens/top_tokens")[2] == "target" else ""
    mask = np.asarray(artifacts.array(f"showcase/{side}attention_mask")).astype(bool)
    tokens = artifacts.array(f"showcase/{side}tokens")
    top_tokens = artifacts.array("lens/top_tokens")
    top_probs = artifacts.array("lens/top_probs")
    rank = artifacts.array("lens/final_rank")
    prob = artifacts.array("lens/final_prob")
    rows = []
    examples, layers = top_tokens.shape[:2]
    for example in range(examples):
        for layer in range(layers):
            for pos in np.flatnonzero(mask[example]):
                rows.append(
                    {
                        "example": example,
                        "layer": layer,
                        "position": int(pos),
                        "token": str(tokens[example, pos]),
                        "top": str(top_tokens[example, layer, pos, 0]),
                        "top_prob": round(float(top_probs[example, layer, pos, 0]), 4),
                        "final": str(top_tokens[example, -1, pos, 0]),
                        "final_rank": int(rank[example, layer, pos]),
                        "final_prob": round(float(prob[example, layer, pos]), 4),
                    }
                )
    return {"logit_lens": rows}
