"""Attributions, head importance and logit lens in the extract stage (JAX transformations).

Arrays written (axes):
  attribution/objective, baseline_objective, ig_error, target_position, target_id [example]
  attribution/grad_norm, grad_input, integrated_gradients                      [example, token]
  heads/ablation, heads/gradient                                                [layer, head]
  heads/pruning_fraction, pruning_by_importance, pruning_random                [fraction]
  heads/sample_index                                                            [text]
  lens/top_ids, lens/top_probs, lens/top_tokens                                 [example, layer, token, k]
  lens/final_rank, lens/final_prob                                              [example, layer, token]
Showcase rows and padding are those of `showcase/*`.
"""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from generator.attribution.heads import (
    ablation_importance,
    mean_objectives,
    per_example_gradient_importance,
    pruning_curve,
)
from generator.attribution.lens import has_lens, lens_logits, lens_summary
from generator.attribution.objectives import (
    TASK_DESCRIPTIONS,
    ObjectiveInputs,
    default_task,
    make_objective,
    masked_position,
    task_problem,
    word_embedding_table,
)
from generator.attribution.token_methods import (
    DEFAULT_IG_STEPS,
    gradient_norm,
    gradient_times_input,
    integrated_gradients,
)
from generator.extract.batching import bucket_length, pad_rows
from generator.extract.corpus_pass import special_mask
from generator.extract.showcase import choose_showcase

log = logging.getLogger(__name__)

HEAD_SAMPLE = 64  # texts used for head importance (held-out first, round-robin over labels)
PRUNING_FRACTIONS = np.round(np.arange(0.0, 1.0, 0.1), 2)
RANDOM_ORDERS = 5
LENS_TOP_K = 5
BASELINE = (
    "the embedding of the padding token (else unknown, else end-of-sequence) at every non-special "
    "position; special tokens keep their embeddings"
)


