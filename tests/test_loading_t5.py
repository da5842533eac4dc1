"""Checked loading of T5 checkpoints: tied copies, untied heads, and one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from generator.errors import ModelLoadError
from generator.models import load_model, read_safetensors, supported_model_types
from generator.models.t5_config import t5_from_hf

FIXTURES = Path(__file__).parent / "fixtures"
PARITY = FIXTURES / "parity"


def copy_of(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def rewrite_weights(model_dir: Path, edit) -> None:
    path = model_dir / "model.safetensors"
    save_file(edit(read_safetensors(path)), str(path))


def edit_config(model_dir: Path, **changes) -> None:
    path = model_dir / "config.json"
    config = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    path.write_text(json.dumps(config))


def load_error(model_dir: Path) -> str:
    with pytest.raises(ModelLoadError) as info:
        load_model(model_dir)
    assert "\n" not in info.value.message
    return info.value.message


def logits_of(model_dir: Path, name: str) -> np.ndarray:
    ref = dict(np.load(PARITY / f"{name}.npz"))
    model = load_model(model_dir).model
    out = model(
        ref["input_ids"],
        ref["attention_mask"],
        ref["decoder_input_ids"],
        ref["decoder_attention_mask"],
    )
    return np.asarray(out["logits"]), ref["logits"]


def test_t5_is_a_supported_model_type():
    assert "t5" in supported_model_types()


def test_every_tensor_is_used_and_matches():
    loaded = load_model(FIXTURES / "tiny-t5-v1_1")
    tensors = read_safetensors(FIXTURES / "tiny-t5-v1_1" / "model.safetensors")
    assert loaded.ignored == ()
    wi_1 = loaded.model.decoder.block[2].layer[2].DenseReluDense.wi_1.kernel[...]
    np.testing.assert_array_equal(
        np.asarray(wi_1), tensors["decoder.block.2.layer.2.DenseReluDense.wi_1.weight"].T
    )
    bias = loaded.model.decoder.block[0].layer[0].SelfAttention.relative_attention_bias
    np.testing.assert_array_equal(
        np.asarray(bias.embedding[...]),
        tensors["decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"],
    )
    np.testing.assert_array_equal(
        np.asarray(loaded.model.lm_head.kernel[...]), tensors["lm_head.weight"].T
    )


def test_tied_copies_written_by_older_versions_are_accepted(tmp_path):
    model_dir = copy_of("tiny-t5", tmp_path)

    def add_copies(tensors):
        shared = tensors["shared.weight"]
        tensors["encoder.embed_tokens.weight"] = shared.copy()
        tensors["decoder.embed_tokens.weight"] = shared.copy()
        tensors["decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"] = (
            np.zeros((8, 4), np.float32)
        )
        return tensors

    rewrite_weights(model_dir, add_copies)
    loaded = load_model(model_dir)
    assert loaded.ignored == (
        "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",
        "decoder.embed_tokens.weight",
        "encoder.embed_tokens.weight",
    )
    ours, ref = logits_of(model_dir, "tiny-t5")
    assert np.abs(ours - ref).max() <= 1e-4


def test_embed_tokens_alone_stand_in_for_shared(tmp_path):
    model_dir = copy_of("tiny-t5", tmp_path)

    def rename(tensors):
        shared = tensors.pop("shared.weight")
        tensors["encoder.embed_tokens.weight"] = shared
        tensors["decoder.embed_tokens.weight"] = shared.copy()
        return tensors

    rewrite_weights(model_dir, rename)
    ours, ref = logits_of(model_dir, "tiny-t5")
    assert np.abs(ours - ref).max() <= 1e-4


def test_untied_input_embeddings_are_refused(tmp_path):
    model_dir = copy_of("tiny-t5", tmp_path)

    def add_different_copy(tensors):
        tensors["decoder.embed_tokens.weight"] = tensors["shared.weight"] + 1.0
        return tensors

    rewrite_weights(model_dir, add_different_copy)
    message = load_error(model_dir)
    assert "decoder.embed_tokens.weight differs from shared.weight" in message


def test_a_tied_lm_head_copy_gives_the_same_logits(tmp_path):
    model_dir = copy_of("tiny-t5", tmp_path)

    def add_head(tensors):
        tensors["lm_head.weight"] = tensors["shared.weight"].copy()
        return tensors

    rewrite_weights(model_dir, add_head)
    assert load_model(model_dir).model.lm_head is not None
    ours, ref = logits_of(model_dir, "tiny-t5")
    assert np.abs(ours - ref).max() <= 1e-4


def test_missing_and_unused_tensors_are_all_listed(tmp_path):
    model_dir = copy_of("tiny-t5", tmp_path)

    def damage(tensors):
        del tensors["encoder.block.1.layer.0.SelfAttention.q.weight"]
        tensors["encoder.block.9.layer.0.SelfAttention.q.weight"] = np.zeros((32, 32), np.float32)
        return tensors

    rewrite_weights(model_dir, damage)
    message = load_error(model_dir)
    assert "1 unused checkpoint tensors: encoder.block.9.layer.0.SelfAttention.q.weight" in message
    assert "1 model parameters not in checkpoint: encoder.block.1.layer.0" in message


def test_wrong_shapes_are_reported(tmp_path):
    model_dir = copy_of("tiny-t5", tmp_path)
    edit_config(model_dir, d_ff=16)
    message = load_error(model_dir)
    assert "shape mismatches" in message and "DenseReluDense.wi.weight" in message


def test_config_parsing_follows_transformers():
    base = json.loads((FIXTURES / "tiny-t5" / "config.json").read_text())
    base = {k: v for k, v in base.items() if k not in ("is_gated_act", "dense_act_fn")}
    silu = t5_from_hf({**base, "feed_forward_proj": "gated-silu"})
    assert silu.gated and silu.activation == "silu"
    gelu = t5_from_hf({**base, "feed_forward_proj": "gelu"})
    assert not gelu.gated and gelu.activation == "gelu"
    v1_1 = t5_from_hf({**base, "feed_forward_proj": "gated-gelu", "dense_act_fn": "gelu_new"})
    assert v1_1.gated and v1_1.activation == "gelu_new"  # "gated-gelu" means tanh GELU
    old_untied = {k: v for k, v in base.items() if k != "scale_decoder_outputs"}
    assert not t5_from_hf({**old_untied, "tie_word_embeddings": False}).scale_decoder_outputs
    assert t5_from_hf(old_untied).scale_decoder_outputs
    assert t5_from_hf({**base, "eos_token_id": [1, 5]}).eos_token_id == 1
    no_start = {k: v for k, v in base.items() if k != "decoder_start_token_id"}
    assert t5_from_hf(no_start).decoder_start_token_id == base["pad_token_id"]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"feed_forward_proj": "fancy-gelu"}, "feed_forward_proj 'fancy-gelu' is not valid"),
        ({"feed_forward_proj": "gated-mish"}, "activation 'mish' is not supported"),
        ({"is_gated_act": True}, "is_gated_act True contradicts feed_forward_proj 'relu'"),
        ({"d_kv": None}, "missing setting 'd_kv'"),
    ],
)
def test_bad_configs_are_one_line_errors(tmp_path, changes, expected):
    model_dir = copy_of("tiny-t5", tmp_path)
    edit_config(model_dir, **changes)
    assert expected in load_error(model_dir)
