"""LM objectives unembed only the target position: the same value, no [batch, token, vocab] array."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cards import FIXTURES
from flax import nnx

from generator.attribution.objectives import (
    ObjectiveInputs,
    default_task,
    embed_stage,
    make_objective,
    token_log_prob,
    word_embedding_table,
)
from generator.models.loading import load_model

# every family with a masked-LM or causal-LM head among the fixtures
LM_FIXTURES = [
    "tiny-bert-mlm",
    "tiny-roberta-mlm",
    "tiny-xlm-roberta-mlm",
    "tiny-distilbert-mlm",
    "tiny-albert-mlm",
    "tiny-gpt2",
    "tiny-llama",
    "tiny-llama-mqa",
    "tiny-mistral",
    "tiny-qwen2",
]
ROWS, WIDTH = 3, 11


def setup(name):
    loaded = load_model(FIXTURES / name)
    config = loaded.config
    task = default_task(config.heads)
    assert task in ("masked-lm", "causal-lm"), (name, config.heads)
    rng = np.random.default_rng(0)
    ids = rng.integers(5, config.vocab_size, (ROWS, WIDTH)).astype(np.int32)
    mask = np.ones((ROWS, WIDTH), np.int32)
    mask[-1, WIDTH - 4 :] = 0
    position = np.array([2, WIDTH - 1, 5], np.int32)  # the padded row's target is real
    zeros = np.zeros(ROWS, np.int32)
    inputs = ObjectiveInputs(
        ids, mask, position, ids[:, 0].copy(), np.zeros((ROWS, 1), np.float32), zeros
    )
    embeds = word_embedding_table(loaded.model)[ids]
    graphdef, params = nnx.split(loaded.model)
    head_mask = jnp.asarray(rng.uniform(0.5, 1.0, (config.n_layers, config.n_heads)), jnp.float32)
    return config, task, graphdef, params, inputs, embeds, head_mask


def full_logits_objective(task, graphdef, params):
    """The objective read from every position's logits (as before target-only unembedding)."""

    def objective(inputs, embeds, head_mask):
        model = nnx.merge(graphdef, params)
        x, ctx = embed_stage(task, inputs, model, embeds)
        outputs = model.run_stages(x, ctx, head_mask)
        assert outputs["logits"].shape[1] == inputs.input_ids.shape[1]
        return token_log_prob(inputs, outputs)

    return objective


def vocab_arrays(program_text: str, vocab: int) -> set[str]:
    """Shapes in an HLO text with a [batch, token, vocab] (or [batch*token, vocab]) layout."""
    shapes = set(re.findall(r"f32\[[0-9,]+\]", program_text))
    per_token = {f"f32[{ROWS},{WIDTH},{vocab}]", f"f32[{ROWS * WIDTH},{vocab}]"}
    return shapes & per_token


@pytest.mark.parametrize("name", LM_FIXTURES)
def test_target_only_unembedding_equals_the_full_logits(name):
    config, task, graphdef, params, inputs, embeds, head_mask = setup(name)
    both = jax.jit(
        lambda e, m: (
            make_objective(task, graphdef, params)(inputs, e, m),
            full_logits_objective(task, graphdef, params)(inputs, e, m),
        )
    )
    ours, full = both(embeds, head_mask)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(full), rtol=0, atol=1e-6)
    assert np.all(np.asarray(full) < 0)  # log-probabilities: a real comparison


@pytest.mark.parametrize("name", ["tiny-bert-mlm", "tiny-gpt2"])
def test_no_per_token_vocabulary_array_is_built(name):
    config, task, graphdef, params, inputs, embeds, head_mask = setup(name)

    def compiled(objective):
        def value_and_grad(e):
            return jax.value_and_grad(lambda x: jnp.sum(objective(inputs, x, head_mask)))(e)

        return jax.jit(value_and_grad).lower(embeds).compile().as_text()

    full = compiled(full_logits_objective(task, graphdef, params))
    assert vocab_arrays(full, config.vocab_size)  # the check finds them when they are built
    assert not vocab_arrays(compiled(make_objective(task, graphdef, params)), config.vocab_size)
    # the gradients (what integrated gradients integrate) agree too
    grads = [
        jax.jit(jax.grad(lambda e, f=f: jnp.sum(f(inputs, e, head_mask))))(embeds)
        for f in (
            make_objective(task, graphdef, params),
            full_logits_objective(task, graphdef, params),
        )
    ]
    np.testing.assert_allclose(np.asarray(grads[0]), np.asarray(grads[1]), rtol=1e-5, atol=1e-6)
