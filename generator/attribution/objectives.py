"""Task objectives: the scalar per example that attributions and head importance explain.

- embedding: cosine similarity of the mean-pooled last-layer embedding to a reference vector
  (the centroid of the example's class over the corpus, or of the whole corpus when unlabeled);
- masked-lm: log-probability of the original token at one masked position (the middle
  non-special token, replaced by the mask token in the input);
- causal-lm: log-probability of the last real token given the tokens before it;
- classification: logit of the class the model predicts for the unperturbed input.

Every objective takes the word embeddings [batch, token, d] (so gradients flow to them) and an
optional head mask [layer, head], and returns [batch].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

TASK_HEADS = {
    "masked-lm": "masked-lm",
    "causal-lm": "causal-lm",
    "classification": "classification",
}

TASK_DESCRIPTIONS = {
    "embedding": "cosine similarity between the example's mean-pooled last-layer embedding and "
    "the centroid of its class (of the whole corpus when unlabeled)",
    "masked-lm": "log-probability of the original token at the masked position (the middle "
    "non-special token, replaced by the mask token)",
    "causal-lm": "log-probability of the last token given the tokens before it",
    "classification": "logit of the class the model predicts for the example",
}


def default_task(heads: tuple[str, ...]) -> str:
    """Pick the task a model supports best: its primary head, else the embedding objective."""
    primary = heads[0] if heads else None
    return primary if primary in TASK_HEADS else "embedding"


def task_problem(task: str, heads: tuple[str, ...]) -> str | None:
    """Return why `task` cannot be measured on a model with `heads`, or None when it can."""
    if task == "embedding":
        return None
    if task == "seq2seq":
        return "seq2seq objectives need an encoder-decoder model"
    needed = TASK_HEADS.get(task)
    if needed is None:
        return f"task {task!r} is not one of {', '.join(['embedding', *TASK_HEADS])}"
    if not heads or heads[0] != needed:
        return (
            f"task {task!r} needs a checkpoint with a {needed} head (this one has: "
            f"{', '.join(heads) or 'none'})"
        )
    return None


def word_embedding_table(model: nnx.Module) -> jax.Array:
    """Return the [vocab, d] token-embedding table of any of our families."""
    for path in (("embeddings", "word_embeddings"), ("wte",), ("embed_tokens",)):
        module = model
        for name in path:
            module = getattr(module, name, None)
            if module is None:
                break
        if module is not None:
            return module.embedding[...]
    raise ValueError(f"{type(model).__name__} has no token-embedding table")


class ObjectiveInputs(NamedTuple):
    """One padded batch and what its objective needs.

    input_ids, attention_mask: [batch, token]; target_position / target_id: [batch] (masked-lm,
    causal-lm), reference: [batch, d_model] (embedding), target_class: [batch] (classification).
    """

    input_ids: np.ndarray
    attention_mask: np.ndarray
    target_position: np.ndarray
    target_id: np.ndarray
    reference: np.ndarray
    target_class: np.ndarray


def make_objective(task: str, graphdef, params) -> Callable:
    """Return `objective(inputs, embeds [batch, token, d], head_mask) -> [batch]` for a task."""

    def run(inputs: ObjectiveInputs, embeds, head_mask):
        model = nnx.merge(graphdef, params)
        return model(
            inputs.input_ids, inputs.attention_mask, inputs_embeds=embeds, head_mask=head_mask
        )

    def embedding(inputs, embeds, head_mask):
        out = run(inputs, embeds, head_mask)
        last = out["hidden_states"][:, -1].astype(jnp.float32)
        mask = inputs.attention_mask.astype(jnp.float32)[:, :, None]
        pooled = jnp.sum(last * mask, axis=1) / jnp.maximum(jnp.sum(mask, axis=1), 1.0)
        reference = inputs.reference
        numerator = jnp.sum(pooled * reference, axis=-1)
        return numerator / (
            jnp.linalg.norm(pooled, axis=-1) * jnp.linalg.norm(reference, axis=-1) + 1e-12
        )

    def token_log_prob(inputs, embeds, head_mask):
        logits = run(inputs, embeds, head_mask)["logits"].astype(
            jnp.float32
        )  # [batch, token, vocab]
        rows = jnp.take_along_axis(logits, inputs.target_position[:, None, None], axis=1)[:, 0]
        log_probs = jax.nn.log_softmax(rows, axis=-1)
        return jnp.take_along_axis(log_probs, inputs.target_id[:, None], axis=1)[:, 0]

    def classification(inputs, embeds, head_mask):
        logits = run(inputs, embeds, head_mask)["logits"].astype(jnp.float32)  # [batch, label]
        return jnp.take_along_axis(logits, inputs.target_class[:, None], axis=1)[:, 0]

    return {
        "embedding": embedding,
        "masked-lm": token_log_prob,
        "causal-lm": token_log_prob,
        "classification": classification,
    }[task]


def masked_position(ids: np.ndarray, special: np.ndarray) -> int:
    """Return the middle non-special position of one example (the one masked-lm masks)."""
    candidates = np.flatnonzero(~special)
    return int(candidates[len(candidates) // 2]) if len(candidates) else 0
