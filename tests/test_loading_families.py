"""Checked loading across families: heads, tied duplicates, buffers, bfloat16 files, pickles."""

from __future__ import annotations

import io
import json
import pickle
import shutil
import zipfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import save_file

from generator.errors import ModelLoadError
from generator.models import load_model, parse_config, read_safetensors
from generator.models.torch_pickle import read_torch_pickle

FIXTURES = Path(__file__).parent / "fixtures"
TINY = FIXTURES / "tiny-bert"
PICKLE = FIXTURES / "tiny-bert-pickle" / "pytorch_model.bin"


def copy_of(name: str, tmp_path: Path) -> Path:
    """Return a writable copy of fixture checkpoint `name`."""
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def rewrite(model_dir: Path, edit) -> None:
    path = model_dir / "model.safetensors"
    save_file(edit(read_safetensors(path)), str(path))


def load_error(model_dir: Path, **kwargs) -> str:
    with pytest.raises(ModelLoadError) as info:
        load_model(model_dir, **kwargs)
    assert "\n" not in info.value.message
    return info.value.message


def first_outputs(model_dir: Path, **kwargs) -> dict:
    ids = np.array([[2, 30, 40, 50, 3]], np.int32)
    out = load_model(model_dir, **kwargs).model(ids, np.ones_like(ids))
    return {key: np.asarray(value) for key, value in out.items()}


# --- heads ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "heads", "logits_shape"),
    [
        ("tiny-bert", (), None),
        ("tiny-bert-mlm", ("masked-lm",), (1, 5, 512)),
        ("tiny-bert-pretraining", ("masked-lm", "next-sentence"), (1, 5, 512)),
        ("tiny-bert-cls", ("classification",), (1, 3)),
        ("tiny-distilbert-mlm", ("masked-lm",), (1, 5, 512)),
        ("tiny-electra", ("replaced-token-detection",), (1, 5)),
        ("tiny-gpt2", ("causal-lm",), (1, 5, 384)),
        ("tiny-llama-cls", ("classification",), (1, 3)),
        ("tiny-albert", (), None),
        ("tiny-albert-mlm", ("masked-lm",), (1, 5, 512)),
        ("tiny-albert-pretraining", ("masked-lm", "sentence-order"), (1, 5, 512)),
        ("tiny-albert-cls", ("classification",), (1, 3)),
        ("tiny-xlnet", ("permutation-lm",), (1, 5, 256)),
        ("tiny-xlnet-cls", ("classification",), (1, 3)),
    ],
)
def test_heads_found_and_recorded(name, heads, logits_shape):
    loaded = load_model(FIXTURES / name)
    assert loaded.config.heads == heads
    assert loaded.config.to_dict()["heads"] == heads
    out = first_outputs(FIXTURES / name)
    if logits_shape is None:
        assert "logits" not in out
    else:
        assert out["logits"].shape == logits_shape


def test_head_parameters_are_in_the_inventory():
    loaded = load_model(FIXTURES / "tiny-bert-pretraining")
    model = loaded.model
    assert model.mlm_head is not None and model.nsp_head is not None and model.pooler is not None
    assert model.mlm_head.decoder is None  # tied to the word embeddings


def test_tied_duplicate_equal_to_source_is_accepted(tmp_path):
    folder = copy_of("tiny-bert-mlm", tmp_path)

    def edit(tensors):
        tensors["cls.predictions.decoder.weight"] = tensors[
            "bert.embeddings.word_embeddings.weight"
        ]
        tensors["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"]
        return tensors

    rewrite(folder, edit)
    loaded = load_model(folder)
    assert "cls.predictions.decoder.weight" in loaded.ignored
    assert "cls.predictions.decoder.bias" in loaded.ignored
    np.testing.assert_array_equal(
        first_outputs(folder)["logits"], first_outputs(FIXTURES / "tiny-bert-mlm")["logits"]
    )


def test_albert_heads_and_sharing_are_recorded():
    pretraining = load_model(FIXTURES / "tiny-albert-pretraining")
    model, config = pretraining.model, pretraining.config
    assert model.pooler is not None and model.sop_head is not None
    assert model.mlm_head.decoder is None and model.mlm_head.dense.kernel.shape == (32, 16)
    assert first_outputs(FIXTURES / "tiny-albert-pretraining")["sentence_order_logits"].shape == (
        1,
        2,
    )
    # 3 layers over 2 groups of 2 blocks: steps 0, 1 use group 0; step 2 group 1
    assert config.n_layers == 6 and config.n_weight_blocks == 4
    assert config.layer_groups == (0, 0, 0, 0, 1, 1)
    assert config.layer_blocks == (0, 1, 0, 1, 2, 3)
    assert config.shared_block_layers() == [[0, 2], [1, 3], [4], [5]]
    recorded = config.to_dict()
    assert recorded["family"] == "albert" and list(recorded["layer_blocks"]) == [0, 1, 0, 1, 2, 3]
    mlm = load_model(FIXTURES / "tiny-albert-mlm").config  # 4 layers, 2 groups
    assert mlm.layer_groups == (0, 0, 1, 1) and mlm.embedding_size == 16 and mlm.d_model == 32
    assert load_model(FIXTURES / "tiny-albert-mlm").model.pooler is None


