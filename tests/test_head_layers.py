"""Head ablation layer by layer (the layers below each head run once) equals the whole model."""

from types import SimpleNamespace

import jax.numpy as jnp
import numpy as np
import pytest
from cards import FIXTURES
from flax import nnx

from generator.attribution.heads import ablation_drops, fidelity_taylor_drops
from generator.attribution.objectives import (
    ObjectiveInputs,
    default_task,
    make_embedder,
    make_objective,
    word_embedding_table,
)
from generator.extract.head_layers import layerwise_head_drops
from generator.models.loading import load_model


class RecordingBar:
    """A progress bar that records its total and updates."""

    def __init__(self, what: str, total: int):
        self.what, self.total, self.updates = what, total, []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n: int = 1) -> None:
        self.updates.append(n)


def sample(config, task: str, rows: int = 3, width: int = 9) -> ObjectiveInputs:
    """Random ids with one padded row; targets at position 3 (rows x width)."""
    rng = np.random.default_rng(1)
    ids = rng.integers(5, config.vocab_size, (rows, width)).astype(np.int32)
    mask = np.ones((rows, width), np.int32)
    mask[-1, width - 3 :] = 0
    position = np.full(rows, 3, np.int32)
    return ObjectiveInputs(
        ids,
        mask,
        position,
        ids[:, 3].copy(),
        np.zeros((rows, 1), np.float32),
        np.zeros(rows, np.int32),
    )


# the fidelity Taylor path (BERT) and a two-stream state with its own task (XLNet permutation-lm)
@pytest.mark.parametrize("name", ["tiny-bert", "tiny-xlnet"])
def test_layer_by_layer_ablation_equals_the_whole_model(name):
    loaded = load_model(FIXTURES / name)
    config = loaded.config
    task = "embedding" if name == "tiny-bert" else default_task(config.heads)
    graphdef, params = nnx.split(loaded.model)
    inputs = sample(config, task)
    embeds = word_embedding_table(loaded.model)[inputs.input_ids]
    shape = (config.n_layers, config.n_heads)
    fidelity = task == "embedding"
    given = inputs  # fidelity: a zero reference, which the layer-by-layer run must replace
    if fidelity:
        own = make_embedder(graphdef, params)(inputs, embeds, jnp.ones(shape))
        inputs = inputs._replace(reference=np.asarray(own))
    if name == "tiny-xlnet":
        assert task == "permutation-lm"
    bars = []
    context = SimpleNamespace(
        config=config,
        task=task,
        graphdef=graphdef,
        params=params,
        bar=lambda what, total, unit: bars.append(RecordingBar(what, total)) or bars[-1],
    )
    ablation, taylor, measured = layerwise_head_drops(
        context, given, embeds, chunk=3, fidelity=fidelity
    )
    # the reference the drops were measured against: each text's own embedding with every head
    np.testing.assert_allclose(measured.reference, inputs.reference, rtol=1e-5, atol=1e-6)
    # progress in layer runs: layer l's heads run layers l.. (n_layers - l of them)
    runs = config.n_layers * (config.n_layers + 1) // 2
    assert [b.what.split(" (")[0] for b in bars] == ["head ablation", "head Taylor"][: 1 + fidelity]
    assert all(b.total == runs and sum(b.updates) == runs for b in bars)
    assert bars[0].updates == list(range(config.n_layers, 0, -1))
    objective = make_objective(task, graphdef, params)
    whole = ablation_drops(lambda mask: objective(inputs, embeds, mask), *shape, chunk=3)
    assert ablation.shape == (len(inputs.input_ids), *shape)
    np.testing.assert_allclose(ablation, whole, rtol=1e-4, atol=2e-6)
    assert np.abs(whole).max() > 1e-4  # the heads matter: the comparison can fail
    if fidelity:
        embed = make_embedder(graphdef, params)
        expected = fidelity_taylor_drops(lambda mask: embed(inputs, embeds, mask), *shape, chunk=3)
        np.testing.assert_allclose(taylor, expected, rtol=1e-4, atol=1e-8)
        # every head of a layer in one chunk (jvp of the vmapped directions) and one head per
        # chunk (the linearised map) give the same drops
        for chunk in (1, config.n_heads):
            per_chunk = layerwise_head_drops(context, given, embeds, chunk=chunk, fidelity=True)[1]
            np.testing.assert_allclose(per_chunk, expected, rtol=1e-4, atol=1e-8)
        assert np.abs(expected).max() > 1e-6
    else:
        assert taylor is None


def test_attribution_progress_bars_draw_only_when_asked(capsys):
    from generator.extract.attribution_capture import AttributionContext

    fields = dict.fromkeys(AttributionContext.__dataclass_fields__)
    fields |= {"card": SimpleNamespace(name="tiny"), "progress": True}
    with AttributionContext(**fields).bar("head pruning", 10, "fraction") as bar:
        bar.update(4)
    assert "tiny: head pruning" in capsys.readouterr().err
    fields["progress"] = False
    with AttributionContext(**fields).bar("head pruning", 10, "fraction") as bar:
        bar.update(4)
    assert capsys.readouterr().err == ""
