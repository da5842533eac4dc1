"""Weights-only builds stream the parameters from the checkpoint: the model is never loaded.

`open_checkpoint` checks a checkpoint as `load_model` does but returns an abstract model and
lazy `CheckpointParameters`; the weight statistics computed from them must equal those from the
loaded model bit for bit, and a card without a corpus must build without `load_model`.
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from cards import FIXTURES, TINY_BERT, TINY_DECODER, write_card
from test_device_memory import LLAMA_7B_CONFIG

from generator.errors import ModelLoadError
from generator.extract.capture import parameter_inventory
from generator.extract.weights import parameter_arrays, weight_artifacts
from generator.models import loading
from generator.models.device_memory import (
    Available,
    MemoryRefusal,
    check_checkpoint,
    check_parameters,
)
from generator.models.loading import load_model, open_checkpoint, streams_parameters
from generator.weight_files import open_weights

STREAMED = (
    "tiny-bert-mlm",
    "tiny-gpt2",
    "tiny-llama-sharded",
    "tiny-albert-pretraining",
    "tiny-xlnet",
)


@pytest.mark.parametrize("name", STREAMED)
def test_streamed_parameters_equal_the_loaded_models(name):
    eager, lazy = load_model(FIXTURES / name), open_checkpoint(FIXTURES / name)
    assert eager.parameters is None and lazy.parameters is not None
    assert lazy.config == eager.config and lazy.ignored == eager.ignored
    assert parameter_inventory(lazy.model) == parameter_inventory(eager.model)
    loaded = parameter_arrays(eager.model)
    assert list(lazy.parameters) == list(loaded)
    for key, value in loaded.items():
        streamed = lazy.parameters[key]
        assert streamed.dtype == np.float32 and streamed.flags.c_contiguous
        assert np.array_equal(streamed, value), key
    ours, theirs = (weight_artifacts(p, eager.config, 1) for p in (lazy.parameters, loaded))
    assert json.dumps(ours[0], sort_keys=True) == json.dumps(theirs[0], sort_keys=True)
    assert ours[1].keys() == theirs[1].keys()
    for key, (array, axes) in ours[1].items():
        assert axes == theirs[1][key][1]
        assert np.array_equal(array, theirs[1][key][0], equal_nan=True), key


def test_t5_and_pickles_are_loaded_whole():
    assert not streams_parameters(FIXTURES / "tiny-t5")  # its own loader (tied copies)
    assert open_checkpoint(FIXTURES / "tiny-t5").parameters is None
    assert not streams_parameters(FIXTURES / "tiny-bert-pickle", allow_pickle=True)
    assert not streams_parameters(FIXTURES / "absent")  # load_model reports that


def test_header_shapes_check_the_mapping_without_reading_a_tensor(tmp_path, monkeypatch):
    """A mis-shaped tensor is reported from the safetensors header, before any read."""
    from safetensors.numpy import load_file, save_file

    folder = tmp_path / "model"
    shutil.copytree(TINY_BERT, folder)
    arrays = load_file(folder / "model.safetensors")
    key = next(k for k in arrays if k.endswith("attention.self.query.weight"))
    arrays[key] = arrays[key][:, :-1].copy()
    save_file(arrays, folder / "model.safetensors")
    tensors = open_weights(folder / "model.safetensors")
    assert tensors.shape(key) == arrays[key].shape

    def no_reads(path, name):
        raise AssertionError(f"{name} was read")

    monkeypatch.setattr("generator.weight_files.read_tensor", no_reads)
    with pytest.raises(ModelLoadError, match=r"shape mismatches: .*query\.weight expected"):
        open_checkpoint(folder)


def test_weights_only_budget_counts_the_streamed_tensors_not_the_model(tmp_path):
    """7B parameters (28 GB float32) loaded are refused at 24 GB; streamed they fit."""
    (tmp_path / "config.json").write_text(json.dumps(LLAMA_7B_CONFIG))
    machine = Available(24 * 1024**3, "a 24 GiB machine")
    with pytest.raises(MemoryRefusal, match=r"needs about 28\.\d\d GiB"):
        check_checkpoint("llama-7b", tmp_path, machine)
    check_checkpoint("llama-7b", tmp_path, machine, resident=False)
    parameters, largest = 6_738_415_616, 32000 * 4096  # Llama-2-7B
    with pytest.raises(MemoryRefusal) as refused:
        check_parameters("llama-7b", parameters, largest, machine, streamable=True)
    assert "\n" not in refused.value.message
    assert re.search(r"drop `corpus` from the card: .* about 4\.88 GiB$", refused.value.message)
    small = Available(4 * 1024**3, "a 4 GiB machine")
    with pytest.raises(MemoryRefusal, match=r"needs about 4\.88 GiB \(the embeddings, streaming"):
        check_checkpoint("llama-7b", tmp_path, small, resident=False)


def _weights(folder):
    """Return (manifest, {name: sha256} of the weights arrays) of an artifact folder."""
    manifest = json.loads((folder / "manifest.json").read_text())
    hashes = {
        name: entry["sha256"]
        for name, entry in manifest["arrays"].items()
        if name.startswith("weights/")
    }
    return manifest, hashes


def test_a_card_without_corpus_never_loads_the_model(tmp_path, monkeypatch):
    """Same weights artifacts as a build that loads the model, with load_model forbidden."""
    from generator.build import build_cards
    from generator.card import load_card

    card = load_card(
        write_card(
            tmp_path / "cards",
            name="tiny-llama",
            model=str(TINY_DECODER),
            corpus=None,
            label_field=None,
            split_field=None,
            pooling="last",
        )
    )
    with monkeypatch.context() as loaded_whole:
        loaded_whole.setattr(loading, "streams_parameters", lambda *a, **k: False)
        build_cards([card], tmp_path / "loaded-site", tmp_path / "loaded", progress=False)

    def no_loading(*args, **kwargs):
        raise AssertionError("a weights-only build loaded the model")

    monkeypatch.setattr(loading, "load_model", no_loading)
    monkeypatch.setattr(loading, "load_mapped", no_loading)  # what loading maps tensors with
    build_cards([card], tmp_path / "site", tmp_path / "streamed", progress=False)
    ours, theirs = (_weights(tmp_path / kind / "tiny-llama") for kind in ("streamed", "loaded"))
    assert ours[0]["weights"] == theirs[0]["weights"]
    assert ours[0]["parameters"] == theirs[0]["parameters"]
    assert ours[1] == theirs[1] and len(ours[1]) >= 5
    assert (tmp_path / "site" / "tiny-llama" / "weights.html").is_file()


def test_the_weights_step_can_show_its_progress_over_the_tensors(capsys):
    """A weights-only build's only long step draws a bar; the statistics are the same."""
    lazy = open_checkpoint(TINY_DECODER)
    quiet = weight_artifacts(lazy.parameters, lazy.config, 1)
    shown = weight_artifacts(lazy.parameters, lazy.config, 1, progress="tiny: weights")
    bar = capsys.readouterr().err
    count = len(lazy.parameters)
    assert "tiny: weights" in bar and f"{count}/{count}" in bar and "tensor" in bar
    assert json.dumps(shown[0], sort_keys=True) == json.dumps(quiet[0], sort_keys=True)