def test_albert_tied_decoder_copies_are_accepted_and_checked(tmp_path):
    folder = copy_of("tiny-albert-mlm", tmp_path)

    def edit(tensors):
        tensors["predictions.decoder.weight"] = tensors["albert.embeddings.word_embeddings.weight"]
        tensors["predictions.decoder.bias"] = tensors["predictions.bias"]
        return tensors

    rewrite(folder, edit)
    assert {"predictions.decoder.weight", "predictions.decoder.bias"} <= set(
        load_model(folder).ignored
    )
    np.testing.assert_array_equal(
        first_outputs(folder)["logits"], first_outputs(FIXTURES / "tiny-albert-mlm")["logits"]
    )
    rewrite(folder, lambda t: {**t, "predictions.decoder.bias": t["predictions.bias"] + 1.0})
    assert "predictions.decoder.bias differs from predictions.bias" in load_error(folder)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"num_hidden_groups": 5}, "at most one group per layer"),
        ({"inner_group_num": 0}, "must be positive"),
        ({"hidden_act": "mish"}, "hidden_act 'mish' is not supported"),
        ({"hidden_size": 30}, "not divisible by num_attention_heads 4"),
    ],
)
def test_bad_albert_settings_are_reported(patch, message):
    base = json.loads((FIXTURES / "tiny-albert" / "config.json").read_text())
    with pytest.raises(ModelLoadError, match=message):
        parse_config({**base, **patch})


def test_albert_missing_group_is_reported(tmp_path):
    """A checkpoint with fewer groups than config.json names fails with the missing tensors."""
    folder = copy_of("tiny-albert-mlm", tmp_path)
    rewrite(folder, lambda t: {k: v for k, v in t.items() if "albert_layer_groups.1." not in k})
    message = load_error(folder)
    assert "model parameters not in checkpoint" in message and "albert_layer_groups.1" in message


def test_tied_duplicate_that_differs_is_refused(tmp_path):
    folder = copy_of("tiny-gpt2", tmp_path)

    def edit(tensors):
        tensors["lm_head.weight"] = tensors["transformer.wte.weight"] + 1.0
        return tensors

    rewrite(folder, edit)
    message = load_error(folder)
    assert "lm_head.weight differs from wte.weight" in message and "tie_word_embeddings" in message


def test_untied_lm_head_is_loaded(tmp_path):
    folder = copy_of("tiny-gpt2", tmp_path)
    rng = np.random.default_rng(0)

    def edit(tensors):
        shape = tensors["transformer.wte.weight"].shape
        tensors["lm_head.weight"] = rng.normal(size=shape).astype(np.float32)
        return tensors

    rewrite(folder, edit)
    config = json.loads((folder / "config.json").read_text())
    config["tie_word_embeddings"] = False
    (folder / "config.json").write_text(json.dumps(config))
    loaded = load_model(folder)
    assert loaded.config.heads == ("causal-lm",) and loaded.model.lm_head.out is not None
    weight = read_safetensors(folder / "model.safetensors")["lm_head.weight"]
    np.testing.assert_array_equal(np.asarray(loaded.model.lm_head.out.kernel[...]), weight.T)


def test_untied_llama_without_lm_head_has_no_head(tmp_path):
    folder = copy_of("tiny-llama", tmp_path)
    rewrite(folder, lambda t: {k: v for k, v in t.items() if k != "lm_head.weight"})
    loaded = load_model(folder)
    assert loaded.config.heads == ()
    assert "logits" not in first_outputs(folder)


def test_old_gpt2_buffers_are_ignored(tmp_path):
    folder = copy_of("tiny-gpt2", tmp_path)

    def edit(tensors):
        tensors = {k.removeprefix("transformer."): v for k, v in tensors.items()}
        tensors["h.0.attn.bias"] = np.tril(np.ones((1, 1, 64, 64), np.float32))
        tensors["h.0.attn.masked_bias"] = np.array(-1e4, np.float32)
        return tensors

    rewrite(folder, edit)
    loaded = load_model(folder)
    assert loaded.ignored == ("h.0.attn.bias", "h.0.attn.masked_bias")


def test_unknown_head_is_reported(tmp_path):
    folder = copy_of("tiny-roberta-mlm", tmp_path)

    def edit(tensors):
        tensors["qa_outputs.weight"] = np.zeros((2, 32), np.float32)
        return tensors

    rewrite(folder, edit)
    assert "unused checkpoint tensors: qa_outputs.weight" in load_error(folder)


