"""Head ablation layer by layer: the layers below a head run once, not once per head.

Removing a head of layer l changes nothing below l, so for each layer the sample's input of
that layer (with every head) is computed once and only layers l.. run for each of its heads,
the heads of one layer vmapped in chunks within the memory budget (`mask_chunk`). For the
`embedding` task the second-order Taylor estimate of each head's fidelity drop linearises the
layers from l upward once per layer (one primal pass) and takes one tangent pass per head.
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
    outputs_from,
    pooled_last,
)


def layer_programs(task: str, graphdef, n_heads: int, chunk: int, *, fidelity: bool):
    """Return the jitted (first, layer) programs of layer-by-layer head importance.

    first(params, inputs, embeds) -> (input of layer 0, objective with every head [text]);
    layer(params, inputs, embeds, x, full, start) -> (ablation drops [text, head], Taylor
    drops [text, head] (fidelity) or None, the input of layer start + 1).
    """
    score = SCORES[task]

    @jax.jit
    def first(params, inputs: ObjectiveInputs, embeds):
        model = nnx.merge(graphdef, params)
        x, ctx = embed_stage(task, inputs, model, embeds)
        return x, score(inputs, model.run_stages(x, ctx, None))

    @jax.jit
    def layer(params, inputs: ObjectiveInputs, embeds, x, full, start):
        model = nnx.merge(graphdef, params)
        ones = jnp.ones((model.config.n_layers, n_heads), jnp.float32)

        def outputs(row):  # layer `start`'s heads scaled by row, every other head kept
            return outputs_from(task, inputs, model, embeds, x, start, ones.at[start].set(row))

        ablation = row_ablation_drops(lambda row: score(inputs, outputs(row)), full, n_heads, chunk)
        taylor = None
        if fidelity:
            embed_row = lambda row: pooled_last(inputs, outputs(row))  # noqa: E731
            taylor = row_taylor_drops(embed_row, inputs.reference, n_heads, chunk)
        return ablation, taylor, layer_output(task, inputs, model, embeds, x, start, ones)

    return first, layer


def layerwise_head_drops(context, inputs, embeds, chunk: int, *, fidelity: bool):
    """Ablation drops and (fidelity) Taylor drops of every head, layer by layer.

    Args:
        context: the AttributionContext (task, graphdef, params, config).
        inputs, embeds: the sample's objective inputs and word embeddings [text, token, d].
        chunk: heads per vmapped chunk.
        fidelity: also the Taylor estimate (the `embedding` task).

    Returns:
        (ablation [text, layer, head], Taylor drops [text, layer, head] or None), float32.
    """
    n_layers, n_heads = context.config.n_layers, context.config.n_heads
    first, layer = layer_programs(context.task, context.graphdef, n_heads, chunk, fidelity=fidelity)
    x, full = first(context.params, inputs, embeds)
    ablation, taylor = [], []
    for start in range(n_layers):
        drops, second, x = layer(context.params, inputs, embeds, x, full, jnp.int32(start))
        ablation.append(np.asarray(drops, np.float32))
        taylor.append(None if second is None else np.asarray(second, np.float32))
    stacked = np.stack(ablation, axis=1)
    return stacked, (np.stack(taylor, axis=1) if fidelity else None)
