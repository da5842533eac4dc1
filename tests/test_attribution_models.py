"""Attribution plumbing on real (tiny) models: embeddings input, head masks, gradients."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from generator.attribution.objectives import word_embedding_table
from generator.models.loading import load_model

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FAMILIES = {
    "tiny-bert": ("encoder.layer.{}.attention.output.dense", "kernel"),
    "tiny-gpt2": ("h.{}.attn.c_proj", "kernel"),
    "tiny-llama": ("layers.{}.self_attn.o_proj", "kernel"),
    # ALBERT: the last layer (5) is the only application of shared block (group 1, index 1)
    "tiny-albert-pretraining": (
        "encoder.albert_layer_groups.1.albert_layers.1.attention.dense",
        "kernel",
    ),
    "tiny-xlnet": ("layer.{}.rel_attn.o", "kernel"),
}


def batch(config):
    rng = np.random.default_rng(0)
    ids = rng.integers(5, config.vocab_size, size=(2, 9)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, 6:] = 0
    return ids, mask


def module_at(model, dotted):
    node = model
    for part in dotted.split("."):
        node = node[int(part)] if part.isdigit() else getattr(node, part)
    return node


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_inputs_embeds_and_full_head_mask_change_nothing(name):
    loaded = load_model(FIXTURES / name)
    ids, mask = batch(loaded.config)
    plain = loaded.model(ids, mask)
    embeds = word_embedding_table(loaded.model)[ids]
    ones = jnp.ones((loaded.config.n_layers, loaded.config.n_heads))
    other = loaded.model(ids, mask, inputs_embeds=embeds, head_mask=ones)
    for key in ("hidden_states", "attentions"):
        np.testing.assert_array_equal(np.asarray(plain[key]), np.asarray(other[key]))


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_head_mask_equals_zeroing_the_heads_output_weights(name):
    """Masking head h of layer l = a separate model whose output projection ignores head h."""
    path, leaf = FAMILIES[name]
    loaded = load_model(FIXTURES / name)
    config = loaded.config
    ids, mask = batch(config)
    layer, head = config.n_layers - 1, 1
    head_mask = jnp.ones((config.n_layers, config.n_heads)).at[layer, head].set(0.0)
    masked = loaded.model(ids, mask, head_mask=head_mask)["hidden_states"]

    surgery = load_model(FIXTURES / name).model
    projection = module_at(surgery, path.format(layer))  # ALBERT's path has no layer
    kernel = getattr(projection, leaf)
    rows = slice(head * config.d_head, (head + 1) * config.d_head)
    kernel[...] = kernel[...].at[rows].set(0.0)  # kernel [in = head*d_head, out]
    separate = surgery(ids, mask)["hidden_states"]
    visible = mask.astype(bool)
    np.testing.assert_allclose(
        np.asarray(masked)[visible[:, None].repeat(config.n_layers + 1, 1)],
        np.asarray(separate)[visible[:, None].repeat(config.n_layers + 1, 1)],
        atol=2e-5,
    )
    unmasked = loaded.model(ids, mask)["hidden_states"]
    assert not np.allclose(np.asarray(unmasked)[:, -1], np.asarray(masked)[:, -1], atol=1e-4)


def test_albert_head_mask_is_per_application_of_a_shared_block():
    """tiny-albert-mlm: layers 0 and 1 apply the same weights (group 0); a head mask at one
    application leaves the other alone, and masking both equals zeroing the shared weights."""
    loaded = load_model(FIXTURES / "tiny-albert-mlm")
    config = loaded.config
    assert config.layer_blocks[:2] == (0, 0)
    ids, mask = batch(config)
    head, ones = 2, jnp.ones((config.n_layers, config.n_heads))
    at = {
        layers: np.asarray(
            loaded.model(ids, mask, head_mask=ones.at[list(layers), head].set(0.0))["hidden_states"]
        )
        for layers in ((0,), (1,), (0, 1))
    }
    plain = np.asarray(loaded.model(ids, mask)["hidden_states"])
    np.testing.assert_array_equal(at[(1,)][:, 1], plain[:, 1])  # layer 0's mask: layer 1 input
    assert not np.allclose(at[(0,)][:, 1], plain[:, 1], atol=1e-4)
    assert not np.allclose(at[(0,)][:, 2], at[(1,)][:, 2], atol=1e-4)
    surgery = load_model(FIXTURES / "tiny-albert-mlm").model
    dense = surgery.encoder.albert_layer_groups[0].albert_layers[0].attention.dense
    rows = slice(head * config.d_head, (head + 1) * config.d_head)
    dense.kernel[...] = dense.kernel[...].at[rows].set(0.0)
    visible = mask.astype(bool)[:, None].repeat(config.n_layers + 1, 1)
    np.testing.assert_allclose(
        at[(0, 1)][visible], np.asarray(surgery(ids, mask)["hidden_states"])[visible], atol=2e-5
    )


def test_gradients_match_finite_differences():
    loaded = load_model(FIXTURES / "tiny-bert")
    graphdef, params = nnx.split(loaded.model)
    ids, mask = batch(loaded.config)
    embeds = jnp.asarray(word_embedding_table(loaded.model)[ids], jnp.float32)

    def f(e):
        out = nnx.merge(graphdef, params)(ids, mask, inputs_embeds=e)
        return jnp.sum(jnp.tanh(out["hidden_states"][:, -1, :, :3]))

    grads = jax.grad(f)(embeds)
    rng = np.random.default_rng(1)
    for _ in range(6):
        b, t, d = rng.integers(2), rng.integers(6), rng.integers(embeds.shape[-1])
        step = 1e-2
        plus = f(embeds.at[b, t, d].add(step))
        minus = f(embeds.at[b, t, d].add(-step))
        numeric = (plus - minus) / (2 * step)
        assert float(grads[b, t, d]) == pytest.approx(float(numeric), rel=2e-2, abs=2e-4)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_per_example_head_gradients_equal_the_jacobian_of_the_batch(name):
    """The build's vmapped per-example gradient = jax.jacrev of the batched objective."""
    from generator.attribution.heads import gradient_importance, per_example_gradient_importance
    from generator.attribution.objectives import ObjectiveInputs, make_objective

    loaded = load_model(FIXTURES / name)
    config = loaded.config
    graphdef, params = nnx.split(loaded.model)
    ids, mask = batch(config)
    embeds = jnp.asarray(word_embedding_table(loaded.model)[ids], jnp.float32)
    rng = np.random.default_rng(2)
    reference = rng.standard_normal((len(ids), config.d_model)).astype(np.float32)
    zeros = np.zeros(len(ids), np.int32)
    inputs = ObjectiveInputs(ids, mask, zeros, zeros, reference, zeros)
    objective = make_objective("embedding", graphdef, params)
    shape = (config.n_layers, config.n_heads)
    ours = per_example_gradient_importance(objective, (inputs, embeds), *shape)
    jacobian = gradient_importance(lambda m: objective(inputs, embeds, m), *shape)
    assert ours.shape == shape and float(jnp.max(jnp.abs(ours))) > 0
    np.testing.assert_allclose(ours, jacobian, rtol=1e-4, atol=1e-7)


