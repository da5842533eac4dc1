"""Extract stage on the tiny T5: encoder-decoder artifacts, decoder targets, consistency."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cards import TEST_CORPUS, TINY_T5, write_card, write_t5_card

from generator.artifacts import open_artifacts
from generator.card import load_card
from generator.corpus import load_corpus
from generator.errors import StrictModeError
from generator.extract.run import extract
from generator.extract.seq2seq import PROBE_AXES, decoder_batch, split_generated

SHOWCASE = 4  # write_card default


def t5_artifacts(t5_build):
    _, _, root = t5_build
    return open_artifacts(root / "tiny-t5")


def test_manifest_lists_every_seq2seq_array_with_axes(t5_build):
    artifacts = t5_artifacts(t5_build)
    config = artifacts.manifest["model"]["config"]
    assert config["family"] == "t5" and artifacts.manifest["seq2seq"]["target"] == "greedy"
    layers, decoder_layers, heads = (
        config["n_layers"],
        config["n_decoder_layers"],
        config["n_heads"],
    )
    token = artifacts.array("showcase/input_ids").shape[1]
    target = artifacts.array("showcase/decoder_input_ids").shape[1]
    assert target <= 12
    expected = {
        "encoder_attentions": (SHOWCASE, layers, heads, token, token),
        "decoder_attentions": (SHOWCASE, decoder_layers, heads, target, target),
        "cross_attentions": (SHOWCASE, decoder_layers, heads, target, token),
        "encoder_hidden_states": (SHOWCASE, layers + 1, token, config["d_model"]),
        "decoder_hidden_states": (SHOWCASE, decoder_layers + 1, target, config["d_model"]),
        "cross_keys": (SHOWCASE, decoder_layers, heads, token, config["d_head"]),
        "cross_queries": (SHOWCASE, decoder_layers, heads, target, config["d_head"]),
        "logits": (SHOWCASE, target, config["vocab_size"]),
    }
    for name, shape in expected.items():
        assert artifacts.array(f"showcase/{name}").shape == shape, name
    for name, axes in PROBE_AXES.items():
        assert artifacts.axes(f"showcase/{name}") == list(axes)
    for name in ("decoder_input_ids", "decoder_attention_mask", "decoder_tokens", "target_ids"):
        assert artifacts.axes(f"showcase/{name}") == ["example", "target"]
    assert not artifacts.has("showcase/attentions")  # encoder-only names are not reused
    n_texts = len(load_corpus(TEST_CORPUS))
    pooled = artifacts.array("corpus/pooled_mean")
    assert pooled.shape == (n_texts, layers + 1, config["d_model"])


def test_decoder_reads_the_greedy_output_shifted_right(t5_build):
    """Teacher forcing on the greedy output reproduces it: argmax(logits[t]) = target[t]."""
    artifacts = t5_artifacts(t5_build)
    decoder_ids = artifacts.array("showcase/decoder_input_ids")
    mask = artifacts.array("showcase/decoder_attention_mask").astype(bool)
    targets = artifacts.array("showcase/target_ids")
    logits = artifacts.array("showcase/logits")
    start = artifacts.manifest["model"]["config"]["decoder_start_token_id"]
    assert np.all(decoder_ids[:, 0] == start)
    for example in range(len(decoder_ids)):
        n = int(mask[example].sum())
        assert np.all(decoder_ids[example, 1:n] == targets[example, : n - 1])
        assert np.all(np.argmax(logits[example, :n], axis=-1) == targets[example, :n])
    tokens = artifacts.array("showcase/decoder_tokens")
    assert np.all(tokens[:, 0] == "<pad>") and np.all(tokens[~mask] == "")


def test_attention_masks_rows_and_causality(t5_build):
    artifacts = t5_artifacts(t5_build)
    enc_mask = artifacts.array("showcase/attention_mask").astype(bool)
    dec_mask = artifacts.array("showcase/decoder_attention_mask").astype(bool)
    cross = np.asarray(artifacts.array("showcase/cross_attentions"), np.float64)
    decoder = np.asarray(artifacts.array("showcase/decoder_attentions"), np.float64)
    encoder = np.asarray(artifacts.array("showcase/encoder_attentions"), np.float64)
    for example in range(len(enc_mask)):
        e, d = enc_mask[example], dec_mask[example]
        np.testing.assert_allclose(cross[example][:, :, d][..., e].sum(-1), 1.0, atol=1e-5)
        assert np.all(cross[example][..., ~e] == 0.0)
        np.testing.assert_allclose(encoder[example][:, :, e][..., e].sum(-1), 1.0, atol=1e-5)
        n = int(d.sum())
        future = np.triu(np.ones((n, n), bool), k=1)
        assert np.all(decoder[example][:, :, :n, :n][..., future] == 0.0)


def test_corpus_pooling_is_the_encoder_mean(t5_build):
    artifacts = t5_artifacts(t5_build)
    index = artifacts.array("showcase/index")
    mask = np.asarray(artifacts.array("showcase/attention_mask"), np.float64)
    hidden = np.asarray(artifacts.array("showcase/encoder_hidden_states"), np.float64)
    expected = (hidden * mask[:, None, :, None]).sum(2) / mask.sum(1)[:, None, None]
    np.testing.assert_allclose(artifacts.array("corpus/pooled_mean")[index], expected, atol=2e-5)


def test_target_texts_decode_the_targets(t5_build):
    artifacts = t5_artifacts(t5_build)
    texts = artifacts.array("showcase/target_texts")
    assert texts.shape == (SHOWCASE,) and all(isinstance(str(t), str) for t in texts)
    assert any(str(t).strip() for t in texts)


def corpus_with_targets(folder, targets):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pairs.jsonl"
    rows = [
        {"text": "The cat sat on the mat.", "summary": targets[0]},
        {"text": "We walked to the market before the rain.", "summary": targets[1]},
        {"text": "Hello there!", "summary": targets[2]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_target_field_feeds_the_corpus_targets(tmp_path):
    from transformers import AutoTokenizer

    targets = ["A cat.", "A walk to the market before the rain came down hard.", "Hi."]
    corpus = corpus_with_targets(tmp_path / "data", targets)
    card = load_card(
        write_t5_card(
            tmp_path / "cards",
            corpus=str(corpus),
            label_field=None,
            split_field=None,
            target_field="summary",
            max_target_length=8,
        )
    )
    result = extract(card, tmp_path / "artifacts", progress=False)
    assert result.manifest["seq2seq"]["target"] == "field"
    assert result.manifest["seq2seq"]["n_target_truncated"] == 1
    assert any("max_target_length 8" in w for w in result.warnings)
    artifacts = open_artifacts(tmp_path / "artifacts" / "tiny-t5")
    tokenizer = AutoTokenizer.from_pretrained(str(TINY_T5))
    target_ids = artifacts.array("showcase/target_ids")
    mask = artifacts.array("showcase/decoder_attention_mask")
    for example, text in enumerate(targets):
        expected = tokenizer(text, truncation=True, max_length=8)["input_ids"]
        n = int(mask[example].sum())
        assert target_ids[example, :n].tolist() == expected
    with pytest.raises(StrictModeError, match="max_target_length"):
        extract(card, tmp_path / "strict", strict=True, progress=False)


def test_target_settings_on_an_encoder_only_model_warn(tmp_path):
    card = load_card(write_card(tmp_path / "cards", max_target_length=10, showcase=2))
    result = extract(card, tmp_path / "artifacts", progress=False)
    assert any("encoder-decoder models only" in w for w in result.warnings)


def test_split_generated_stops_after_eos():
    ids = np.array([[0, 5, 1, 0, 0], [0, 5, 6, 7, 8]])
    cut = split_generated(ids, eos_id=1)
    assert [c.tolist() for c in cut] == [[5, 1], [5, 6, 7, 8]]


def test_decoder_batch_shifts_right_and_pads():
    ids, mask, targets = decoder_batch(
        [np.array([5, 1]), np.array([7, 8, 1])], start_id=0, pad_id=0, rows=4
    )
    assert ids.tolist() == [[0, 5, 0], [0, 7, 8], [0, 0, 0], [0, 0, 0]]
    assert mask.tolist() == [[1, 1, 0], [1, 1, 1], [0, 0, 0], [0, 0, 0]]
    assert targets.tolist() == [[5, 1, 0], [7, 8, 1], [0, 0, 0], [0, 0, 0]]
