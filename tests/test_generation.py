"""Greedy generation with a key-value cache: cached steps against full forward passes, and
greedy tokens against `transformers`' generate (tests/fixtures/parity/generation.npz, written
by scripts/make_fixtures_generation.py)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REFERENCE = FIXTURES / "parity" / "generation.npz"
NAMES = ("tiny-gpt2", "tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-t5", "tiny-t5-v1_1")
ATOL = 1e-5


@functools.cache
def reference(name: str) -> dict[str, np.ndarray]:
    """The stored transformers reference of one fixture."""
    with np.load(REFERENCE) as data:
        return {key.split("/", 1)[1]: data[key] for key in data.files if key.startswith(name + "/")}


@functools.cache
def generated(name: str):
    """Load a fixture and greedily continue its reference prompts, batched and right-padded."""
    from flax import nnx

    from generator.extract import generation
    from generator.models.loading import load_model

    model = load_model(FIXTURES / name, dtype="float32").model
    ref = reference(name)
    ids = ref["prompt_ids"]
    mask = (np.arange(ids.shape[1])[None] < ref["prompt_lengths"][:, None]).astype(np.int32)
    steps = ref["greedy_ids"].shape[1]
    programs = generation.make_generation_steps(
        model, n_slots=generation.cache_slots(model.config, ids.shape[1], steps), dtype="float32"
    )
    eos = int(ref["eos_token_id"])
    run = functools.partial(
        generation.greedy_steps,
        programs,
        nnx.state(model),
        ids=ids,
        mask=mask,
        steps=steps,
        start=generation.prompt_start(model.config, ids, mask),
    )
    return model, ids, mask, run(ends=(None if eos < 0 else eos, 0)), run


def uncached(model, prompt: np.ndarray, tokens: np.ndarray) -> dict[str, np.ndarray]:
    """One full forward pass of a row's prompt and generated `tokens` (no padding, no cache).

    Causal masking makes position p's outputs those of the prefix ending at p, so one pass
    gives every step: logits [step, vocab], attentions [step, layer, head, key] of the step's
    fed token (T5: also cross_attentions [step, layer, head, token]).
    """
    steps = len(tokens)
    if model.config.seq2seq:
        fed = np.concatenate([[model.config.decoder_start_token_id], tokens[:-1]])[None]
        out = model(prompt[None], np.ones((1, len(prompt)), np.int32), fed)
        rows = slice(0, steps)
        attentions, cross = out["decoder_attentions"][0], out["cross_attentions"][0]
        result = {"cross_attentions": np.asarray(cross[:, :, rows]).transpose(2, 0, 1, 3)}
    else:
        seq = np.concatenate([prompt, tokens[:-1]])[None]
        out = model(seq, np.ones_like(seq))
        rows = slice(len(prompt) - 1, len(prompt) - 1 + steps)
        attentions, result = out["attentions"][0], {}
    result["logits"] = np.asarray(out["logits"][0, rows])
    result["attentions"] = np.asarray(attentions[:, :, rows]).transpose(2, 0, 1, 3)
    return result


@pytest.mark.parametrize("name", NAMES)
def test_cached_steps_equal_full_forward_passes(name):
    """Every cached step's attentions and next-token probabilities equal a full forward pass
    without padding or cache (atol 1e-5); no weight beyond the prefix."""
    import jax

    model, ids, mask, out, _ = generated(name)
    worst = {"attentions": 0.0, "cross_attentions": 0.0, "probs": 0.0}
    for row, n in enumerate(mask.sum(axis=1)):
        length = int(out["length"][row])
        full = uncached(model, ids[row, :n], out["token_ids"][row, :length])
        keys = full["attentions"].shape[-1]
        cached = out["attentions"][row, :length]
        diff = np.abs(cached[..., :keys] - full["attentions"]).max()
        worst["attentions"] = max(worst["attentions"], float(diff))
        for step in range(length):  # the step's token sees the prefix ending at itself only
            visible = step + 1 if model.config.seq2seq else n + step
            assert not cached[step, ..., visible:].any()
        if "cross_attentions" in full:
            diff = np.abs(out["cross_attentions"][row, :length, ..., :n] - full["cross_attentions"])
            worst["cross_attentions"] = max(worst["cross_attentions"], float(diff.max()))
        probs = np.asarray(jax.nn.softmax(full["logits"], axis=-1))
        ours = np.take_along_axis(probs, out["top_ids"][row, :length], axis=-1)
        diff = np.abs(ours - out["top_probs"][row, :length]).max()
        worst["probs"] = max(worst["probs"], float(diff))
        np.testing.assert_array_equal(
            out["token_ids"][row, :length], np.argmax(full["logits"], axis=-1)
        )
        # The lens's last layer is the model's own output: its top token is the greedy one.
        np.testing.assert_array_equal(
            out["lens_top_ids"][row, :length, -1, 0], out["token_ids"][row, :length]
        )
    print(name, "max |cached - uncached|", worst)
    assert max(worst.values()) < ATOL, worst


@pytest.mark.parametrize("name", NAMES)
def test_greedy_tokens_equal_transformers_generate(name):
    """Batched, right-padded prompts of different lengths give the tokens that `generate`
    gives each prompt alone; the top-10 predictions match too (every reference step's top-1
    margin is at least 1e-3, far above the 1e-5 agreement of the probabilities)."""
    ref = reference(name)
    _, _, _, out, _ = generated(name)
    assert ref["margin"].min() > 1e-3
    for row, expected in enumerate(ref["greedy_ids"]):
        n = int((expected >= 0).sum())
        assert out["length"][row] == n
        np.testing.assert_array_equal(out["token_ids"][row, :n], expected[:n])
        np.testing.assert_array_equal(out["top_ids"][row, :n], ref["top_ids"][row, :n])
        np.testing.assert_allclose(out["top_probs"][row, :n], ref["top_probs"][row, :n], atol=ATOL)
        assert not out["top_probs"][row, n:].any()


def test_end_of_sequence_stops_a_row():
    """A row stops at the first end-of-sequence token: its length counts it, its later steps
    are zero and hold the pad id, and the other rows go on unchanged."""
    _, _, _, free, run = generated("tiny-llama")
    eos = int(free["token_ids"][1, 3])  # pretend row 1's fourth token ends a sequence
    out = run(ends=(eos, 0))
    for row in range(len(free["token_ids"])):
        hits = np.flatnonzero(free["token_ids"][row] == eos)
        length = int(hits[0]) + 1 if hits.size else free["token_ids"].shape[1]
        assert out["length"][row] == length
        np.testing.assert_array_equal(
            out["token_ids"][row, :length], free["token_ids"][row, :length]
        )
        assert not out["token_ids"][row, length:].any()
        assert not out["attentions"][row, length:].any()
        np.testing.assert_array_equal(
            out["attentions"][row, :length], free["attentions"][row, :length]
        )


def test_steps_stop_where_a_decoders_positions_run_out():
    """A 60-token prompt leaves a 64-position decoder room for 5 steps (the last feeds position
    63): the card's 16 are cut to 5; 49 tokens leave room for all 16; T5 is never cut."""
    from types import SimpleNamespace

    from generator.extract.generation import step_budget

    card = SimpleNamespace(generation_steps=16, name="x")
    config = SimpleNamespace(seq2seq=False, max_positions=64)
    assert step_budget(card, config, 60) == 5
    assert step_budget(card, config, 49) == 16  # 49 + 16 - 1 = 64 positions
    assert step_budget(card, config, 64) == 1
    assert step_budget(card, SimpleNamespace(seq2seq=True, max_positions=None), 500) == 16
