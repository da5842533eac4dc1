"""Cards with `checkpoints`: per-checkpoint corpus arrays, checks, caching, and saving weights."""

import json
import shutil

import numpy as np
import pytest
from cards import TINY_BERT, small_corpus, write_card
from checkpoint_support import perturbed_checkpoint

from generator.artifacts import open_artifacts
from generator.card import load_card
from generator.errors import ModelLoadError
from generator.extract.run import extract
from generator.models.loading import load_model, read_safetensors
from generator.models.saving import hf_tensors, save_checkpoint

TEXTS = [f"sentence number {i} about {topic}" for i in range(6) for topic in ("food", "money")]


def small_card(tmp_path, checkpoints, **settings):
    corpus = small_corpus(tmp_path / "data", TEXTS)
    return load_card(
        write_card(
            tmp_path / "cards",
            corpus=str(corpus),
            label_field=None,
            split_field=None,
            checkpoints=checkpoints,
            **settings,
        )
    )


def test_checkpoint_arrays_sit_beside_the_models_in_card_order(checkpoint_build):
    _, _, artifacts_root = checkpoint_build
    artifacts = open_artifacts(artifacts_root / "tiny-checkpoints")
    assert [c["name"] for c in artifacts.manifest["checkpoints"]] == ["step-1", "step-2"]
    for pooling in ("pooled_mean", "pooled_cls", "unit_token_sum"):
        main = np.asarray(artifacts.array(f"corpus/{pooling}"))
        for name in ("step-1", "step-2"):
            array = f"checkpoints/{name}/corpus/{pooling}"
            assert artifacts.axes(array) == ["text", "layer", "d_model"]
            other = np.asarray(artifacts.array(array))
            assert other.shape == main.shape and np.all(np.isfinite(other))
            assert not np.allclose(other, main)  # perturbed weights, other vectors
    gradients = artifacts.manifest["gradients"]
    assert [c["name"] for c in gradients["checkpoints"]] == ["step-1", "step-2"]
    main = artifacts.array("gradients/weight_norms")
    for name in ("step-1", "step-2"):
        assert artifacts.axes(f"checkpoints/{name}/gradients/grad_norms") == ["tensor"]
        other = artifacts.array(f"checkpoints/{name}/gradients/weight_norms")
        assert other.shape == main.shape and not np.allclose(other, main)
    fingerprints = artifacts.manifest["inputs"]["checkpoints"]
    assert [f["name"] for f in fingerprints] == ["step-1", "step-2"]
    assert all(len(f["weights_sha256"]) == 64 for f in fingerprints)


def test_a_checkpoint_with_the_models_own_weights_reproduces_its_arrays(tmp_path):
    card = small_card(tmp_path, [{"name": "same", "model": str(TINY_BERT)}])
    result = extract(card, tmp_path / "artifacts", progress=False)
    artifacts = open_artifacts(result.folder)
    for name in ("pooled_mean", "pooled_cls", "unit_token_sum"):
        np.testing.assert_array_equal(
            artifacts.array(f"checkpoints/same/corpus/{name}"), artifacts.array(f"corpus/{name}")
        )
    for name in ("grad_norms", "weight_norms", "example_norms"):  # same weights, same inputs
        np.testing.assert_array_equal(
            artifacts.array(f"checkpoints/same/gradients/{name}"),
            artifacts.array(f"gradients/{name}"),
        )


def test_changed_checkpoint_weights_invalidate_the_artifacts(tmp_path):
    folder = perturbed_checkpoint(tmp_path / "ck", 0.05, seed=1)
    card = small_card(tmp_path, [{"name": "ck", "model": str(folder)}])
    assert not extract(card, tmp_path / "artifacts", progress=False).skipped
    assert extract(card, tmp_path / "artifacts", progress=False).skipped
    perturbed_checkpoint(folder, 0.05, seed=2)
    assert not extract(card, tmp_path / "artifacts", progress=False).skipped


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path):
    folder = tmp_path / "one-layer"
    config = json.loads((TINY_BERT / "config.json").read_text())
    config["num_hidden_layers"] = 1
    tensors = {
        k: v
        for k, v in read_safetensors(TINY_BERT / "model.safetensors").items()
        if ".layer.1." not in k
    }
    save_checkpoint(folder, tensors, config)
    card = small_card(tmp_path, [{"name": "short", "model": str(folder)}])
    with pytest.raises(ModelLoadError, match="checkpoint 'short'.*another architecture"):
        extract(card, tmp_path / "artifacts", progress=False)
    assert not (tmp_path / "artifacts" / "tiny-bert").exists()


def test_a_checkpoint_with_another_vocabulary_is_refused(tmp_path):
    folder = perturbed_checkpoint(tmp_path / "ck", 0.01, seed=1)
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    first, second = sorted(vocab, key=vocab.get)[10:12]
    vocab[first], vocab[second] = vocab[second], vocab[first]
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    card = small_card(tmp_path, [{"name": "ck", "model": str(folder)}])
    with pytest.raises(ModelLoadError, match="another vocabulary"):
        extract(card, tmp_path / "artifacts", progress=False)


def test_saved_weights_round_trip_under_hugging_face_names(tmp_path):
    loaded = load_model(TINY_BERT)
    from flax import nnx

    tensors = hf_tensors(nnx.state(loaded.model, nnx.Param))
    original = read_safetensors(TINY_BERT / "model.safetensors")
    assert set(tensors) == set(original)
    for name, value in original.items():
        np.testing.assert_array_equal(tensors[name], value)
    prefixed = {f"bert.{k}": v for k, v in tensors.items()}
    prefixed["classifier.weight"] = np.zeros((3, 32), np.float32)
    prefixed["classifier.bias"] = np.zeros(3, np.float32)
    config = json.loads((TINY_BERT / "config.json").read_text())
    labels = {"0": "a", "1": "b", "2": "c"}
    save_checkpoint(
        tmp_path / "task",
        prefixed,
        {**config, "architectures": ["BertForSequenceClassification"], "id2label": labels},
    )
    shutil.copyfile(TINY_BERT / "tokenizer.json", tmp_path / "task" / "tokenizer.json")
    again = load_model(tmp_path / "task")
    assert again.config.heads[0] == "classification" and len(again.config.labels) == 3
    reloaded = hf_tensors(nnx.state(again.model, nnx.Param))
    for name, value in original.items():
        np.testing.assert_array_equal(reloaded[name], value)
