"""The forward pass of encoder and decoder-only families, split into three stages.

    x, ctx = model.embed_stage(input_ids, attention_mask, token_type_ids, inputs_embeds=...)
    x, hidden, probes = model.layer_stage(x, ctx, head_mask=..., start=0, stop=None)
    out = model.output_stage(x, ctx, with_input(first x, hidden), probes, positions=None)

is exactly `model(...)`; with `positions` [batch], the LM head reads only those rows (`logits`
[batch, 1, vocab]: the objectives need one position and the vocabulary is large).
`layer_stage` over layers [start, stop) continues from the output of layer start - 1, so a
caller can run the layers below a point once and everything above it many times (head
importance ablates one layer's heads at a time). The blocks run under `layers.scan_blocks`: one
compiled program per run of identical layers, whatever the depth.

Axes: batch, layer, token, d_model, head.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from generator.models.layers import scan_blocks, with_input


class Staged:
    """Mixin giving a family its `layer_stage` and `__call__` from four family methods.

    The family defines `blocks()` (the module applied at each layer), `embed_stage`,
    `block_step(block, x, per_layer, key, *, ctx) -> (x, (hidden, probes))` and
    `output_stage`; optionally `layer_inputs(ctx, head_mask)` (per-layer arrays with a leading
    layer axis, default the head mask rows) and `layer_keys()` (a static value per layer that
    splits runs, default none).
    """

    def layer_inputs(self, ctx, head_mask: jax.Array | None):
        """Return the per-layer arguments [layer, ...] of `block_step` (the head mask rows)."""
        del ctx
        return {"head_scale": head_mask}

    def layer_keys(self) -> list | None:
        """Return one static value per layer that must match for layers to share a program."""
        return None

    def layer_stage(
        self,
        x,
        ctx,
        *,
        head_mask: jax.Array | None = None,
        start: int = 0,
        stop: int | None = None,
    ):
        """Run layers start..stop-1 on x, the input of layer `start`.

        Args:
            x: [batch, token, d_model] input of layer `start` (XLNet with a query stream:
                the pair (content, query stream)).
            ctx: what `embed_stage` returned besides x (masks, positions, ...).
            head_mask: the full [layer, head] head mask (rows start..stop-1 are used), or None.
            start, stop: the layers to run, 0 <= start < stop <= n_layers (None: the last).

        Returns:
            (output of layer stop - 1 (same form as x), hidden [batch, layer, token, d_model]
            the outputs of layers start..stop-1, probes {name: [batch, layer, ...]}).
        """
        blocks = self.blocks()
        stop = len(blocks) if stop is None else stop
        if not 0 <= start < stop <= len(blocks):
            raise ValueError(f"layers {start}..{stop} are not within 0..{len(blocks)}")
        xs = jax.tree.map(lambda a: a[start:stop], self.layer_inputs(ctx, head_mask))
        keys = self.layer_keys()
        keys = None if keys is None else keys[start:stop]
        step = functools.partial(self.block_step, ctx=ctx)
        x, (hidden, probes) = scan_blocks(x, blocks[start:stop], step, xs=xs, keys=keys)
        return x, hidden, probes

    def window_stage(self, x, ctx, *, head_mask: jax.Array, start, stop=None):
        """Run layers start..stop-1 on x, the input of layer `start`; start and stop may be traced.

        One compiled program serves every window: each layer runs under `jax.lax.cond` and a
        layer outside the window passes x on unchanged, at no cost. Head importance runs the
        layers above each layer this way without compiling a program per layer.

        Args:
            x: the input of layer `start` (same form as `layer_stage`'s).
            ctx: what `embed_stage` returned besides x.
            head_mask: the full [layer, head] head mask.
            start, stop: int scalars, 0 <= start < stop <= n_layers (None: the last).

        Returns:
            (output of layer stop - 1, hidden [batch, layer, token, d_model], probes
            {name: [batch, layer, ...]}), hidden and probes zeros outside the window.
        """
        blocks = self.blocks()
        stop = len(blocks) if stop is None else stop
        index = jnp.arange(len(blocks))
        xs = {
            "inputs": self.layer_inputs(ctx, head_mask),
            "active": (index >= start) & (index < stop),
        }

        def step(block, carry, per_layer, key):
            def run(carry):
                return self.block_step(block, carry, per_layer["inputs"], key, ctx=ctx)

            outputs = jax.eval_shape(run, carry)[1]

            def skip(carry):
                return carry, jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), outputs)

            return jax.lax.cond(per_layer["active"], run, skip, carry)

        x, (hidden, probes) = scan_blocks(x, blocks, step, xs=xs, keys=self.layer_keys())
        return x, hidden, probes

    def run_stages(
        self, x, ctx, head_mask: jax.Array | None, positions: jax.Array | None = None
    ) -> dict[str, jax.Array]:
        """Run every layer on x, the first block's input, and return the model outputs.

        positions: [batch] int or None: the LM head unembeds only these rows (`logits`
        [batch, 1, vocab]); see `output_stage`.
        """
        first = x[0] if isinstance(x, tuple) else x
        out, hidden, probes = self.layer_stage(x, ctx, head_mask=head_mask)
        return self.output_stage(out, ctx, with_input(first, hidden), probes, positions=positions)
