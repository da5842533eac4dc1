"""Parameter gradients: per-tensor norms equal PyTorch's (stored fixtures), exact properties."""

from __future__ import annotations

import numpy as np
import pytest
from cards import FIXTURES
from flax import nnx

from generator.attribution.objectives import ObjectiveInputs
from generator.extract.gradients import checkpoint_names, memory_problem, model_gradients
from generator.models.device_memory import Available
from generator.models.loading import load_model
from generator.models.memory import gradient_step_bytes

PARITY = FIXTURES / "parity"
CASES = {
    "tiny-gpt2": "causal-lm",  # tied head: wte's gradient holds both uses
    "tiny-llama": "causal-lm",  # untied lm_head
    "tiny-bert-mlm": "masked-lm",
    "tiny-t5-v1_1": "seq2seq",
}


def reference_inputs(task: str, ref, config) -> ObjectiveInputs:
    """Our objective inputs for the batch stored in a reference file."""
    ids, mask = ref["input_ids"], ref["attention_mask"]
    n = len(ids)
    zeros = np.zeros(n, np.int32)
    position = ref.get("target_position", zeros)
    target = ref.get("target_id", zeros)
    inputs = ObjectiveInputs(ids, mask, position, target, np.zeros((n, 1), np.float32), zeros)
    if task != "seq2seq":
        return inputs
    labels = ref["labels"]
    target_mask = (labels != -100).astype(np.int32)
    target_ids = np.where(target_mask == 1, labels, config.pad_token_id).astype(np.int32)
    start = np.full((n, 1), config.decoder_start_token_id, np.int32)
    decoder_ids = np.concatenate([start, target_ids[:, :-1]], axis=1)
    return inputs._replace(
        decoder_input_ids=decoder_ids, decoder_attention_mask=target_mask, target_ids=target_ids
    )


@pytest.mark.parametrize("fixture", CASES)
def test_gradient_norms_equal_pytorch(fixture):
    task = CASES[fixture]
    ref = np.load(PARITY / f"gradients-{fixture}.npz")
    loaded = load_model(FIXTURES / fixture)
    graphdef, params = nnx.split(loaded.model)
    result = model_gradients(task, graphdef, params, reference_inputs(task, ref, loaded.config))
    names = checkpoint_names(loaded.config, list(result.grad_norms))
    ours = {names[path]: value for path, value in result.grad_norms.items()}
    expected = dict(zip(ref["names"].tolist(), ref["grad_norms"], strict=True))
    assert sorted(ours) == sorted(expected)
    got = np.array([ours[name] for name in sorted(expected)])
    want = np.array([expected[name] for name in sorted(expected)])
    # Key biases get exactly zero gradient (softmax ignores a shift shared by all keys): both
    # sides hold rounding noise there, hence the absolute floor far below every real norm.
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-6 * want.max())
    np.testing.assert_allclose(result.loss, float(ref["loss"]), rtol=1e-5)
    np.testing.assert_allclose(result.example_norms, ref["example_norms"], rtol=1e-3)
    if task == "causal-lm":  # every token after the first of each text is predicted
        assert result.n_targets == int(ref["attention_mask"][:, 1:].sum())
    else:
        assert result.n_targets == int(np.sum(ref["labels"] != -100))


@pytest.mark.parametrize("fixture", ["tiny-llama", "tiny-t5"])  # T5: a config of its own
def test_a_gradient_step_beyond_the_free_memory_is_one_line_naming_the_fix(fixture):
    config = load_model(FIXTURES / fixture).config
    need = gradient_step_bytes(config, 10**6, 16)
    fits, short = Available(need, "a fake card"), Available(need - 1, "a fake card")
    assert memory_problem(config, 10**6, 16, checkpoints=False, available=fits) is None
    assert memory_problem(config, 10**6, 16, checkpoints=False, available=short)
    # a further checkpoint's float32 parameters are loaded beside the card's
    problem = memory_problem(config, 10**6, 16, checkpoints=True, available=fits)
    assert problem and "\n" not in problem
    assert "a fake card has" in problem and "mesh: {model: N}" in problem
