"""Extract stage on the tiny checkpoint: artifact contents, mathematical properties, caching."""

import json

import numpy as np
import pytest
from cards import TEST_CORPUS, write_card

from generator.artifacts import open_artifacts
from generator.card import load_card
from generator.corpus import load_corpus
from generator.errors import StrictModeError
from generator.extract.run import extract


def test_manifest_records_shapes_axes_and_inputs(tiny_build):
    card_path, _, artifacts_root = tiny_build
    artifacts = open_artifacts(artifacts_root / "tiny-bert")
    manifest = artifacts.manifest
    config = manifest["model"]["config"]
    n_texts = len(load_corpus(TEST_CORPUS))
    layers, heads = config["n_layers"], config["n_heads"]
    assert manifest["corpus"]["n_texts"] == n_texts
    assert artifacts.array("corpus/pooled_mean").shape == (n_texts, layers + 1, config["d_model"])
    assert artifacts.axes("showcase/attentions") == ["example", "layer", "head", "query", "key"]
    att = artifacts.array("showcase/attentions")
    assert att.shape[:3] == (4, layers, heads)
    for key in ("weights_sha256", "tokenizer_sha256", "corpus_sha256", "settings", "code_version"):
        assert key in manifest["inputs"]
    assert manifest["dtype"] == "float32" and manifest["store_dtype"] == "float32"
    assert sum(p["count"] for p in manifest["parameters"]) > 0


def test_attention_rows_sum_to_one_and_padding_gets_nothing(tiny_build):
    _, _, artifacts_root = tiny_build
    artifacts = open_artifacts(artifacts_root / "tiny-bert")
    att = np.asarray(artifacts.array("showcase/attentions"), dtype=np.float64)
    mask = np.asarray(artifacts.array("showcase/attention_mask")).astype(bool)
    for example in range(att.shape[0]):
        visible = mask[example]
        rows = att[example][:, :, visible][:, :, :, visible]
        np.testing.assert_allclose(rows.sum(-1), 1.0, atol=1e-5)
        assert np.all(att[example][:, :, :, ~visible] == 0.0)


def test_corpus_pooling_matches_showcase_hidden_states(tiny_build):
    """The corpus step (bucketed batches) and showcase step (one batch) agree on shared rows."""
    _, _, artifacts_root = tiny_build
    artifacts = open_artifacts(artifacts_root / "tiny-bert")
    index = np.asarray(artifacts.array("showcase/index"))
    inside = index < len(artifacts.array("corpus/texts"))  # extra texts have no corpus rows
    assert not inside.all()  # the tiny card names a text outside the corpus
    index = index[inside]
    mask = np.asarray(artifacts.array("showcase/attention_mask"), dtype=np.float64)[inside]
    hidden = np.asarray(artifacts.array("showcase/hidden_states"), dtype=np.float64)[inside]
    expected_mean = (hidden * mask[:, None, :, None]).sum(2) / mask.sum(1)[:, None, None]
    np.testing.assert_allclose(
        artifacts.array("corpus/pooled_mean")[index], expected_mean, atol=2e-5
    )
    np.testing.assert_allclose(
        artifacts.array("corpus/pooled_cls")[index], hidden[:, :, 0], atol=2e-5
    )
    lengths = artifacts.array("corpus/token_lengths")[index]
    assert mask.sum(1).tolist() == lengths.tolist()


def test_tokens_match_ids_and_texts_are_kept(tiny_build):
    _, _, artifacts_root = tiny_build
    artifacts = open_artifacts(artifacts_root / "tiny-bert")
    tokens = artifacts.array("showcase/tokens")
    mask = artifacts.array("showcase/attention_mask")
    assert tokens[0, 0] == "[CLS]"
    assert all(tokens[e, int(mask[e].sum()) - 1] == "[SEP]" for e in range(tokens.shape[0]))
    texts = artifacts.array("corpus/texts")
    corpus = load_corpus(TEST_CORPUS, "text", "label", "split")
    assert list(texts) == list(corpus.texts)