def baseline_token(tokenizer) -> int:
    """The token whose embedding replaces content tokens in the integrated-gradients baseline.

    A real token's embedding, not zeros: models whose first operation is an RMS norm (Llama-like,
    no position embeddings added) are singular at the zero vector, which breaks the path integral.
    """
    for token_id in (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    return 0


def fixed_tokens(tokenizer, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Return [batch, token] booleans: special tokens and padding (kept as they are)."""
    return special_mask(ids, mask, list(tokenizer.all_special_ids)).astype(bool) | (mask == 0)


def objective_inputs(task, tokenizer, ids, mask, reference, forward_logits) -> ObjectiveInputs:
    """Build the objective's inputs for one padded batch (masking for masked-lm)."""
    ids = ids.copy()
    lengths = mask.sum(axis=1)
    batch = len(ids)
    position = np.zeros(batch, np.int32)
    target = np.zeros(batch, np.int32)
    target_class = np.zeros(batch, np.int32)
    if task == "masked-lm":
        special = fixed_tokens(tokenizer, ids, mask)
        for row in range(batch):
            position[row] = masked_position(ids[row], special[row])
            target[row] = ids[row, position[row]]
            ids[row, position[row]] = tokenizer.mask_token_id
    elif task == "causal-lm":
        position[:] = np.maximum(lengths - 2, 0)
        target[:] = ids[np.arange(batch), np.maximum(lengths - 1, 0)]
    elif task == "classification":
        target_class[:] = np.argmax(np.asarray(forward_logits(ids, mask)), axis=-1)
    return ObjectiveInputs(ids, mask, position, target, reference, target_class)


def class_references(pooled_last: np.ndarray, labels, rows: np.ndarray) -> np.ndarray:
    """Centroid of each row's class (or of the corpus) of last-layer mean-pooled embeddings."""
    pooled_last = np.asarray(pooled_last, dtype=np.float32)
    if labels is None:
        return np.repeat(pooled_last.mean(axis=0, keepdims=True), len(rows), axis=0)
    labels = np.asarray(labels)
    centroids = {label: pooled_last[labels == label].mean(axis=0) for label in np.unique(labels)}
    return np.stack([centroids[labels[row]] for row in rows])


def capture_attributions(
    card,
    loaded,
    tokenizer,
    tokens,
    corpus,
    pooled_last,
    writer,
    pad_id,
    showcase_rows,
    showcase_ids,
    showcase_mask,
    strings_array,
) -> dict:
    """Compute and store attributions, head importance and the logit lens; return manifest details."""
    config = loaded.config
    task = card.task or default_task(config.heads)
    problem = task_problem(task, config.heads)
    if getattr(config, "seq2seq", False):
        task = card.task or "seq2seq"
        problem = "attributions of encoder-decoder models are not implemented yet"
    details = {"task": task, "description": TASK_DESCRIPTIONS.get(task, ""), "skipped": problem}
    if problem is not None:
        log.info("%s: attributions skipped: %s", card.name, problem)
        return details
    # Weights and inputs enter every jitted program as arguments, never as closed-over
    # constants: XLA compiles large constants slowly (minutes on a GPU for MiniLM's 90 MB) and
    # the persistent compilation cache could not reuse programs across checkpoints.
    graphdef, params = nnx.split(loaded.model)
    table = word_embedding_table(loaded.model)

    @jax.jit
    def logits_of(params, ids, mask):
        return nnx.merge(graphdef, params)(ids, mask)["logits"]

    def forward_logits(ids, mask):
        return logits_of(params, ids, mask)

    reference = class_references(pooled_last, corpus.labels, showcase_rows)
    inputs = objective_inputs(
        task, tokenizer, showcase_ids, showcase_mask, reference, forward_logits
    )
    special = fixed_tokens(tokenizer, inputs.input_ids, inputs.attention_mask)
    embeds = jnp.asarray(table)[inputs.input_ids]
    neutral = jnp.asarray(table)[baseline_token(tokenizer)]
    baseline = jnp.where(jnp.asarray(special)[..., None], embeds, neutral[None, None, :])

    @jax.jit
    def explain(params, inputs, index, embeds_row, baseline_row):
        objective = make_objective(task, graphdef, params)
        row = jax.tree.map(lambda a: jnp.asarray(a)[index][None], inputs)
        f = lambda e: objective(row, e[None], None)[0]  # noqa: E731
        ig, error = integrated_gradients(f, embeds_row, baseline_row, DEFAULT_IG_STEPS)
        return {
            "grad_norm": gradient_norm(f, embeds_row),
            "grad_input": gradient_times_input(f, embeds_row),
            "integrated_gradients": ig,
            "ig_error": error,
            "objective": f(embeds_row),
            "baseline_objective": f(baseline_row),
        }

    results = [
        jax.device_get(explain(params, inputs, i, embeds[i], baseline[i]))
        for i in range(len(embeds))
    ]
    stacked = {name: np.stack([r[name] for r in results]) for name in results[0]}
    for name in ("grad_norm", "grad_input", "integrated_gradients"):
        writer.write_array(
            f"attribution/{name}", stacked[name].astype(np.float32), ("example", "token")
        )
    for name in ("objective", "baseline_objective", "ig_error"):
        writer.write_array(f"attribution/{name}", stacked[name].astype(np.float32), ("example",))
    writer.write_array("attribution/target_position", inputs.target_position, ("example",))
    writer.write_array("attribution/target_id", inputs.target_id, ("example",))
    writer.write_array(
        "attribution/target_token",
        strings_array(tokenizer.convert_ids_to_tokens([int(i) for i in inputs.target_id])),
        ("example",),
    )
    details.update(
        {
            "ig_steps": DEFAULT_IG_STEPS,
            "ig_rule": "Gauss-Legendre quadrature",
            "baseline": BASELINE,
            "ig_median_error": float(np.median(stacked["ig_error"])),
        }
    )
    details["heads"] = head_importance(
        card,
        tokens,
        corpus,
        tokenizer,
        (graphdef, params),
        table,
        config,
        pad_id,
        pooled_last,
        forward_logits,
        task,
        writer,
    )
    if has_lens(loaded.model) and task in ("masked-lm", "causal-lm"):
        details["lens"] = logit_lens(
            loaded.model, graphdef, params, inputs, tokenizer, writer, strings_array
        )
    return details


def head_importance(
    card,
    tokens,
    corpus,
    tokenizer,
    model,
    table,
    config,
    pad_id,
    pooled_last,
    forward_logits,
    task,
    writer,
) -> dict:
    """Ablation and gradient importance of every head over a corpus sample, and pruning curves.

    model: (graphdef, params) of the model; every program takes the weights as an argument.
    """
    graphdef, params = model
    rows = choose_showcase(len(corpus), HEAD_SAMPLE, corpus.labels, corpus.splits)
    width = bucket_length(int(max(tokens.lengths[rows])), tokens.max_length)
    ids, mask = pad_rows([tokens.ids[r] for r in rows], width, len(rows), pad_id)
    reference = class_references(pooled_last, corpus.labels, rows)
    inputs = objective_inputs(task, tokenizer, ids, mask, reference, forward_logits)
    embeds = jnp.asarray(table)[inputs.input_ids]
    n_layers, n_heads = config.n_layers, config.n_heads

    def objective_of(params, inputs, embeds):
        objective = make_objective(task, graphdef, params)
        return lambda head_mask: objective(inputs, embeds, head_mask)

    @jax.jit
    def ablation_of(params, inputs, embeds):
        return ablation_importance(objective_of(params, inputs, embeds), n_layers, n_heads)

    @jax.jit
    def gradient_of(params, inputs, embeds):
        objective = make_objective(task, graphdef, params)
        return per_example_gradient_importance(objective, (inputs, embeds), n_layers, n_heads)

    @jax.jit
    def mean_objectives_of(params, inputs, embeds, masks):
        return mean_objectives(objective_of(params, inputs, embeds))(masks)

    @jax.jit
    def objective_with(params, inputs, embeds, head_mask):
        return objective_of(params, inputs, embeds)(head_mask)

    def masked(head_mask):
        return objective_with(params, inputs, embeds, head_mask)

    def evaluate(masks):
        return mean_objectives_of(params, inputs, embeds, masks)

    ablation = np.asarray(ablation_of(params, inputs, embeds))
    gradient = np.asarray(gradient_of(params, inputs, embeds))
    order = np.argsort(ablation.ravel(), kind="stable")  # least important removed first
    by_importance = pruning_curve(masked, order, n_layers, n_heads, PRUNING_FRACTIONS, evaluate)
    rng = np.random.default_rng(0)
    random_curves = [
        pruning_curve(
            masked,
            rng.permutation(n_layers * n_heads),
            n_layers,
            n_heads,
            PRUNING_FRACTIONS,
            evaluate,
        )
        for _ in range(RANDOM_ORDERS)
    ]
    writer.write_array("heads/ablation", ablation.astype(np.float32), ("layer", "head"))
    writer.write_array("heads/gradient", gradient.astype(np.float32), ("layer", "head"))
    writer.write_array(
        "heads/pruning_fraction", PRUNING_FRACTIONS.astype(np.float32), ("fraction",)
    )
    writer.write_array(
        "heads/pruning_by_importance", by_importance.astype(np.float32), ("fraction",)
    )
    writer.write_array(
        "heads/pruning_random", np.mean(random_curves, axis=0).astype(np.float32), ("fraction",)
    )
    writer.write_array("heads/sample_index", rows, ("text",))
    full = float(np.mean(np.asarray(masked(jnp.ones((n_layers, n_heads))))))
    return {
        "sample_size": int(len(rows)),
        "objective": full,
        "random_orders": RANDOM_ORDERS,
        "pruning_order": "least important (smallest ablation drop) first",
    }


def logit_lens(model, graphdef, params, inputs, tokenizer, writer, strings_array) -> dict:
    """Top-k predictions of every layer at every showcase position; rank of the final prediction."""

    @jax.jit
    def lens(params, ids, mask):
        module = nnx.merge(graphdef, params)
        out = module(ids, mask)
        return lens_summary(lens_logits(module, out["hidden_states"]), LENS_TOP_K)

    summary = jax.device_get(lens(params, inputs.input_ids, inputs.attention_mask))
    top_ids = np.asarray(summary["top_ids"], dtype=np.int32)
    axes4 = ("example", "layer", "token", "k")
    writer.write_array("lens/top_ids", top_ids, axes4)
    writer.write_array("lens/top_probs", np.asarray(summary["top_probs"], np.float32), axes4)
    words = tokenizer.convert_ids_to_tokens([int(i) for i in top_ids.ravel()])
    writer.write_array("lens/top_tokens", strings_array(words).reshape(top_ids.shape), axes4)
    axes3 = ("example", "layer", "token")
    writer.write_array("lens/final_rank", np.asarray(summary["final_rank"], np.int32), axes3)
    writer.write_array("lens/final_prob", np.asarray(summary["final_prob"], np.float32), axes3)
    return {"k": LENS_TOP_K, "input": "the objective's input (masked-lm: with its token masked)"}
