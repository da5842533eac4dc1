"""Parameter gradients of the card's task loss over a corpus sample (the weights page's section).

Loss per task (`LOSSES`, stated on the page): `causal-lm` follows the Hugging Face convention
(labels = input_ids, mean next-token cross-entropy over every non-padding predicted token, so
the figures match `model(**batch, labels=labels).loss.backward()` on one batch of the sample);
`seq2seq` is its encoder-decoder form (mean cross-entropy over every target token, teacher
forcing); the other tasks reuse the attribution objectives (generator/attribution/objectives.py)
as losses: masked-lm and permutation-lm the cross-entropy of the original token at one position
per text, classification the cross-entropy against the model's own predicted class, embedding
1 − the cosine to the class centroid; all averaged over the sample's texts.

Sample (the budget): up to SAMPLE_SIZE texts, chosen as the head-importance sample is
(`SAMPLE_SELECTION`), each cut to the card's max_length and
padded to the longest of them (rounded up to 8). Texts go through one at a time (a batch of one
at that width, one compiled program): the gradient g_i of example i's summed loss is added to a
float32 running sum on the device, and ‖g_i‖ / n_i (n_i: its targets) is its own gradient norm.
The sum divided by n = Σ n_i is exactly the gradient of the sample's mean loss over one batch,
without the activation memory of the whole batch; no gradient tensor leaves the device, only one
norm per tensor.

Arrays (axes; `tensor` in the order of manifest["gradients"]["tensors"]):
  gradients/sample_index  [text]    corpus rows of the sample
  gradients/example_norms [text]    ‖∇ L_i‖ of each text's own mean loss (NaN: no target)
  gradients/grad_norms    [tensor]  ‖∇ L‖_2 of the sample's mean loss, per parameter tensor
  gradients/weight_norms  [tensor]  ‖W‖_2 of the same tensor
  checkpoints/NAME/gradients/{example_norms, grad_norms, weight_norms}: the same loss and
  inputs (targets, masked positions, predicted classes, references) with each further
  checkpoint's weights.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from generator.attribution.objectives import (
    EMBEDDING_TASKS,
    ObjectiveInputs,
    make_objective,
    word_embedding_table,
)

log = logging.getLogger(__name__)

SAMPLE_SIZE = 32
SAMPLE_SELECTION = (
    "the held-out rows (split validation or test) when the corpus has any, else every row; "
    "labels round-robin, corpus order within a label"
)
_EMBEDDING_LOSS = (
    "mean over the sample's texts of 1 − the cosine similarity between the text's mean-pooled "
    "last-layer embedding and the centroid of its class (of the whole corpus when unlabeled)"
)
LOSSES = {
    "causal-lm": "mean next-token cross-entropy over every non-padding predicted token of the "
    "sample (labels = input_ids, the Hugging Face convention: model(**batch, labels=labels).loss)",
    "seq2seq": "mean cross-entropy over every target token of the sample, with teacher forcing "
    "(labels = the decoder target: the corpus target or the model's own greedy output)",
    "masked-lm": "mean over the sample's texts of the cross-entropy of the original token at one "
    "masked position (the middle non-special token, replaced by the mask token; labels are -100 "
    "elsewhere)",
    "permutation-lm": "mean over the sample's texts of the cross-entropy of the original token at "
    "one position (the middle non-special token) predicted by XLNet's query stream, which cannot "
    "see it",
    "classification": "mean over the sample's texts of the cross-entropy against the class the "
    "model predicts for the text (its own prediction as the label)",
    "embedding": _EMBEDDING_LOSS,
    "embedding-centroid": _EMBEDDING_LOSS,
}


def loss_terms(task: str, graphdef):
    """Return `terms(params, inputs) -> (summed loss [batch], targets [batch])` of a task."""

    def causal(params, inputs: ObjectiveInputs):
        module = nnx.merge(graphdef, params)
        logits = module(inputs.input_ids, inputs.attention_mask)["logits"].astype(jnp.float32)
        log_probs = jax.nn.log_softmax(logits[:, :-1], axis=-1)  # [batch, token - 1, vocab]
        picked = jnp.take_along_axis(log_probs, inputs.input_ids[:, 1:, None], axis=-1)[..., 0]
        valid = inputs.attention_mask[:, 1:].astype(jnp.float32)
        return -jnp.sum(picked * valid, axis=1), jnp.sum(valid, axis=1)

    def classification(params, inputs: ObjectiveInputs):
        module = nnx.merge(graphdef, params)
        logits = module(inputs.input_ids, inputs.attention_mask)["logits"].astype(jnp.float32)
        log_probs = jax.nn.log_softmax(logits, axis=-1)  # [batch, label]
        picked = jnp.take_along_axis(log_probs, inputs.target_class[:, None], axis=1)[:, 0]
        return -picked, jnp.ones_like(picked)

    def objective_loss(params, inputs: ObjectiveInputs):
        embeds = word_embedding_table(nnx.merge(graphdef, params))[inputs.input_ids]
        value = make_objective(task, graphdef, params)(inputs, embeds, None)  # [batch]
        if task == "seq2seq":
            return -value, jnp.sum(inputs.decoder_attention_mask.astype(jnp.float32), axis=1)
        loss = 1.0 - value if task in EMBEDDING_TASKS else -value
        return loss, jnp.ones_like(loss)

    return {"causal-lm": causal, "classification": classification}.get(task, objective_loss)


def make_gradient_step(task: str, graphdef):
    """Return a jitted `(params, total, inputs, index) -> (total + g, loss sum, targets, ‖g‖²)`.

    g is the gradient of example `index`'s summed loss; `total` (float32, like params) is
    donated, so the running sum is updated in place. The layers are traced unrolled on every
    platform (`unrolled_layers`): a scan would stack the layers' parameters and their
    gradients in temporaries of about twice the parameters (Llama-2-7B's shapes: parameters,
    sum and temporaries 107 GB scanned, 55 GB unrolled; memory.gradient_step_bytes).
    """
    from generator.models.layers import unrolled_layers

    terms = loss_terms(task, graphdef)

    @functools.partial(jax.jit, donate_argnums=1)
    def step(params, total, inputs, index):
        row = jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, index, 0), inputs)

        def loss(p):
            summed, count = terms(p, row)
            return summed[0], count[0]

        with unrolled_layers():
            (summed, count), grads = jax.value_and_grad(loss, has_aux=True)(params)
        total = jax.tree.map(lambda t, g: t + g.astype(jnp.float32), total, grads)
        squared = sum(jnp.sum(jnp.square(g.astype(jnp.float32))) for g in jax.tree.leaves(grads))
        return total, summed, count, squared

    return step


def memory_problem(config, parameters: int, width: int, *, checkpoints: bool, available):
    """Why the gradient step cannot fit in `available` memory (None: it fits), in one line.

    It needs `memory.gradient_step_bytes` beside the resident parameters, and with further
    checkpoints also their float32 parameters (loaded one at a time beside the card's).
    `parameters` counts the parameters one device holds.
    """
    from generator.models.memory import GIB, gradient_step_bytes

    need = gradient_step_bytes(config, parameters, width) + (4 * parameters if checkpoints else 0)
    if need <= available.bytes:
        return None
    held = "a float32 sum of every parameter, the embeddings' gradients, one text's backward pass"
    if checkpoints:
        held += ", a further checkpoint's parameters"
    return (
        f"they need about {need / GIB:.2f} GiB beside the loaded parameters ({held}) but "
        f"{available.where} has {available.bytes / GIB:.2f} GiB free; shard the parameters "
        "with `mesh: {model: N}` or build on a machine with more memory"
    )


def gradient_estimate(params, config, tokens, corpus, checkpoints: int):
    """The parameter-gradient step's estimate (a StepEstimate): its sample, FLOPs, memory time.

    Each text runs alone at the sample's width: a forward and a backward pass
    (`estimate.BACKWARD`) and `estimate.GRADIENT_PASSES` passes over float32 gradients of every
    tensor, for the card's weights and each further checkpoint.
    """
    from generator.extract.estimate import (
        BACKWARD,
        StepEstimate,
        forward_flops,
        gradient_memory_seconds,
    )
    from generator.extract.head_budget import sample_and_width

    rows, width = sample_and_width(corpus, tokens, SAMPLE_SIZE)
    runs = len(rows) * (1 + checkpoints)
    sizes = [4 * int(np.prod(np.shape(leaf))) for leaf in jax.tree.leaves(params)]
    budget = f"{len(rows)} texts of {width} tokens one at a time"
    if checkpoints:
        budget += f", x {1 + checkpoints} weights"
    flops = runs * BACKWARD * forward_flops(config, 1, width)
    return StepEstimate("parameter_gradients", budget, flops, gradient_memory_seconds(sizes, runs))


@jax.jit
def float32_zeros(tree):
    """float32 zeros shaped like every array of a tree (one program for the whole tree)."""
    return jax.tree.map(lambda a: jnp.zeros(a.shape, jnp.float32), tree)


@jax.jit
def _tensor_norms(tree):
    """Return the L2 norm of every array of a tree (float32)."""
    return jax.tree.map(lambda a: jnp.sqrt(jnp.sum(jnp.square(a.astype(jnp.float32)))), tree)


def flat_values(state) -> dict[str, float]:
    """Return the scalars of an nnx state keyed by dotted parameter path."""
    out = {}
    for path, variable in nnx.to_flat_state(state):
        value = variable.get_value() if hasattr(variable, "get_value") else variable
        out[".".join(str(p) for p in path)] = float(value)
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class GradientResult:
    """One gradient pass: per-tensor norms (dotted path -> value), per-example norms, the loss.

    grad_norms / weight_norms: sorted by path; example_norms [text] (NaN: no target);
    loss: the sample's mean loss; n_targets: the targets it averages over.
    """

    grad_norms: dict[str, float]
    weight_norms: dict[str, float]
    example_norms: np.ndarray
    loss: float
    n_targets: int


def gradient_pass(step, params, inputs: ObjectiveInputs, desc: str = "") -> GradientResult:
    """Run the sample example by example through `step`; reduce the gradient to norms.

    Args:
        step: from `make_gradient_step`.
        params: the model's parameter state (the graph `step` was made for).
        inputs: the padded sample [text, token] (and its targets), as `ObjectiveInputs`.
        desc: the progress bar's label; none without one.
    """
    from tqdm import tqdm

    device_inputs = jax.tree.map(jnp.asarray, inputs)
    total = float32_zeros(params)
    n = len(inputs.input_ids)
    sums, counts, squares = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in tqdm(range(n), desc=desc, disable=not desc):
        total, summed, count, squared = step(params, total, device_inputs, i)
        sums[i], counts[i], squares[i] = float(summed), float(count), float(squared)
    n_targets = float(counts.sum())
    grad_norms = flat_values(_tensor_norms(total))
    with np.errstate(invalid="ignore", divide="ignore"):
        example = np.where(counts > 0, np.sqrt(squares) / counts, np.nan)
    return GradientResult(
        grad_norms={k: v / max(n_targets, 1.0) for k, v in grad_norms.items()},
        weight_norms=flat_values(_tensor_norms(params)),
        example_norms=example.astype(np.float32),
        loss=float(sums.sum() / max(n_targets, 1.0)),
        n_targets=int(n_targets),
    )


def model_gradients(task: str, graphdef, params, inputs: ObjectiveInputs) -> GradientResult:
    """Return the gradient norms of `task`'s loss for one model on a prepared sample."""
    return gradient_pass(make_gradient_step(task, graphdef), params, inputs)


def checkpoint_names(config, paths: list[str]) -> dict[str, str]:
    """Map dotted parameter paths of our model to the checkpoint's names (family `NameMap`)."""
    from generator.models.registry import family_for

    names = family_for(config.model_type).names(config)
    return {path: names.checkpoint_name(tuple(path.split(".")))[0] for path in paths}


def write_result(writer, prefix: str, result: GradientResult) -> None:
    """Store one pass's per-example and per-tensor norms under `prefix` (gradients/ ...)."""
    writer.write_array(f"{prefix}example_norms", result.example_norms, ("text",))
    for name in ("grad_norms", "weight_norms"):
        values = np.array(list(getattr(result, name).values()), np.float32)
        writer.write_array(f"{prefix}{name}", values, ("tensor",))


def capture_gradients(card, loaded, *, context, writer, progress: bool) -> dict:
    """Compute and store the gradient norms of the card's model and checkpoints; return details.

    Args:
        card: the model card (task, checkpoints, dtype).
        loaded: the card model's LoadedModel.
        context: the AttributionContext of the run (task, tokens, corpus, references).
        writer: the ArtifactWriter of the staging folder.
        progress: show progress bars.
    """
    import time

    from generator.extract.attribution_capture import head_sample_inputs
    from generator.extract.checkpoints import check_tokenizer, checkpoint_dir, checkpoint_params

    started = time.perf_counter()
    task, graphdef = context.task, context.graphdef
    rows, inputs = head_sample_inputs(context, SAMPLE_SIZE)
    step = make_gradient_step(task, graphdef)
    label = f"{card.name}: gradients" if progress else ""
    result = gradient_pass(step, context.params, inputs, label)
    writer.write_array("gradients/sample_index", rows, ("text",))
    write_result(writer, "gradients/", result)
    records = []
    for checkpoint in card.checkpoints:
        folder = checkpoint_dir(card, checkpoint)
        params, _ = checkpoint_params(folder, checkpoint.name, loaded, card.dtype)
        check_tokenizer(folder, checkpoint.name, context.tokenizer)
        other = gradient_pass(step, params, inputs, label and f"{label}, {checkpoint.name}")
        write_result(writer, f"checkpoints/{checkpoint.name}/gradients/", other)
        records.append({"name": checkpoint.name, "loss_value": other.loss})
    log.info(
        "%s: gradients of %d texts (%d checkpoints) in %.1f s",
        card.name,
        len(rows),
        len(records),
        time.perf_counter() - started,
    )
    paths = list(result.grad_norms)
    names = checkpoint_names(loaded.config, paths)
    sizes = {
        ".".join(str(p) for p in path): int(np.prod(variable.get_value().shape))
        for path, variable in nnx.to_flat_state(context.params)
    }
    return {
        "task": task,
        "loss": LOSSES[task],
        "skipped": None,
        "loss_value": result.loss,
        "n_targets": result.n_targets,
        "sample": {
            "size": int(len(rows)),
            "budget": SAMPLE_SIZE,
            "selection": SAMPLE_SELECTION,
            "width": int(inputs.input_ids.shape[1]),
            "max_length": int(context.tokens.max_length),
        },
        "tensors": [{"name": names[p], "path": p, "count": sizes[p]} for p in paths],
        "checkpoints": records,
    }
