"""Tables of the attributions page: token scores, IG completeness, head importance, logit lens."""

from __future__ import annotations

import numpy as np

from generator.artifacts import Artifacts
from generator.attribution.heads import spearman, spearman_rows
from generator.attribution.rollout import attention_rollout, encoder_decoder_rollout
from generator.showcase_rows import showcase_texts

METHODS = ("grad_norm", "grad_input", "integrated_gradients", "rollout")


def rollout_scores(
    attentions: np.ndarray, visible: np.ndarray, task: str, target: int
) -> np.ndarray:
    """Attention-rollout relevance of each visible input token for the task's output position.

    masked-lm, causal-lm and permutation-lm: the row of the predicted position; embedding and classification:
    the mean over all positions (the objective reads the whole sequence).
    """
    rollout = attention_rollout(attentions, visible)
    if task in ("masked-lm", "causal-lm", "permutation-lm"):
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
    shown = showcase_texts(artifacts)
    scores = {name: np.asarray(artifacts.array(f"attribution/{name}")) for name in METHODS[:3]}
    position = artifacts.array("attribution/target_position")
    token_rows, example_rows = [], []
    for example, item in enumerate(shown):
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
                "row": item.row,
                "text": item.text,
                "label": item.label,
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


BOOTSTRAP_SAMPLES = 1000


def standard_errors(per_text: np.ndarray) -> np.ndarray:
    """Standard error of the mean over texts [text, ...] -> [...] (0 for a single text)."""
    if len(per_text) < 2:
        return np.zeros(per_text.shape[1:])
    return per_text.std(axis=0, ddof=1) / np.sqrt(len(per_text))


def spearman_interval(
    first: np.ndarray, second: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[float, float]:
    """95 % bootstrap interval (texts resampled) of the Spearman agreement of two importances.

    first, second: per-text importances [text, layer, head]; each resample compares the
    per-head means of the same resampled texts.
    """
    rng = np.random.default_rng(seed)
    texts = len(first)
    means = []  # each resample's per-head means of the two importances
    for _ in range(samples):
        pick = rng.integers(0, texts, texts)
        means.append((first[pick].mean(axis=0).ravel(), second[pick].mean(axis=0).ravel()))
    value = spearman_rows(*(np.stack(side) for side in zip(*means, strict=True)))
    values = value[np.isfinite(value)]
    if not len(values):
        return float("nan"), float("nan")
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def tied_with_leader(mean: np.ndarray, se: np.ndarray) -> np.ndarray:
    """Heads whose mean ± SE interval reaches the leader's: not distinguishable from the top."""
    leader = int(np.argmax(mean))
    return mean + se >= mean.flat[leader] - se.flat[leader]


def featured_head(ablation, ablation_se, gradient, gradient_se) -> int | None:
    """Flat index of the head both methods put at the top within their standard errors.

    Among heads tied with the ablation leader and tied with the gradient leader, the one with
    the largest ablation drop; None when no head is at the top for both methods.
    """
    both = tied_with_leader(ablation, ablation_se) & tied_with_leader(gradient, gradient_se)
    if not both.any():
        return None
    return int(np.flatnonzero(both.ravel())[np.argmax(ablation.ravel()[both.ravel()])])


def head_tables(artifacts: Artifacts) -> dict:
    """Head importance rows (means and standard errors), their agreement and pruning curves."""
    if not artifacts.has("heads/ablation"):
        return {}
    ablation = np.asarray(artifacts.array("heads/ablation"), np.float64)
    gradient = np.asarray(artifacts.array("heads/gradient"), np.float64)
    per_text = artifacts.has("heads/ablation_per_text")
    if per_text:
        ablation_texts = np.asarray(artifacts.array("heads/ablation_per_text"), np.float64)
        gradient_texts = np.asarray(artifacts.array("heads/gradient_per_text"), np.float64)
        ablation_se, gradient_se = standard_errors(ablation_texts), standard_errors(gradient_texts)
    else:  # artifacts from before per-text values were stored
        ablation_se, gradient_se = np.zeros_like(ablation), np.zeros_like(gradient)
    heads = ablation.shape[1]
    sets = (artifacts.manifest.get("attribution") or {}).get("heads", {}).get("sets") or [
        {"kind": "self-attention", "rows": ablation.shape[0]}
    ]
    several = len(sets) > 1
    rows, start = [], 0
    for head_set in sets:
        for layer in range(head_set["rows"]):
            for head in range(heads):
                at = (start + layer, head)
                rows.append(
                    {
                        "kind": head_set["kind"],
                        "layer": layer,
                        "row": f"{head_set['kind']} {layer}" if several else str(layer),
                        "head": head,
                        "ablation": round(float(ablation[at]), 6),
                        "ablation_se": round(float(ablation_se[at]), 6),
                        "gradient": round(float(gradient[at]), 6),
                        "gradient_se": round(float(gradient_se[at]), 6),
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
        if np.isfinite(v)  # NaN: not evaluated, the curves had collapsed (manifest)
    ]
    facts = {
        "spearman": round(spearman(ablation, gradient), 4),
        "ablation_se_median": round(float(np.median(ablation_se)), 6),
        "gradient_se_median": round(float(np.median(gradient_se)), 6),
    }
    if per_text:
        low, high = spearman_interval(ablation_texts, gradient_texts)
        facts.update(
            spearman_low=round(low, 4), spearman_high=round(high, 4), bootstrap=BOOTSTRAP_SAMPLES
        )
    featured = featured_head(ablation, ablation_se, gradient, gradient_se) if per_text else None
    facts["featured"] = None if featured is None else rows[featured]
    return {"head_importance": rows, "pruning_curve": curves, "head_importance_facts": facts}


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
