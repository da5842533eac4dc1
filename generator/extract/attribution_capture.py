"""Attributions, head importance and logit lens in the extract stage (JAX transformations).

Arrays written (axes):
  attribution/objective, baseline_objective, ig_error, target_position, target_id [example]
  attribution/grad_norm, grad_input, integrated_gradients                      [example, token]
  heads/ablation, heads/gradient                                                [layer, head]
  heads/ablation_per_text, heads/gradient_per_text                              [text, layer, head]
    (encoder-decoders: `layer` runs over encoder, decoder self- and cross-attention layers;
    manifest `attribution.heads.sets` names each kind's rows)
  heads/pruning_fraction, pruning_by_importance, pruning_random                [fraction]
  heads/sample_index                                                            [text]
  lens/top_ids, lens/top_probs, lens/top_tokens                                 [example, layer, token, k]
    (encoder-decoders: `layer` = decoder layers, `target` instead of `token`)
  lens/final_rank, lens/final_prob                                              [example, layer, token]
Showcase rows and padding are those of `showcase/*`; for encoder-decoders the attributions are
over the encoder's input tokens and the decoder reads the showcase targets (teacher forcing).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from generator.attribution.heads import (
    ablation_drops,
    fidelity_taylor_drops,
    per_example_gradients,
    pruning_curves_until_collapse,
)
from generator.attribution.lens import has_lens, lens_logits, lens_summary
from generator.attribution.objectives import (
    HEAD_OBJECTIVES,
    TASK_DESCRIPTIONS,
    ObjectiveInputs,
    default_task,
    make_embedder,
    make_objective,
    masked_position,
    task_problem,
    word_embedding_table,
)
from generator.attribution.token_methods import DEFAULT_IG_STEPS, token_scores
from generator.extract.batching import pad_rows, trimmed_width
from generator.extract.compile_time import step_part
from generator.extract.corpus_pass import special_mask
from generator.extract.head_budget import (
    PRUNING_FRACTIONS,
    PRUNING_MASKS,
    RANDOM_ORDERS,
    attribution_groups,
    head_sample_size,
    layerwise,
    mask_chunk,
    sample_and_width,
    sample_width_groups,
)
from generator.extract.head_layers import layerwise_head_drops
from generator.extract.stored_strings import strings_array
from generator.models.device_memory import device_available
from generator.models.memory import conversion_bytes, equal_chunk, rows_within

log = logging.getLogger(__name__)

# The integrated-gradients points of one example run vmapped together while their backward
# pass fits this share of the memory free before the step (models/memory.backward_bytes; less
# what weights converted to a narrower compute dtype hold, `conversion_bytes`) and, on the
# CPU, where that memory is the build's own RSS, `HOST_BACKWARD_BUDGET`; otherwise in
# equal chunks. The estimate undercounts short texts: a bert-base showcase example's 66 points
# of 16-24 tokens at once raised the build's RSS by 1.23 GB, estimated 0.65-1.0 GB, and were
# its peak (3.00 GB); within 512 MiB they run as two chunks of 33.
BACKWARD_SHARE = 4
HOST_BACKWARD_BUDGET = 512 * 1024**2

# A pruning curve stops once every order's mean objective is within this share of the range
# (every head -> every head removed) of its value with every head removed; see
# `pruning_curves_until_collapse`.
COLLAPSE_TOLERANCE = 0.01
LENS_TOP_K = 5
# Masks per call of the pruning curves' program: the PRUNING_MASKS (2 + 9 x 6 = 56) fill 8
# calls of 7 (calls of one fraction's 6 masks took 10 calls, 60 passes).
PRUNING_BATCH = RANDOM_ORDERS + 2
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


@dataclass(frozen=True)
class AttributionContext:
    """What every attribution step of one card reads: model, tokens, corpus and writer.

    model: (graphdef, params) of the model; every jitted program takes params as an argument.
    table: the [vocab, d_model] token-embedding table; pooled_last: [text, d_model]
    last-layer mean-pooled corpus embeddings (the embedding objective's references).
    """

    card: object
    task: str
    config: object
    graphdef: object
    params: object
    table: jax.Array
    tokenizer: object
    tokens: object
    corpus: object
    pooled_last: np.ndarray
    pad_id: int
    writer: object
    progress: bool = False  # draw progress bars (a terminal)

    def bar(self, what: str, total: float, unit: str):
        """A progress bar `CARD: what` over `total` units (drawn only with `progress`)."""
        from tqdm import tqdm

        name = getattr(self.card, "name", "")
        return tqdm(total=total, desc=f"{name}: {what}", unit=unit, disable=not self.progress)

    @property
    def seq2seq(self) -> bool:
        """Return True for encoder-decoder models."""
        return self.config.seq2seq

    def head_rows(self) -> int:
        """Rows of the head mask: the rows of every kind of head together."""
        return sum(head_set["rows"] for head_set in self.head_sets())

    def head_sets(self) -> list[dict]:
        """Each kind of attention head and its rows of the head mask, in order."""
        if not self.seq2seq:
            return [{"kind": "self-attention", "rows": self.config.n_layers}]
        decoder = self.config.n_decoder_layers
        return [
            {"kind": "encoder self-attention", "rows": self.config.n_layers},
            {"kind": "decoder self-attention", "rows": decoder},
            {"kind": "cross-attention", "rows": decoder},
        ]

    @cached_property
    def _logits_program(self):
        """A jitted `(params, ids, mask) -> logits`, compiled once per batch shape."""
        graphdef = self.graphdef

        @jax.jit
        def logits_of(params, ids, mask):
            return nnx.merge(graphdef, params)(ids, mask)["logits"]

        return logits_of

    def forward_logits(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Logits of an encoder-only or decoder model on one padded batch."""
        return np.asarray(self._logits_program(self.params, ids, mask))


def objective_inputs(
    context: AttributionContext, ids, mask, reference, decoder=None
) -> ObjectiveInputs:
    """Build the objective's inputs for one padded batch (masking for masked-lm).

    decoder: (decoder_input_ids, decoder_attention_mask, target_ids) [batch, target] for seq2seq.
    """
    task, tokenizer = context.task, context.tokenizer
    ids = ids.copy()
    lengths = mask.sum(axis=1)
    batch = len(ids)
    position = np.zeros(batch, np.int32)
    target = np.zeros(batch, np.int32)
    target_class = np.zeros(batch, np.int32)
    if task in ("masked-lm", "permutation-lm"):
        special = fixed_tokens(tokenizer, ids, mask)
        for row in range(batch):
            position[row] = masked_position(ids[row], special[row])
            target[row] = ids[row, position[row]]
            if task == "masked-lm":  # permutation-lm hides it by the attention mask instead
                ids[row, position[row]] = tokenizer.mask_token_id
    elif task == "causal-lm":
        position[:] = np.maximum(lengths - 2, 0)
        target[:] = ids[np.arange(batch), np.maximum(lengths - 1, 0)]
    elif task == "classification":
        target_class[:] = np.argmax(context.forward_logits(ids, mask), axis=-1)
    inputs = ObjectiveInputs(ids, mask, position, target, reference, target_class)
    if task == "seq2seq":
        decoder_ids, decoder_mask, target_ids = decoder
        inputs = inputs._replace(
            decoder_input_ids=decoder_ids,
            decoder_attention_mask=decoder_mask,
            target_ids=target_ids,
        )
    return inputs


def class_references(pooled_last: np.ndarray, labels, rows: np.ndarray) -> np.ndarray:
    """Centroid of each row's class (or of the corpus) of last-layer mean-pooled embeddings.

    Without the corpus embeddings (None: representations left out), zeros [row, 1]: only the
    embedding objective reads references. A row past the corpus (a showcase text not in it, so
    without a label) gets the corpus's centroid.
    """
    if pooled_last is None:
        return np.zeros((len(rows), 1), np.float32)
    pooled_last = np.asarray(pooled_last, dtype=np.float32)
    whole = pooled_last.mean(axis=0)
    if labels is None:
        return np.repeat(whole[None], len(rows), axis=0)
    labels = np.asarray(labels)
    centroids = {label: pooled_last[labels == label].mean(axis=0) for label in np.unique(labels)}
    return np.stack([centroids[labels[row]] if row < len(labels) else whole for row in rows])


def attribution_context(
    card,
    loaded,
    task: str,
    *,
    tokenizer,
    tokens,
    corpus,
    pooled_last,
    pad_id: int,
    writer,
    progress: bool = False,
) -> AttributionContext:
    """Return the AttributionContext of a card's loaded model for `task` (weights split off)."""
    graphdef, params = nnx.split(loaded.model)
    return AttributionContext(
        card,
        task,
        loaded.config,
        graphdef,
        params,
        word_embedding_table(loaded.model),
        tokenizer,
        tokens,
        corpus,
        pooled_last,
        pad_id,
        writer,
        progress,
    )


def capture_attributions(
    card,
    loaded,
    *,
    tokenizer,
    tokens,
    corpus,
    pooled_last,
    writer,
    pad_id,
    showcase,
    progress: bool = False,
) -> dict:
    """Compute and store attributions, head importance and the logit lens; return manifest details.

    showcase: (corpus rows, padded ids, mask) of the showcase examples, plus for encoder-decoder
    models their decoder batch (decoder_input_ids, decoder_attention_mask, target_ids).
    progress: progress bars over examples, layers and pruning fractions.
    """
    config = loaded.config
    seq2seq = config.seq2seq
    task = card.task or default_task(config.heads, seq2seq)
    problem = task_problem(task, config.heads, seq2seq)
    details = {"task": task, "description": TASK_DESCRIPTIONS.get(task, ""), "skipped": problem}
    if problem is not None:
        log.info("%s: attributions skipped: %s", card.name, problem)
        return details
    # Weights and inputs enter every jitted program as arguments, never as closed-over
    # constants: XLA compiles large constants slowly (minutes on a GPU for MiniLM's 90 MB) and
    # the persistent compilation cache could not reuse programs across checkpoints.
    context = attribution_context(
        card,
        loaded,
        task,
        tokenizer=tokenizer,
        tokens=tokens,
        corpus=corpus,
        pooled_last=pooled_last,
        pad_id=pad_id,
        writer=writer,
        progress=progress,
    )
    rows, ids, mask, *decoder = showcase
    reference = class_references(pooled_last, corpus.labels, rows)
    inputs = objective_inputs(context, ids, mask, reference, tuple(decoder) or None)
    with step_part("token_attributions"):
        details.update(token_attributions(context, inputs))
    details["heads"] = head_importance(context)
    if has_lens(loaded.model) and task in ("masked-lm", "causal-lm", "seq2seq"):
        with step_part("logit_lens"):
            details["lens"] = logit_lens(context, inputs)
    return details


@jax.jit
def token_embeddings(table, ids):
    """Rows `ids` [text, token] of the embedding table (one program, not one per eager op)."""
    return table[ids]


@jax.jit
def path_ends(table, ids, special, neutral_id):
    """The integrated-gradients path's ends: (input embeddings, baseline) [text, token, d].

    The baseline is the neutral token's embedding, except at `special` positions, which keep
    their own (they are not attributed).
    """
    embeds = table[ids]
    return embeds, jnp.where(special[..., None], embeds, table[neutral_id][None, None, :])


def token_attributions(context: AttributionContext, inputs: ObjectiveInputs) -> dict:
    """Gradient norm, gradient × input and integrated gradients of every showcase example.

    The programs run on the showcase cut to `trimmed_width` (padding scores exactly 0: padded
    keys get no attention and the baseline keeps them), the short examples apart at their own
    width when that saves enough work (`attribution_groups`); stored rows keep the showcase width.
    """
    graphdef, task, tokenizer, writer = (
        context.graphdef,
        context.task,
        context.tokenizer,
        context.writer,
    )
    full_width = inputs.input_ids.shape[1]
    width = trimmed_width(int(np.max(np.sum(inputs.attention_mask, axis=1))), full_width)
    inputs = inputs._replace(
        input_ids=inputs.input_ids[:, :width], attention_mask=inputs.attention_mask[:, :width]
    )
    special = fixed_tokens(tokenizer, inputs.input_ids, inputs.attention_mask)
    embeds, baseline = path_ends(
        context.table, inputs.input_ids, special, np.int32(baseline_token(tokenizer))
    )

    count = sum(int(np.prod(np.shape(leaf))) for leaf in jax.tree.leaves(context.params))
    free = device_available().bytes - conversion_bytes(count, context.card.dtype)
    budget = max(free, 0) // BACKWARD_SHARE
    if jax.devices()[0].platform == "cpu":
        budget = min(budget, HOST_BACKWARD_BUDGET)

    @jax.jit
    def explain(params, inputs, index, embeds_row, baseline_row):
        objective = make_objective(task, graphdef, params)
        row = jax.tree.map(lambda a: jnp.asarray(a)[index][None], inputs)
        f = lambda e: objective(row, e[None], None)[0]  # noqa: E731
        # every path point at once unless their backward pass would not fit (long texts)
        points = DEFAULT_IG_STEPS + 2
        fit = rows_within(context.config, points, embeds_row.shape[0], budget)
        chunk = equal_chunk(points, fit)
        return token_scores(f, embeds_row, baseline_row, DEFAULT_IG_STEPS, chunk)

    lengths = np.sum(inputs.attention_mask, axis=1)
    results = [None] * len(embeds)
    with context.bar("token attributions", len(embeds), "example") as bar:
        for rows, cut in attribution_groups(context.config, lengths, width, DEFAULT_IG_STEPS):
            narrow = inputs._replace(
                input_ids=inputs.input_ids[:, :cut], attention_mask=inputs.attention_mask[:, :cut]
            )
            for i in rows:
                point = (embeds[i, :cut], baseline[i, :cut])
                results[i] = jax.device_get(explain(context.params, narrow, i, *point))
                bar.update()
    errors = write_token_attributions(writer, tokenizer, inputs, results, full_width)
    return {
        "ig_steps": DEFAULT_IG_STEPS,
        "ig_rule": "Gauss-Legendre quadrature",
        "baseline": BASELINE,
        "ig_median_error": float(np.median(errors)),
    }


def write_token_attributions(writer, tokenizer, inputs, results: list, full_width: int):
    """Store each example's scores [example, token] at the showcase width; return ig_error."""
    scalars = ("objective", "baseline_objective", "ig_error")
    stacked = {name: np.stack([r[name] for r in results]) for name in scalars}
    for name in ("grad_norm", "grad_input", "integrated_gradients"):
        scores = np.zeros((len(results), full_width), np.float32)
        for i, result in enumerate(results):
            scores[i, : len(result[name])] = result[name]
        writer.write_array(f"attribution/{name}", scores, ("example", "token"))
    for name in scalars:
        writer.write_array(f"attribution/{name}", stacked[name].astype(np.float32), ("example",))
    writer.write_array("attribution/target_position", inputs.target_position, ("example",))
    writer.write_array("attribution/target_id", inputs.target_id, ("example",))
    writer.write_array(
        "attribution/target_token",
        strings_array(tokenizer.convert_ids_to_tokens([int(i) for i in inputs.target_id])),
        ("example",),
    )
    return stacked["ig_error"]


def head_sample_inputs(
    context: AttributionContext, size: int
) -> tuple[np.ndarray, ObjectiveInputs]:
    """A corpus sample of `size` texts and its objective inputs (decoded targets for T5).

    The head-importance sample (`head_sample_size`); the parameter gradients take a smaller one.
    """
    rows, width = sample_and_width(context.corpus, context.tokens, size)
    return rows, sample_batch(context, rows, width)


def sample_batch(context: AttributionContext, rows: np.ndarray, width: int) -> ObjectiveInputs:
    """The objective inputs of corpus `rows` padded to `width` tokens (decoded targets for T5)."""
    tokens, corpus = context.tokens, context.corpus
    ids, mask = pad_rows([tokens.ids[r] for r in rows], width, len(rows), context.pad_id)
    reference = class_references(context.pooled_last, corpus.labels, rows)
    decoder = None
    if context.seq2seq:
        from generator.extract.seq2seq import sample_decoder_batch

        decoder = sample_decoder_batch(
            context.card,
            context.graphdef,
            context.params,
            tokenizer=context.tokenizer,
            rows=rows,
            ids=ids,
            mask=mask,
        )
    return objective_inputs(context, ids, mask, reference, decoder)


def write_head_importance(writer, rows, per_text, mean_objectives_of) -> dict:
    """Store the head importances and pruning curves; return the pruning curves' summary.

    `per_text` is (ablation, gradient) `[text, layer, head]`; `mean_objectives_of` maps
    `[mask, layer, head]` head masks to the sample's mean objective under each. The curves stop
    where they have collapsed (`pruning_curves_until_collapse`): later fractions are NaN.
    """
    ablation_per_text, gradient_per_text = per_text
    ablation, gradient = ablation_per_text.mean(axis=0), gradient_per_text.mean(axis=0)
    n_rows, n_heads = ablation.shape
    rng = np.random.default_rng(0)
    orders = [np.argsort(ablation.ravel(), kind="stable")]  # least important removed first
    orders += [rng.permutation(n_rows * n_heads) for _ in range(RANDOM_ORDERS)]
    curves, floor, stop = pruning_curves_until_collapse(
        mean_objectives_of,
        orders,
        (n_rows, n_heads),
        PRUNING_FRACTIONS,
        tolerance=COLLAPSE_TOLERANCE,
        batch=PRUNING_BATCH,
    )
    by_importance, random_curves = curves[0], curves[1:]
    writer.write_array("heads/ablation", ablation.astype(np.float32), ("layer", "head"))
    writer.write_array("heads/gradient", gradient.astype(np.float32), ("layer", "head"))
    axes = ("text", "layer", "head")
    writer.write_array("heads/ablation_per_text", ablation_per_text, axes)
    writer.write_array("heads/gradient_per_text", gradient_per_text, axes)
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
    return {
        "objective": float(by_importance[0]),  # fraction 0: every head kept
        "objective_without_heads": floor,
        "collapse_tolerance": COLLAPSE_TOLERANCE,
        "collapsed_at": stop,
    }


def head_importance(context: AttributionContext) -> dict:
    """Ablation and gradient importance of every head over a corpus sample, and pruning curves.

    Per-text values are stored too (`heads/*_per_text`): the analysis takes standard errors and
    the uncertainty of the two methods' agreement from them. For the `embedding` task the
    objective is output fidelity (see `HEAD_OBJECTIVES`) and the gradient method its
    second-order Taylor estimate; other tasks use their own objective and Michel et al. (2019).
    """
    task, config, tokens = context.task, context.config, context.tokens
    size, source = head_sample_size(context.card.head_sample, config, tokens, context.corpus)
    fidelity = task in HEAD_OBJECTIVES
    rows, width = sample_and_width(context.corpus, tokens, size)
    by_layer = layerwise(config, len(rows), width)
    with step_part("head_sample"):
        groups = sample_groups(context, rows, width, fidelity=fidelity, by_layer=by_layer)
    parts = [
        head_drops(context, *group[1:], fidelity=fidelity, by_layer=by_layer) for group in groups
    ]
    # the pruning curves measure against the references the drops were measured against
    groups = [(g[0], part[2], g[2]) for g, part in zip(groups, parts, strict=True)]
    per_text = tuple(
        in_sample_order([g[0] for g in groups], [p[i] for p in parts], len(rows)) for i in (0, 1)
    )
    with (
        step_part("head_pruning"),
        context.bar("head pruning", PRUNING_MASKS, "mask") as bar,
    ):
        evaluate = group_mask_evaluator(context, groups)

        def evaluate_counted(masks):  # called with PRUNING_BATCH masks at a time
            values = evaluate(masks)
            bar.update(len(masks))
            return values

        pruning = write_head_importance(context.writer, rows, per_text, evaluate_counted)
    return {
        "sample_size": int(len(rows)),
        "sample_source": source,
        **pruning,
        "description": HEAD_OBJECTIVES.get(task, TASK_DESCRIPTIONS.get(task, "")),
        "gradient_method": "taylor-fidelity" if fidelity else "michel",
        "layerwise": by_layer,
        "random_orders": RANDOM_ORDERS,
        "pruning_order": "least important (smallest ablation drop) first",
        "sets": context.head_sets(),
    }


def sample_groups(
    context: AttributionContext, rows: np.ndarray, width: int, *, fidelity: bool, by_layer: bool
) -> list[tuple]:
    """The sample in width groups: (positions in the sample, objective inputs, embeddings) each.

    Layer by layer, the short texts run apart at their own width when that saves enough work
    (`sample_width_groups`); else one group of the whole sample at `width`. For the
    fidelity objective each text's reference is its own embedding with every head: computed
    here when the whole model runs per head; layer by layer, the first pass of
    `layerwise_head_drops` gives it.
    """
    lengths = context.tokens.lengths[rows]
    groups = []
    for positions, group_width in sample_width_groups(
        context.config, lengths, width, fidelity=fidelity
    ):
        inputs = sample_batch(context, rows[positions], group_width)
        embeds = token_embeddings(context.table, inputs.input_ids)
        if fidelity and not by_layer:  # each text's own embedding with every head
            inputs = inputs._replace(reference=unablated_embeddings(context, inputs, embeds))
        groups.append((positions, inputs, embeds))
    return groups


def in_sample_order(positions: list[np.ndarray], parts: list[np.ndarray], n: int) -> np.ndarray:
    """Put each group's rows [group text, ...] back at their `positions` -> [text, ...] float32."""
    out = np.zeros((n, *parts[0].shape[1:]), np.float32)
    for where, part in zip(positions, parts, strict=True):
        out[where] = part
    return out


def group_mask_evaluator(context: AttributionContext, groups: list[tuple]):
    """`masks [mask, layer, head] -> [mask]`: the whole sample's mean objective under each.

    The groups' means weighted by their texts (in float64: one group gives its mean exactly).
    """
    evaluators = [(len(g[0]), mask_evaluator(context, *g[1:])) for g in groups]
    total = sum(n for n, _ in evaluators)

    def evaluate(masks):
        return sum(n * np.asarray(e(masks), np.float64) for n, e in evaluators) / total

    return evaluate


def head_drops(
    context: AttributionContext, inputs, embeds, *, fidelity: bool, by_layer: bool
) -> tuple:
    """Per-text (ablation, gradient) importances [text, layer, head], float32, and the inputs.

    Layer by layer (`layerwise_head_drops`) where `layerwise` says so (`by_layer`); else
    (encoder-decoders, whose head mask spans encoder, decoder and cross-attention, and tiny
    models, for which compiling costs more than it saves) the whole model runs per head.
    The inputs come back with the objective's reference the drops were measured against
    (layer by layer, the fidelity objective's is found on the way).
    """
    gradient = "head_taylor" if fidelity else "head_gradient"
    if not by_layer:
        with step_part("head_ablation"):
            ablation = ablation_per_text(context, inputs, embeds)
        with step_part(gradient):
            return (
                ablation,
                gradient_per_text(context, inputs, embeds, fidelity=fidelity),
                inputs,
            )
    chunk = mask_chunk(*inputs.input_ids.shape)
    ablation, taylor, inputs = layerwise_head_drops(
        context, inputs, embeds, chunk, fidelity=fidelity
    )
    if fidelity:
        return ablation, taylor, inputs
    with step_part(gradient):
        return ablation, gradient_per_text(context, inputs, embeds, fidelity=False), inputs


def head_mask_ones(context: AttributionContext) -> jax.Array:
    """The [layer, head] head mask that keeps every head."""
    return jnp.ones((context.head_rows(), context.config.n_heads), jnp.float32)


def unablated_embeddings(context: AttributionContext, inputs, embeds) -> np.ndarray:
    """Each sample text's mean-pooled last-layer embedding with every head [text, d_model]."""
    graphdef, ones = context.graphdef, head_mask_ones(context)
    embed = jax.jit(lambda p, i, e: make_embedder(graphdef, p)(i, e, ones))
    return np.asarray(embed(context.params, inputs, embeds))


def masked_objective(context: AttributionContext, params, inputs, embeds):
    """The sample's objective as a function of the head mask alone: `mask -> [text]`."""
    objective = make_objective(context.task, context.graphdef, params)
    return lambda head_mask: objective(inputs, embeds, head_mask)


def ablation_per_text(context: AttributionContext, inputs, embeds) -> np.ndarray:
    """Objective drop of each text when each head alone is removed [text, layer, head]."""
    n_rows, n_heads = context.head_rows(), context.config.n_heads
    chunk = mask_chunk(*inputs.input_ids.shape)  # long texts get fewer masks per chunk

    @jax.jit
    def ablation_of(params, inputs, embeds):
        objective = masked_objective(context, params, inputs, embeds)
        return ablation_drops(objective, n_rows, n_heads, chunk=chunk)

    return np.asarray(ablation_of(context.params, inputs, embeds), np.float32)


def gradient_per_text(context: AttributionContext, inputs, embeds, *, fidelity) -> np.ndarray:
    """Gradient importance of each head for each text [text, layer, head].

    fidelity: the second-order Taylor estimate of the output-fidelity drop; else Michel et al.
    """
    graphdef, task = context.graphdef, context.task
    n_rows, n_heads = context.head_rows(), context.config.n_heads
    chunk = mask_chunk(*inputs.input_ids.shape)

    @jax.jit
    def gradient_of(params, inputs, embeds):
        if fidelity:
            embed = make_embedder(graphdef, params)
            return fidelity_taylor_drops(
                lambda mask: embed(inputs, embeds, mask), n_rows, n_heads, chunk=chunk
            )
        objective = make_objective(task, graphdef, params)
        return jnp.abs(per_example_gradients(objective, (inputs, embeds), n_rows, n_heads))

    return np.asarray(gradient_of(context.params, inputs, embeds), np.float32)


def mask_evaluator(context: AttributionContext, inputs, embeds):
    """Return `masks [mask, layer, head] -> [mask]`: the sample's mean objective under each.

    `PRUNING_BATCH` masks per call of one compiled program (a call with fewer repeats its last
    mask), vmapped within the memory budget (`mask_chunk`): `pruning_curves_until_collapse`
    gives it `PRUNING_BATCH` masks a call, running on from one fraction into the next.
    """
    chunk = min(PRUNING_BATCH, mask_chunk(*inputs.input_ids.shape))

    @jax.jit
    def mean_objectives_of(params, inputs, embeds, masks):
        objective = masked_objective(context, params, inputs, embeds)
        return jax.lax.map(lambda mask: jnp.mean(objective(mask)), masks, batch_size=chunk)

    def evaluate(masks):
        masks, values = np.asarray(masks, np.float32), []
        for start in range(0, len(masks), PRUNING_BATCH):
            part = masks[start : start + PRUNING_BATCH]
            padded = np.concatenate([part, np.repeat(part[-1:], PRUNING_BATCH - len(part), 0)])
            value = mean_objectives_of(context.params, inputs, embeds, padded)
            values.append(np.asarray(value)[: len(part)])
        return np.concatenate(values)

    return evaluate


def logit_lens(context: AttributionContext, inputs: ObjectiveInputs) -> dict:
    """Top-k predictions of every layer at every showcase position; rank of the final prediction.

    Encoder-decoders: the decoder's layers at every target position (teacher forcing).
    """
    graphdef, tokenizer, writer = context.graphdef, context.tokenizer, context.writer

    @jax.jit
    def lens(params, inputs):
        module = nnx.merge(graphdef, params)
        if context.seq2seq:
            out = module(
                inputs.input_ids,
                inputs.attention_mask,
                inputs.decoder_input_ids,
                inputs.decoder_attention_mask,
            )
            hidden = out["decoder_hidden_states"]
        else:
            hidden = module(inputs.input_ids, inputs.attention_mask)["hidden_states"]

        def one(example):  # [layer, token, d]: one example's [layer, token, vocab] logits at a time
            summary = lens_summary(lens_logits(module, example[None]), LENS_TOP_K)
            return jax.tree.map(lambda a: a[0], summary)

        return jax.lax.map(one, hidden)

    summary = jax.device_get(lens(context.params, inputs))
    top_ids = np.asarray(summary["top_ids"], dtype=np.int32)
    position = "target" if context.seq2seq else "token"
    axes4 = ("example", "layer", position, "k")
    writer.write_array("lens/top_ids", top_ids, axes4)
    writer.write_array("lens/top_probs", np.asarray(summary["top_probs"], np.float32), axes4)
    words = tokenizer.convert_ids_to_tokens([int(i) for i in top_ids.ravel()])
    writer.write_array("lens/top_tokens", strings_array(words).reshape(top_ids.shape), axes4)
    axes3 = ("example", "layer", position)
    writer.write_array("lens/final_rank", np.asarray(summary["final_rank"], np.int32), axes3)
    writer.write_array("lens/final_prob", np.asarray(summary["final_prob"], np.float32), axes3)
    source = (
        "the decoder's layers at every target position (teacher forcing on the showcase target)"
        if context.seq2seq
        else "the objective's input (masked-lm: with its token masked)"
    )
    return {"k": LENS_TOP_K, "input": source}
