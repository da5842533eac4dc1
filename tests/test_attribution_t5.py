"""Encoder-decoder (T5) attributions: head masks of three kinds, seq2seq objective, gradients."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from generator.artifacts import open_artifacts
from generator.attribution.heads import (
    ablation_importance,
    gradient_importance,
    per_example_gradient_importance,
)
from generator.attribution.lens import lens_logits
from generator.attribution.objectives import ObjectiveInputs, make_objective, word_embedding_table
from generator.attribution.rollout import encoder_decoder_rollout
from generator.models.loading import load_model

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MODELS = ["tiny-t5", "tiny-t5-v1_1"]
KINDS = {  # kind -> (stack, sub-layer, attention module)
    "encoder": ("encoder", 0, "SelfAttention"),
    "decoder": ("decoder", 0, "SelfAttention"),
    "cross": ("decoder", 1, "EncDecAttention"),
}


def batch(config):
    """Encoder ids/mask [2, 9] (second row padded) and decoder ids/mask/targets [2, 5]."""
    rng = np.random.default_rng(0)
    ids = rng.integers(3, config.vocab_size, size=(2, 9)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, 6:] = 0
    targets = rng.integers(3, config.vocab_size, size=(2, 5)).astype(np.int32)
    decoder_ids = np.concatenate(
        [np.full((2, 1), config.decoder_start_token_id, np.int32), targets[:, :-1]], axis=1
    )
    decoder_mask = np.ones_like(decoder_ids)
    decoder_mask[1, 4:] = 0
    return ids, mask, decoder_ids, decoder_mask, targets


def inputs_of(config):
    ids, mask, decoder_ids, decoder_mask, targets = batch(config)
    zeros = np.zeros(len(ids), np.int32)
    reference = np.zeros((len(ids), config.d_model), np.float32)
    return ObjectiveInputs(
        ids, mask, zeros, zeros, reference, zeros, decoder_ids, decoder_mask, targets
    )


def mask_rows(config) -> int:
    return config.n_layers + 2 * config.n_decoder_layers


@pytest.mark.parametrize("name", MODELS)
def test_inputs_embeds_and_full_head_mask_change_nothing(name):
    loaded = load_model(FIXTURES / name)
    config = loaded.config
    ids, mask, decoder_ids, decoder_mask, _ = batch(config)
    plain = loaded.model(ids, mask, decoder_ids, decoder_mask)
    embeds = word_embedding_table(loaded.model)[ids]
    ones = jnp.ones((mask_rows(config), config.n_heads))
    other = loaded.model(ids, mask, decoder_ids, decoder_mask, inputs_embeds=embeds, head_mask=ones)
    for key in ("encoder_hidden_states", "decoder_hidden_states", "logits", "cross_attentions"):
        np.testing.assert_array_equal(np.asarray(plain[key]), np.asarray(other[key]))


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("name", MODELS)
def test_head_mask_row_equals_zeroing_that_heads_output_weights(name, kind):
    """Masking one head of each kind = a separate model whose `o` projection ignores it."""
    loaded = load_model(FIXTURES / name)
    config = loaded.config
    ids, mask, decoder_ids, decoder_mask, _ = batch(config)
    rows = loaded.model.head_mask_rows()[kind]
    layer, head = rows.stop - rows.start - 1, 1
    head_mask = jnp.ones((mask_rows(config), config.n_heads)).at[rows.start + layer, head].set(0)
    masked = loaded.model(ids, mask, decoder_ids, decoder_mask, head_mask=head_mask)["logits"]

    surgery = load_model(FIXTURES / name).model
    stack, sub, attention = KINDS[kind]
    projection = getattr(getattr(surgery, stack).block[layer].layer[sub], attention).o
    kernel = projection.kernel
    kernel[...] = kernel[...].at[head * config.d_head : (head + 1) * config.d_head].set(0.0)
    separate = surgery(ids, mask, decoder_ids, decoder_mask)["logits"]
    np.testing.assert_allclose(np.asarray(masked), np.asarray(separate), atol=2e-5)
    unmasked = loaded.model(ids, mask, decoder_ids, decoder_mask)["logits"]
    assert not np.allclose(np.asarray(unmasked), np.asarray(masked), atol=1e-5)


def test_seq2seq_objective_is_the_target_log_probability():
    loaded = load_model(FIXTURES / "tiny-t5")
    graphdef, params = nnx.split(loaded.model)
    inputs = inputs_of(loaded.config)
    embeds = word_embedding_table(loaded.model)[inputs.input_ids]
    ours = make_objective("seq2seq", graphdef, params)(inputs, embeds, None)
    logits = np.asarray(
        loaded.model(
            inputs.input_ids,
            inputs.attention_mask,
            inputs.decoder_input_ids,
            inputs.decoder_attention_mask,
        )["logits"],
        np.float64,
    )
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = [
        sum(
            log_probs[row, t, inputs.target_ids[row, t]]
            for t in range(5)
            if inputs.decoder_attention_mask[row, t]
        )
        for row in range(2)
    ]
    np.testing.assert_allclose(np.asarray(ours), expected, rtol=1e-5)


def test_seq2seq_gradients_match_finite_differences():
    loaded = load_model(FIXTURES / "tiny-t5-v1_1")
    graphdef, params = nnx.split(loaded.model)
    inputs = inputs_of(loaded.config)
    objective = make_objective("seq2seq", graphdef, params)
    embeds = jnp.asarray(word_embedding_table(loaded.model)[inputs.input_ids], jnp.float32)

    def f(e):
        return jnp.sum(objective(inputs, e, None))

    grads = jax.grad(f)(embeds)
    rng = np.random.default_rng(1)
    for _ in range(4):  # directional derivatives: float32 sums of ~30 need a large signal
        direction = jnp.asarray(rng.standard_normal(embeds.shape), jnp.float32)
        direction = direction * jnp.asarray(inputs.attention_mask)[..., None]
        step = 1e-3
        numeric = (f(embeds + step * direction) - f(embeds - step * direction)) / (2 * step)
        analytic = float(jnp.sum(grads * direction))
        assert abs(analytic) > 1e-2
        assert analytic == pytest.approx(float(numeric), rel=2e-2)
    assert np.all(np.asarray(grads)[1, 6:] == 0)  # padded encoder tokens do not matter


def test_t5_head_importance_covers_every_kind_and_matches_the_jacobian():
    loaded = load_model(FIXTURES / "tiny-t5")
    config = loaded.config
    graphdef, params = nnx.split(loaded.model)
    inputs = inputs_of(config)
    embeds = jnp.asarray(word_embedding_table(loaded.model)[inputs.input_ids], jnp.float32)
    objective = make_objective("seq2seq", graphdef, params)
    shape = (mask_rows(config), config.n_heads)
    ours = per_example_gradient_importance(objective, (inputs, embeds), *shape)
    jacobian = gradient_importance(lambda m: objective(inputs, embeds, m), *shape)
    np.testing.assert_allclose(ours, jacobian, rtol=1e-4, atol=1e-7)
    ablation = np.asarray(ablation_importance(lambda m: objective(inputs, embeds, m), *shape))
    for kind, rows in loaded.model.head_mask_rows().items():
        assert np.any(np.abs(ablation[rows]) > 1e-6), f"no {kind} head changes the objective"
    # one entry against a separate forward pass with that head zeroed
    row, head = shape[0] - 1, 0
    full = float(jnp.mean(objective(inputs, embeds, jnp.ones(shape))))
    single = float(jnp.mean(objective(inputs, embeds, jnp.ones(shape).at[row, head].set(0.0))))
    assert ablation[row, head] == pytest.approx(full - single, rel=1e-4, abs=1e-6)


def test_decoder_lens_last_layer_is_the_models_own_logits():
    loaded = load_model(FIXTURES / "tiny-t5-v1_1")
    ids, mask, decoder_ids, decoder_mask, _ = batch(loaded.config)
    out = loaded.model(ids, mask, decoder_ids, decoder_mask)
    lens = lens_logits(loaded.model, out["decoder_hidden_states"])
    assert lens.shape[1] == loaded.config.n_decoder_layers + 1
    np.testing.assert_allclose(np.asarray(lens[:, -1]), np.asarray(out["logits"]), atol=1e-5)


def test_encoder_decoder_rollout_sums_to_one_and_follows_cross_attention():
    rng = np.random.default_rng(3)
    encoder = rng.random((2, 2, 5, 5))
    encoder /= encoder.sum(-1, keepdims=True)
    visible = np.array([1, 1, 1, 1, 0], bool)
    cross = np.zeros((2, 2, 3, 5))
    cross[..., 2] = 1.0  # every target reads encoder position 2 only
    scores = encoder_decoder_rollout(encoder, cross, visible, np.array([1, 1, 0], bool))
    assert scores.shape == (4,) and scores.sum() == pytest.approx(1.0)
    identity = np.broadcast_to(np.eye(5), (2, 2, 5, 5))
    only = encoder_decoder_rollout(identity, cross, visible, np.ones(3, bool))
    np.testing.assert_allclose(only, [0, 0, 1, 0], atol=1e-12)


def test_t5_build_attributions(t5_build):
    """The tiny-T5 card's build: IG completeness, three head kinds, decoder lens, page text."""
    from test_attributions_build import check_attributions

    _, out, root = t5_build
    artifacts = open_artifacts(root / "tiny-t5")
    check_attributions(artifacts, "seq2seq")
    details = artifacts.manifest["attribution"]
    assert [s["kind"] for s in details["heads"]["sets"]] == [
        "encoder self-attention",
        "decoder self-attention",
        "cross-attention",
    ]
    assert artifacts.axes("lens/final_rank") == ["example", "layer", "target"]
    page = (out / "tiny-t5" / "attributions.html").read_text()
    assert "cross-attention" in page and "not implemented" not in page