def test_unsupported_rope_type_is_named(tmp_path):
    folder = copy_of("tiny-llama", tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["rope_parameters"] = {"rope_type": "longrope", "factor": 2.0}
    (folder / "config.json").write_text(json.dumps(config))
    message = load_error(folder)
    assert "'longrope'" in message and "llama3" in message and "yarn" in message


def test_bad_grouping_is_reported():
    base = json.loads((FIXTURES / "tiny-llama" / "config.json").read_text())
    with pytest.raises(ModelLoadError, match="not a multiple of num_key_value_heads 3"):
        parse_config({**base, "num_key_value_heads": 3})


# --- weight files ---------------------------------------------------------------------------------


def test_bfloat16_safetensors_load(tmp_path):
    folder = copy_of("tiny-bert", tmp_path)
    rewrite(folder, lambda t: {k: v.astype(ml_dtypes.bfloat16) for k, v in t.items()})
    tensors = read_safetensors(folder / "model.safetensors")
    assert all(v.dtype == ml_dtypes.bfloat16 for v in tensors.values())
    ours = first_outputs(folder)["hidden_states"]
    reference = first_outputs(TINY)["hidden_states"]
    assert np.abs(ours - reference).max() < 0.1  # weights rounded to bfloat16


def test_pickle_needs_the_flag(tmp_path):
    folder = copy_of("tiny-bert", tmp_path)
    (folder / "model.safetensors").unlink()
    shutil.copy(PICKLE, folder / "pytorch_model.bin")
    message = load_error(folder)
    assert "pickle checkpoints are refused" in message and "--allow-pickle" in message
    loaded = load_model(folder, allow_pickle=True)
    assert loaded.weights_path.name == "pytorch_model.bin"
    np.testing.assert_array_equal(
        first_outputs(folder, allow_pickle=True)["hidden_states"],
        first_outputs(TINY)["hidden_states"],
    )


def test_safetensors_win_over_pickle(tmp_path):
    folder = copy_of("tiny-bert", tmp_path)
    shutil.copy(PICKLE, folder / "pytorch_model.bin")
    assert load_model(folder, allow_pickle=True).weights_path.name == "model.safetensors"


def test_pickle_reader_matches_safetensors():
    ours = read_torch_pickle(PICKLE)
    reference = read_safetensors(TINY / "model.safetensors")
    assert set(ours) == set(reference)
    for name, array in reference.items():
        np.testing.assert_array_equal(ours[name], array)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def _zip_pickle(path: Path, payload: bytes) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/byteorder", "little")


def test_pickle_reader_runs_no_code(tmp_path):
    path = tmp_path / "pytorch_model.bin"
    _zip_pickle(path, pickle.dumps({"weight": _Evil()}, protocol=2))
    with pytest.raises(ModelLoadError, match=r"refusing to load global (posix|os)\.system"):
        read_torch_pickle(path)


def test_pickle_reader_refuses_other_objects(tmp_path):
    path = tmp_path / "pytorch_model.bin"
    _zip_pickle(path, pickle.dumps({"weight": io.BytesIO(b"x")}, protocol=2))
    with pytest.raises(ModelLoadError, match="refusing to load global"):
        read_torch_pickle(path)
    path.write_bytes(b"\x80\x02}q\x00.")  # a legacy (non-zip) torch file
    with pytest.raises(ModelLoadError, match="not a zip-format PyTorch checkpoint"):
        read_torch_pickle(path)


def test_pickle_reader_checks_storage_bounds(tmp_path):
    """A tensor view that reaches past its storage is refused, not read out of bounds."""
    with zipfile.ZipFile(PICKLE) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    root = next(n for n in members if n.endswith("/data.pkl"))[: -len("/data.pkl")]
    data = members[f"{root}/data.pkl"]
    # Find a storage and truncate it to one element.
    key = next(n for n in members if n.startswith(f"{root}/data/"))
    members[key] = members[key][:4]
    path = tmp_path / "pytorch_model.bin"
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, data if name.endswith("data.pkl") else content)
    with pytest.raises(ModelLoadError, match="cannot be read safely"):
        read_torch_pickle(path)


# --- hub ids --------------------------------------------------------------------------------------