def test_xlnet_permutation_objective_cannot_see_its_target():
    """permutation-lm: the query stream predicts the target with the target's own token hidden
    from every stream, so the objective's gradient at the target's embedding is exactly 0 and
    replacing the target token changes nothing; other tokens matter."""
    from generator.attribution.objectives import ObjectiveInputs, make_objective

    loaded = load_model(FIXTURES / "tiny-xlnet")
    graphdef, params = nnx.split(loaded.model)
    ids, mask = batch(loaded.config)
    position = np.array([4, 3], np.int32)
    target = ids[np.arange(2), position]
    none = np.zeros(2, np.int32)
    inputs = ObjectiveInputs(ids, mask, position, target, np.zeros((2, 32), np.float32), none)
    objective = make_objective("permutation-lm", graphdef, params)
    table = word_embedding_table(loaded.model)
    embeds = jnp.asarray(table[ids], jnp.float32)
    grads = jax.grad(lambda e: objective(inputs, e, None).sum())(embeds)
    grads = np.asarray(grads)
    assert np.all(grads[np.arange(2), position] == 0.0)
    assert np.abs(grads[0, :3]).max() > 1e-6
    swapped = ids.copy()
    swapped[np.arange(2), position] = 7
    other = objective(inputs._replace(input_ids=swapped), jnp.asarray(table[swapped]), None)
    np.testing.assert_allclose(np.asarray(other), np.asarray(objective(inputs, embeds, None)))
    assert np.all(np.asarray(objective(inputs, embeds, None)) < 0)  # log-probabilities
