"""Task objectives: the scalar per example that attributions and head importance explain.

- embedding: cosine similarity of the mean-pooled last-layer embedding to a reference vector:
  for token attributions the centroid of the example's class over the corpus (of the whole
  corpus when unlabeled); for head importance the text's own unablated embedding (output
  fidelity: 1 with every head kept, so removing heads can only lower it);
- embedding-centroid: the class-centroid cosine for token attributions and head importance;
- masked-lm: log-probability of the original token at one masked position (the middle
  non-special token, replaced by the mask token in the input);
- causal-lm: log-probability of the last real token given the tokens before it;
- permutation-lm (XLNet): log-probability of the original token at one position (the middle
  non-special token) from XLNet's query stream, which cannot see that token; no other token sees
  it either (transformers' perm_mask + target_mapping recipe; the input is not changed);
- classification: logit of the class the model predicts for the unperturbed input;
- seq2seq: log-probability of the decoder target (the corpus target or the model's own greedy
  output), summed over its tokens with teacher forcing: Σ_t log p(y_t | x, y_<t).

Every objective takes the word embeddings [batch, token, d] (so gradients flow to them; the
encoder's input for seq2seq) and an optional head mask [layer, head] (for T5 [L + 2 Ld, head]:
encoder, decoder self- and cross-attention rows), and returns [batch].
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
    "permutation-lm": "permutation-lm",
    "classification": "classification",
}

CENTROID_DESCRIPTION = (
    "cosine similarity between the example's mean-pooled last-layer embedding and "
    "the centroid of its class (of the whole corpus when unlabeled)"
)
FIDELITY_DESCRIPTION = (
    "cosine similarity between the text's mean-pooled last-layer embedding with heads removed "
    "and the same text's embedding with every head (1 with no head removed): how much of the "
    "model's own output survives"
)
EMBEDDING_TASKS = ("embedding", "embedding-centroid")  # need no task head
# Tasks whose head importance measures something other than the token attributions' objective.
HEAD_OBJECTIVES = {"embedding": FIDELITY_DESCRIPTION}

TASK_DESCRIPTIONS = {
    "embedding": CENTROID_DESCRIPTION,
    "embedding-centroid": CENTROID_DESCRIPTION,
    "masked-lm": "log-probability of the original token at the masked position (the middle "
    "non-special token, replaced by the mask token)",
    "causal-lm": "log-probability of the last token given the tokens before it",
    "permutation-lm": "log-probability of the original token at one position (the middle "
    "non-special token) predicted by XLNet's query stream, which cannot see it: no token sees "
    "that position's token (the perm_mask + target_mapping recipe of transformers)",
    "classification": "logit of the class the model predicts for the example",
    "seq2seq": "log-probability of the decoder target given the input, summed over the "
    "target's tokens with teacher forcing (Σ_t log p(y_t | x, y_<t))",
}


def default_task(heads: tuple[str, ...], seq2seq: bool = False) -> str:
    """Pick the task a model supports best: seq2seq for encoder-decoders, else its primary
    head, else the embedding objective."""
    if seq2seq:
        return "seq2seq"
    primary = heads[0] if heads else None
    return primary if primary in TASK_HEADS else "embedding"


def task_problem(task: str, heads: tuple[str, ...], seq2seq: bool = False) -> str | None:
    """Return why `task` cannot be measured on a model with `heads`, or None when it can."""
    if seq2seq:
        return (
            None
            if task == "seq2seq"
            else (f"task {task!r} does not apply to an encoder-decoder model; use task: seq2seq")
        )
    if task in EMBEDDING_TASKS:
        return None
    if task == "seq2seq":
        return "seq2seq objectives need an encoder-decoder model"
    needed = TASK_HEADS.get(task)
    if needed is None:
        choices = [*EMBEDDING_TASKS, *TASK_HEADS]
        return f"task {task!r} is not one of {', '.join(choices)}"
    if not heads or heads[0] != needed:
        return (
            f"task {task!r} needs a checkpoint with a {needed} head (this one has: "
            f"{', '.join(heads) or 'none'})"
        )
    return None


def word_embedding_table(model: nnx.Module) -> jax.Array:
    """Return the [vocab, d] token-embedding table of any of our families."""
    paths = (("embeddings", "word_embeddings"), ("wte",), ("embed_tokens",), ("shared",))
    for path in (*paths, ("word_embedding",)):
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
    causal-lm, permutation-lm), reference: [batch, d_model] (embedding), target_class: [batch] (classification);
    decoder_input_ids, decoder_attention_mask, target_ids: [batch, target] (seq2seq: the target
    shifted right behind the decoder start token, its mask, and the target itself).
    """

    input_ids: np.ndarray
    attention_mask: np.ndarray
    target_position: np.ndarray
    target_id: np.ndarray
    reference: np.ndarray
    target_class: np.ndarray
    decoder_input_ids: np.ndarray | None = None
    decoder_attention_mask: np.ndarray | None = None
    target_ids: np.ndarray | None = None