def test_offline_hub_id_fails_with_one_line(monkeypatch):
    from generator.extract.source import download_from_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as info:
        download_from_hub("nobody-at-all/no-such-model-xyz", None)
    message = info.value.message
    assert "\n" not in message and "HF_HUB_OFFLINE" in message
    assert "local folder" in message


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("LocalEntryNotFoundError", "cannot reach the Hugging Face hub"),
        ("RepositoryNotFoundError", "is not on the hub or needs access"),
        ("RevisionNotFoundError", "revision 'v9' of"),
        ("RuntimeError", "cannot download"),
    ],
)
def test_hub_errors_are_one_line(monkeypatch, error, expected):
    from huggingface_hub import errors

    from generator.extract.source import download_from_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    downloads = []

    class FailingHub:
        """A hub client whose file listing fails as huggingface_hub does."""

        def list_files(self, repo_id, revision):
            exception = getattr(errors, error, None) or RuntimeError
            instance = exception.__new__(exception)  # HTTP errors want a response: skip __init__
            instance.args = ("no",)
            raise instance

        def download(self, *args, **kwargs):
            downloads.append(args)

    with pytest.raises(ModelLoadError) as info:
        download_from_hub("org/model", "v9", client=FailingHub())
    assert expected in info.value.message and "\n" not in info.value.message
    assert downloads == []


def test_pickle_reader_sets_state_only_on_the_state_dict(tmp_path):
    """BUILD (set attributes) on an allowed function is refused; the reader's globals stay intact."""
    from generator.models import torch_pickle

    path = tmp_path / "pytorch_model.bin"
    payload = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n}X\x01\x00\x00\x00aK\x01sb."
    _zip_pickle(path, payload)
    with pytest.raises(ModelLoadError, match="refusing to set the state"):
        read_torch_pickle(path)
    assert not hasattr(torch_pickle._rebuild_tensor, "a")


# --- XLNet ----------------------------------------------------------------------------------------


def test_headless_xlnet_model_loads(tmp_path):
    """A plain XLNetModel checkpoint (no `transformer.` prefix, no head) loads without a head,
    and its content stream equals the LM checkpoint's."""
    model_dir = copy_of("tiny-xlnet", tmp_path)
    rewrite(
        model_dir,
        lambda t: {k.removeprefix("transformer."): v for k, v in t.items() if k != "lm_loss.bias"},
    )
    config = json.loads((model_dir / "config.json").read_text())
    config["architectures"] = ["XLNetModel"]
    (model_dir / "config.json").write_text(json.dumps(config))
    loaded = load_model(model_dir)
    assert loaded.config.heads == () and loaded.config.family == "xlnet"
    headless = first_outputs(model_dir)
    assert "logits" not in headless
    full = first_outputs(FIXTURES / "tiny-xlnet")
    np.testing.assert_array_equal(headless["hidden_states"], full["hidden_states"])


def test_xlnet_tied_lm_loss_weight_is_checked(tmp_path):
    model_dir = copy_of("tiny-xlnet", tmp_path)
    source = "transformer.word_embedding.weight"
    rewrite(model_dir, lambda t: {**t, "lm_loss.weight": t[source].copy()})
    assert "lm_loss.weight" in load_model(model_dir).ignored
    rewrite(model_dir, lambda t: {**t, "lm_loss.weight": t[source] + 1.0})
    assert "lm_loss.weight differs from word_embedding.weight" in load_error(model_dir)


def test_xlnet_per_head_tensors_keep_their_layout(tmp_path):
    """[d_model, head, d_head] tensors are reshaped, never silently transposed: a wrong size is
    a shape mismatch naming the tensor."""
    model_dir = copy_of("tiny-xlnet", tmp_path)
    name = "transformer.layer.0.rel_attn.q"
    rewrite(model_dir, lambda t: {**t, name: np.zeros((32, 4, 4), np.float32)})
    message = load_error(model_dir)
    assert "layer.0.rel_attn.q expected [32, 32] got [32, 4, 4]" in message


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"attn_type": "uni"}, "attn_type 'uni' is not supported"),
        ({"bi_data": True}, "bi_data is not supported"),
        ({"d_head": 16}, "d_head 16 is not d_model / n_head = 8"),
        ({"ff_activation": "swiglu"}, "ff_activation 'swiglu' is not supported"),
    ],
)
def test_xlnet_unsupported_settings_are_named(tmp_path, patch, message):
    model_dir = copy_of("tiny-xlnet", tmp_path)
    config = {**json.loads((model_dir / "config.json").read_text()), **patch}
    (model_dir / "config.json").write_text(json.dumps(config))
    assert message in load_error(model_dir)


def test_xlnet_classifier_summary_settings_are_checked(tmp_path):
    model_dir = copy_of("tiny-xlnet-cls", tmp_path)
    config = {**json.loads((model_dir / "config.json").read_text()), "summary_type": "first"}
    (model_dir / "config.json").write_text(json.dumps(config))
    assert "summary_type 'first' is not supported" in load_error(model_dir)


def test_xlnet_question_answering_head_is_refused(tmp_path):
    model_dir = copy_of("tiny-xlnet-cls", tmp_path)
    rewrite(model_dir, lambda t: {**t, "qa_outputs.weight": np.zeros((2, 32), np.float32)})
    assert "unused checkpoint tensors: qa_outputs.weight" in load_error(model_dir)