def test_compile_cache_folder_is_the_store_unless_shared(tmp_path, monkeypatch):
    from generator.extract.capture import compilation_cache_dir

    monkeypatch.delenv("MODELATLAS_JAX_CACHE", raising=False)
    assert compilation_cache_dir(tmp_path / "store") == tmp_path / "store" / ".jax-cache"
    monkeypatch.setenv("MODELATLAS_JAX_CACHE", str(tmp_path / "shared"))
    assert compilation_cache_dir(tmp_path / "store") == tmp_path / "shared"


def test_unchanged_inputs_skip_and_changed_settings_rerun(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELATLAS_JAX_CACHE", str(tmp_path / "shared-cache"))
    card = load_card(write_card(tmp_path / "cards", max_length=60))
    first = extract(card, tmp_path / "artifacts", progress=False)
    assert not first.skipped
    assert any((tmp_path / "shared-cache").iterdir()), "persistent compile cache is empty"
    assert not (tmp_path / "artifacts" / ".jax-cache").exists()
    assert extract(card, tmp_path / "artifacts", progress=False).skipped
    assert not extract(card, tmp_path / "artifacts", force=True, progress=False).skipped
    changed = load_card(write_card(tmp_path / "cards", max_length=62))
    assert not extract(changed, tmp_path / "artifacts", progress=False).skipped


def test_damaged_artifact_is_recomputed(tmp_path):
    card = load_card(write_card(tmp_path / "cards"))
    root = tmp_path / "artifacts"
    extract(card, root, progress=False)
    target = root / "tiny-bert" / "corpus" / "pooled_mean.npy"
    target.write_bytes(target.read_bytes()[:-64])
    again = extract(card, root, progress=False)
    assert not again.skipped
    open_artifacts(root / "tiny-bert")  # verifies every hash


def test_each_bucket_shape_compiles_once(tmp_path, monkeypatch):
    from generator.extract.corpus_budget import ShapePrograms

    lowered = []  # (batch, bucket) of every ahead-of-time compile of the corpus step
    original = ShapePrograms.compiled

    def counting(self, batch, bucket):
        if (int(batch), int(bucket)) not in self.programs:
            lowered.append((int(batch), int(bucket)))
        return original(self, batch, bucket)

    monkeypatch.setattr(ShapePrograms, "compiled", counting)
    card = load_card(write_card(tmp_path / "cards"))
    result = extract(card, tmp_path / "artifacts", progress=False)
    shapes = {(batch, length) for length, batch in result.manifest["extraction"]["buckets"]}
    assert result.manifest["extraction"]["batches"] >= len(shapes)
    assert sorted(lowered) == sorted(shapes)  # each planned shape once, nothing else


def test_strict_truncation_fails_and_keeps_previous_artifacts(tmp_path):
    root = tmp_path / "artifacts"
    card = load_card(write_card(tmp_path / "cards", max_length=64))
    extract(card, root, progress=False)
    before = (root / "tiny-bert" / "manifest.json").read_bytes()
    short = load_card(write_card(tmp_path / "cards", max_length=8))
    with pytest.raises(StrictModeError, match="truncated"):
        extract(short, root, strict=True, progress=False)
    assert (root / "tiny-bert" / "manifest.json").read_bytes() == before
    warned = extract(short, root, progress=False)
    assert warned.warnings and "truncated" in warned.warnings[0]
    assert warned.manifest["corpus"]["n_truncated"] > 0


def test_card_without_corpus_extracts_weights_only(tmp_path):
    card = load_card(
        write_card(tmp_path / "cards", corpus=None, label_field=None, split_field=None)
    )
    result = extract(card, tmp_path / "artifacts", progress=False)
    assert result.manifest["corpus"] is None
    assert not any(name.startswith("showcase/") for name in result.manifest["arrays"])


def test_manifest_is_plain_json_readable_without_generator(tiny_build):
    _, _, artifacts_root = tiny_build
    manifest = json.loads((artifacts_root / "tiny-bert" / "manifest.json").read_text())
    for entry in manifest["arrays"].values():
        array = np.load(artifacts_root / "tiny-bert" / entry["path"], mmap_mode="r")
        assert list(array.shape) == entry["shape"]
