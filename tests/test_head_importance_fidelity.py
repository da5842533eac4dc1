"""Head importance for the embedding task: output fidelity, its Taylor estimate, agreement."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from generator.analyze.attributions import (
    featured_head,
    spearman_interval,
    standard_errors,
    tied_with_leader,
)
from generator.attribution.heads import ablation_drops, fidelity_taylor_drops

LAYERS, HEADS, DIM = 2, 3, 5


def toy_embedder():
    """embed(mask) -> [example, d]: a nonlinear function of the head mask, two examples."""
    key = jax.random.PRNGKey(0)
    weights = jax.random.normal(key, (2, DIM, LAYERS * HEADS))
    bias = jax.random.normal(jax.random.PRNGKey(1), (2, DIM))

    def embed(mask):
        flat = jnp.stack([mask[layer] for layer in range(LAYERS)]).reshape(-1)
        return jnp.tanh(weights @ flat * 0.3 + bias)

    return embed


def cosine_to_unablated(embed):
    reference = embed(jnp.ones((LAYERS, HEADS)))

    def objective(mask):
        out = embed(mask)
        return jnp.sum(out * reference, -1) / (
            jnp.linalg.norm(out, axis=-1) * jnp.linalg.norm(reference, axis=-1)
        )

    return objective


def test_taylor_drop_is_half_the_second_derivative_of_the_cosine():
    embed = toy_embedder()
    objective = cosine_to_unablated(embed)
    drops = np.asarray(fidelity_taylor_drops(embed, LAYERS, HEADS, chunk=4))
    assert drops.shape == (2, LAYERS, HEADS)
    ones = jnp.ones((LAYERS, HEADS))
    for layer in range(LAYERS):
        for head in range(HEADS):
            direction = jnp.zeros((LAYERS, HEADS)).at[layer, head].set(1.0)
            along = lambda t, d=direction: objective(ones - t * d)  # noqa: E731
            second = jax.jacfwd(jax.jacfwd(along))(0.0)  # [example]
            np.testing.assert_allclose(drops[:, layer, head], -0.5 * second, rtol=1e-4, atol=1e-7)
    assert np.all(drops >= 0)


def test_fidelity_ablation_never_raises_the_objective():
    objective = cosine_to_unablated(toy_embedder())
    drops = np.asarray(ablation_drops(objective, LAYERS, HEADS, chunk=4))
    assert drops.shape == (2, LAYERS, HEADS)
    assert np.all(drops >= -1e-6)  # cos(e_ablated, e) <= 1 = cos(e, e)
    assert np.all(np.asarray(objective(jnp.ones((LAYERS, HEADS)))) == pytest.approx(1.0, abs=1e-6))


def test_standard_errors_of_the_mean():
    values = np.array([[1.0], [3.0], [5.0]])
    assert standard_errors(values)[0] == pytest.approx(2.0 / np.sqrt(3))
    assert standard_errors(values[:1])[0] == 0.0


def test_featured_head_needs_both_methods_at_the_top():
    ablation = np.array([[5.0, 4.9, 1.0]])
    tight = np.full_like(ablation, 0.01)
    # gradient agrees on head 0
    assert featured_head(ablation, tight, np.array([[3.0, 1.0, 0.5]]), tight) == 0
    # gradient puts head 2 at the top, clearly: nothing is featured
    assert featured_head(ablation, tight, np.array([[0.1, 0.2, 3.0]]), tight) is None
    # heads 0 and 1 tied by ablation; gradient prefers head 1: head 1 is featured
    wide = np.full_like(ablation, 0.1)
    assert featured_head(ablation, wide, np.array([[1.0, 3.0, 0.0]]), tight) == 1
    assert tied_with_leader(ablation, wide).tolist() == [[True, True, False]]


def test_spearman_interval_brackets_the_truth():
    rng = np.random.default_rng(3)
    signal = rng.normal(size=(1, 4, 6))
    same = signal + rng.normal(scale=0.1, size=(40, 4, 6))
    low, high = spearman_interval(same, same + rng.normal(scale=0.1, size=same.shape), 200)
    assert 0.8 < low <= high <= 1.0
    unrelated = rng.normal(size=(40, 4, 6))
    low, high = spearman_interval(same, unrelated, 200)
    assert low < 0 < high


def test_embedding_centroid_is_a_task_of_its_own():
    from generator.attribution.objectives import (
        HEAD_OBJECTIVES,
        TASK_DESCRIPTIONS,
        task_problem,
    )
    from generator.card import TASKS

    assert "embedding-centroid" in TASKS
    assert task_problem("embedding-centroid", ()) is None
    assert "centroid" in TASK_DESCRIPTIONS["embedding-centroid"]
    assert "embedding-centroid" not in HEAD_OBJECTIVES  # its heads keep the centroid objective
    assert "with every head" in HEAD_OBJECTIVES["embedding"]
