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

from generator.models.layers import with_input

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


def model_outputs(task: str, inputs: ObjectiveInputs, model, embeds, head_mask) -> dict:
    """Run the whole model on one objective batch (the task decides its extra inputs)."""
    if task == "seq2seq":  # the decoder reads the target
        return model(
            inputs.input_ids,
            inputs.attention_mask,
            inputs.decoder_input_ids,
            inputs.decoder_attention_mask,
            inputs_embeds=embeds,
            head_mask=head_mask,
        )
    x, ctx = embed_stage(task, inputs, model, embeds)
    return model.run_stages(x, ctx, head_mask, positions=lm_positions(task, inputs))


def lm_positions(task: str, inputs: ObjectiveInputs):
    """The [batch] positions whose LM logits the task reads (masked-lm, causal-lm), else None.

    The model then unembeds those rows only (`Staged.run_stages`): the [batch, token, vocab]
    logits of every position are never built.
    """
    return inputs.target_position if task in ("masked-lm", "causal-lm") else None


def embed_stage(task: str, inputs: ObjectiveInputs, model, embeds) -> tuple:
    """The first block's input and every layer's context (`model.embed_stage`) of a batch.

    permutation-lm (XLNet): the query stream predicts `target_position`.
    """
    extra = {"target_position": inputs.target_position} if task == "permutation-lm" else {}
    return model.embed_stage(inputs.input_ids, inputs.attention_mask, inputs_embeds=embeds, **extra)


def outputs_from(task: str, inputs: ObjectiveInputs, model, embeds, x, start, head_mask):
    """The model's outputs when layers `start`.. run on x, the input of layer `start`.

    x must be what the layers below `start` give with every head (see `layer_output`); the
    outputs then equal `model_outputs` with `head_mask`, whose rows below `start` are ones,
    except `hidden_states` and probes below `start` (zeros: not recomputed).
    """
    _, ctx = embed_stage(task, inputs, model, embeds)
    out, hidden, probes = model.window_stage(x, ctx, head_mask=head_mask, start=start)
    first = x[0] if isinstance(x, tuple) else x
    positions = lm_positions(task, inputs)
    return model.output_stage(out, ctx, with_input(first, hidden), probes, positions=positions)


def layer_output(task: str, inputs: ObjectiveInputs, model, embeds, x, layer, head_mask):
    """The output of layer `layer` (x: its input), the input of the next layer."""
    _, ctx = embed_stage(task, inputs, model, embeds)
    stop = layer + 1
    return model.window_stage(x, ctx, head_mask=head_mask, start=layer, stop=stop)[0]


def pooled_last(inputs: ObjectiveInputs, outputs: dict) -> jax.Array:
    """The mean-pooled last-layer embedding [batch, d_model] of a model's outputs."""
    last = outputs["hidden_states"][:, -1].astype(jnp.float32)
    mask = inputs.attention_mask.astype(jnp.float32)[:, :, None]
    return jnp.sum(last * mask, axis=1) / jnp.maximum(jnp.sum(mask, axis=1), 1.0)


def cosine_to_reference(inputs: ObjectiveInputs, pooled: jax.Array) -> jax.Array:
    """Cosine similarity [batch] of pooled embeddings to the batch's reference vectors."""
    reference = inputs.reference
    numerator = jnp.sum(pooled * reference, axis=-1)
    return numerator / (
        jnp.linalg.norm(pooled, axis=-1) * jnp.linalg.norm(reference, axis=-1) + 1e-12
    )


def embedding_score(inputs, outputs):
    """The embedding objective from a model's outputs: cosine to the reference."""
    return cosine_to_reference(inputs, pooled_last(inputs, outputs))


def token_log_prob(inputs, outputs):
    """Log-probability of the target token at the target position.

    The logits are [batch, 1, vocab] at the target positions (`lm_positions`), or [batch,
    token, vocab] of every position (read at the target position).
    """
    logits = outputs["logits"].astype(jnp.float32)
    if logits.shape[1] == 1:  # already at the target (a one-token batch: position 0 alike)
        rows = logits[:, 0]
    else:
        rows = jnp.take_along_axis(logits, inputs.target_position[:, None, None], axis=1)[:, 0]
    log_probs = jax.nn.log_softmax(rows, axis=-1)
    return jnp.take_along_axis(log_probs, inputs.target_id[:, None], axis=1)[:, 0]


def permutation_log_prob(inputs, outputs):
    """Log-probability of the target token from XLNet's query stream."""
    log_probs = jax.nn.log_softmax(outputs["target_logits"].astype(jnp.float32), axis=-1)
    return jnp.take_along_axis(log_probs, inputs.target_id[:, None], axis=1)[:, 0]


def class_logit(inputs, outputs):
    """Logit of the class the model predicts for the unperturbed input."""
    logits = outputs["logits"].astype(jnp.float32)  # [batch, label]
    return jnp.take_along_axis(logits, inputs.target_class[:, None], axis=1)[:, 0]


def target_log_prob(inputs, outputs):
    """Σ_t log p(y_t | x, y_<t) of the decoder target (teacher forcing)."""
    log_probs = jax.nn.log_softmax(outputs["logits"].astype(jnp.float32), axis=-1)
    picked = jnp.take_along_axis(log_probs, inputs.target_ids[..., None], axis=-1)[..., 0]
    return jnp.sum(picked * inputs.decoder_attention_mask.astype(jnp.float32), axis=-1)


SCORES = {
    "embedding": embedding_score,
    "embedding-centroid": embedding_score,
    "masked-lm": token_log_prob,
    "causal-lm": token_log_prob,
    "permutation-lm": permutation_log_prob,
    "classification": class_logit,
    "seq2seq": target_log_prob,
}


def make_embedder(graphdef, params) -> Callable:
    """Return `embed(inputs, embeds [batch, token, d], head_mask) -> [batch, d_model]`: the
    mean-pooled last-layer embedding."""

    def embed(inputs: ObjectiveInputs, embeds, head_mask):
        model = nnx.merge(graphdef, params)
        return pooled_last(inputs, model_outputs("embedding", inputs, model, embeds, head_mask))

    return embed


def make_objective(task: str, graphdef, params) -> Callable:
    """Return `objective(inputs, embeds [batch, token, d], head_mask) -> [batch]` for a task."""
    score = SCORES[task]

    def objective(inputs: ObjectiveInputs, embeds, head_mask):
        model = nnx.merge(graphdef, params)
        return score(inputs, model_outputs(task, inputs, model, embeds, head_mask))

    return objective


def masked_position(ids: np.ndarray, special: np.ndarray) -> int:
    """Return the middle non-special position of one example (the one masked-lm masks)."""
    candidates = np.flatnonzero(~special)
    return int(candidates[len(candidates) // 2]) if len(candidates) else 0
