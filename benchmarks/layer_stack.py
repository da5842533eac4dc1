"""XLA compile time and run time of a bert-base layer stack: unrolled or scanned (by hand).

The value and gradient of sum(last hidden state²) with respect to the 12 blocks' parameters,
three ways: unrolled as the CPU extraction runs them (each block a call of one jitted layer,
as `layers._traced_once`), `jax.lax.scan` over the parameters stacked inside the program (what
`MODELATLAS_LAYERS=scan` does), and `jax.lax.scan` over parameters stacked before the call (as
a family that stored its layers stacked would). Random-init weights (the programs do not depend
on their values); the persistent compilation cache is off.

    python -m benchmarks.layer_stack --rows 1 --width 32
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from benchmarks.compile_cost import build_model


def layer_stack_programs(model, rows: int, width: int):
    """Return ({variant: (loss(params, x), params)}, x) for the blocks of a BERT-family model."""
    blocks = model.blocks()
    graphdef = nnx.graphdef(blocks[0])
    states = [nnx.state(block) for block in blocks]
    ids = np.full((rows, width), 1000, np.int32)
    x, ctx = model.embed_stage(ids, np.ones_like(ids))
    scale = {"head_scale": jnp.ones((model.config.n_heads,), jnp.float32)}

    def layer(state, hidden):
        return model.block_step(nnx.merge(graphdef, state), hidden, scale, None, ctx=ctx)[0]

    def unrolled(states, hidden):
        one_layer = jax.jit(layer)
        for state in states:
            hidden = one_layer(state, hidden)
        return jnp.sum(hidden**2)

    def scanned(stacked, hidden):
        hidden, _ = jax.lax.scan(lambda h, state: (layer(state, h), None), hidden, stacked)
        return jnp.sum(hidden**2)

    def stacked_inside(states, hidden):
        return scanned(jax.tree.map(lambda *a: jnp.stack(a), *states), hidden)

    stacked = jax.tree.map(lambda *a: jnp.stack(a), *states)
    variants = {
        "unrolled (each layer traced once)": (unrolled, states),
        "scan, stacked in the program": (stacked_inside, states),
        "scan over pre-stacked parameters": (scanned, stacked),
    }
    return variants, jnp.asarray(x)


def measure(loss, params, x, reps: int = 5) -> dict:
    """Trace, lower, compile and run `jax.value_and_grad(loss)`: seconds, best run, temp MB."""
    program = jax.jit(jax.value_and_grad(loss))
    started = time.perf_counter()
    lowered = program.lower(params, x)
    traced = time.perf_counter() - started
    started = time.perf_counter()
    compiled = lowered.compile()
    xla = time.perf_counter() - started
    value = jax.block_until_ready(compiled(params, x))[0]
    runs = []
    for _ in range(reps):
        started = time.perf_counter()
        jax.block_until_ready(compiled(params, x))
        runs.append(time.perf_counter() - started)
    memory = compiled.memory_analysis()
    return {
        "trace_lower_s": round(traced, 2),
        "xla_s": round(xla, 2),
        "run_ms": round(min(runs) * 1e3, 1),
        "temp_mb": None if memory is None else round(memory.temp_size_in_bytes / 2**20),
        "loss": float(value),
    }


def main() -> None:
    """Print one line per variant."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="bert-base", help="a BERT-family benchmarks config")
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--width", type=int, default=32)
    args = parser.parse_args()
    jax.config.update("jax_enable_compilation_cache", False)
    variants, x = layer_stack_programs(build_model(args.kind), args.rows, args.width)
    for name, (loss, params) in variants.items():
        print(f"{name}: {measure(loss, params, x)}", flush=True)


if __name__ == "__main__":
    main()
