"""Head ablation layer by layer: the layers below a head run once, not once per head.

Removing a head of layer l changes nothing below l, so for each layer the sample's input of
that layer (with every head) is computed once and only layers l.. run for each of its heads,
the heads of one layer vmapped in chunks within the memory budget (`mask_chunk`). For the
`embedding` task the second-order Taylor estimate of each head's fidelity drop linearises the
layers from l upward once per layer (one primal pass) and takes one tangent pass per head; the
fidelity reference (each text's own embedding with every head) comes from the first program's
pass with every head, not from a pass of its own.
One compiled program serves every layer (the layer index is traced: `window_stage`).

The objective is the task's own (`SCORES`, the same as `make_objective`'s); the results equal
`ablation_drops` and `fidelity_taylor_drops` on the whole model up to float rounding.

Arrays returned: ablation, taylor [text, layer, head].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from generator.attribution.heads import row_ablation_drops, row_taylor_drops
from generator.attribution.objectives import (
    SCORES,
    ObjectiveInputs,
    embed_stage,
    layer_output,
    lm_positions,
    outputs_from,
    pooled_last,
)
from generator.extract.compile_time import step_part


def layer_programs(task: str, graphdef, n_heads: int, chunk: int, *, own_reference: bool):
    """Return the jitted (first, ablation, taylor) programs of layer-by-layer head importance.

    first(params, inputs, embeds) -> (input of layer 0, objective with every head [text], and
    with `own_reference` (fidelity) each text's mean-pooled last-layer embedding with every
    head [text, d_model], the reference that objective is measured against; else None);
    ablation(params, inputs, embeds, x, full, start) -> (ablation drops [text, head], the input
    of layer start + 1); taylor(params, inputs, embeds, x, start) -> Taylor drops [text, head].
    """
    score = SCORES[task]

    @jax.jit
    def first(params, inputs: ObjectiveInputs, embeds):
        model = nnx.merge(graphdef, params)
        x, ctx = embed_stage(task, inputs, model, embeds)
        outputs = model.run_stages(x, ctx, None, positions=lm_positions(task, inputs))
        reference = None
        if own_reference:
            reference = pooled_last(inputs, outputs)
            inputs = inputs._replace(reference=reference)
        return x, score(inputs, outputs), reference

    def outputs_of(params, inputs, embeds, x, start):
        """`row [head] -> outputs` with layer `start`'s heads scaled by row, the rest kept."""
        model = nnx.merge(graphdef, params)
        ones = jnp.ones((model.config.n_layers, n_heads), jnp.float32)

        def outputs(row):
            return outputs_from(task, inputs, model, embeds, x, start, ones.at[start].set(row))

        return outputs, model, ones

    @jax.jit
    def ablation(params, inputs: ObjectiveInputs, embeds, x, full, start):
        outputs, model, ones = outputs_of(params, inputs, embeds, x, start)
        drops = row_ablation_drops(lambda row: score(inputs, outputs(row)), full, n_heads, chunk)
        return drops, layer_output(task, inputs, model, embeds, x, start, ones)

    @jax.jit
    def taylor(params, inputs: ObjectiveInputs, embeds, x, start):
        outputs = outputs_of(params, inputs, embeds, x, start)[0]
        embed_row = lambda row: pooled_last(inputs, outputs(row))  # noqa: E731
        return row_taylor_drops(embed_row, inputs.reference, n_heads, chunk)

    return first, ablation, taylor


def layerwise_head_drops(context, inputs, embeds, chunk: int, *, fidelity: bool):
    """Ablation drops and (fidelity) Taylor drops of every head, layer by layer.

    Args:
        context: the AttributionContext (task, graphdef, params, config).
        inputs, embeds: the sample's objective inputs and word embeddings [text, token, d].
        chunk: heads per vmapped chunk.
        fidelity: the `embedding` task's fidelity objective, whose reference is each text's own
            embedding with every head (`inputs.reference` is replaced), and its Taylor estimate.

    Returns:
        (ablation [text, layer, head], Taylor drops [text, layer, head] or None, the inputs
        with the reference the drops were measured against), drops float32.
    """
    n_layers, n_heads = context.config.n_layers, context.config.n_heads
    first, ablation, taylor = layer_programs(
        context.task, context.graphdef, n_heads, chunk, own_reference=fidelity
    )
    params = context.params
    # Progress in layer runs: the heads of layer `start` run layers start.. (n_layers - start)
    runs = n_layers * (n_layers + 1) // 2
    texts = len(inputs.input_ids)
    with (
        step_part("head_ablation"),
        context.bar(f"head ablation ({texts} texts)", runs, "layer") as bar,
    ):
        x, full, reference = first(params, inputs, embeds)
        if fidelity:  # the reference the drops are measured against, from that same pass
            inputs = inputs._replace(reference=reference)
        drops, layer_inputs = [], []
        for start in range(n_layers):
            layer_inputs.append(x)
            row, x = ablation(params, inputs, embeds, x, full, jnp.int32(start))
            drops.append(np.asarray(row, np.float32))
            bar.update(n_layers - start)
    if not fidelity:
        return np.stack(drops, axis=1), None, inputs
    second = []
    with (
        step_part("head_taylor"),
        context.bar(f"head Taylor ({texts} texts)", runs, "layer") as bar,
    ):
        for start, x in enumerate(layer_inputs):
            second.append(
                np.asarray(taylor(params, inputs, embeds, x, jnp.int32(start)), np.float32)
            )
            bar.update(n_layers - start)
    return np.stack(drops, axis=1), np.stack(second, axis=1), inputs