def make_embedder(graphdef, params) -> Callable:
    """Return `embed(inputs, embeds [batch, token, d], head_mask) -> [batch, d_model]`: the
    mean-pooled last-layer embedding."""

    def embed(inputs: ObjectiveInputs, embeds, head_mask):
        model = nnx.merge(graphdef, params)
        out = model(
            inputs.input_ids, inputs.attention_mask, inputs_embeds=embeds, head_mask=head_mask
        )
        last = out["hidden_states"][:, -1].astype(jnp.float32)
        mask = inputs.attention_mask.astype(jnp.float32)[:, :, None]
        return jnp.sum(last * mask, axis=1) / jnp.maximum(jnp.sum(mask, axis=1), 1.0)

    return embed


def make_objective(task: str, graphdef, params) -> Callable:
    """Return `objective(inputs, embeds [batch, token, d], head_mask) -> [batch]` for a task."""

    def run(inputs: ObjectiveInputs, embeds, head_mask):
        model = nnx.merge(graphdef, params)
        return model(
            inputs.input_ids, inputs.attention_mask, inputs_embeds=embeds, head_mask=head_mask
        )

    embed = make_embedder(graphdef, params)

    def embedding(inputs, embeds, head_mask):
        pooled = embed(inputs, embeds, head_mask)
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

    def permutation_log_prob(inputs, embeds, head_mask):
        model = nnx.merge(graphdef, params)
        out = model(
            inputs.input_ids,
            inputs.attention_mask,
            inputs_embeds=embeds,
            head_mask=head_mask,
            target_position=inputs.target_position,
        )
        log_probs = jax.nn.log_softmax(out["target_logits"].astype(jnp.float32), axis=-1)
        return jnp.take_along_axis(log_probs, inputs.target_id[:, None], axis=1)[:, 0]

    def classification(inputs, embeds, head_mask):
        logits = run(inputs, embeds, head_mask)["logits"].astype(jnp.float32)  # [batch, label]
        return jnp.take_along_axis(logits, inputs.target_class[:, None], axis=1)[:, 0]

    def seq2seq(inputs, embeds, head_mask):
        model = nnx.merge(graphdef, params)
        out = model(
            inputs.input_ids,
            inputs.attention_mask,
            inputs.decoder_input_ids,
            inputs.decoder_attention_mask,
            inputs_embeds=embeds,
            head_mask=head_mask,
        )
        log_probs = jax.nn.log_softmax(out["logits"].astype(jnp.float32), axis=-1)
        picked = jnp.take_along_axis(log_probs, inputs.target_ids[..., None], axis=-1)[..., 0]
        return jnp.sum(picked * inputs.decoder_attention_mask.astype(jnp.float32), axis=-1)

    return {
        "embedding": embedding,
        "embedding-centroid": embedding,
        "masked-lm": token_log_prob,
        "causal-lm": token_log_prob,
        "permutation-lm": permutation_log_prob,
        "classification": classification,
        "seq2seq": seq2seq,
    }[task]


def masked_position(ids: np.ndarray, special: np.ndarray) -> int:
    """Return the middle non-special position of one example (the one masked-lm masks)."""
    candidates = np.flatnonzero(~special)
    return int(candidates[len(candidates) // 2]) if len(candidates) else 0
