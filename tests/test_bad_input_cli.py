"""Bad input through the CLI: one clear line, non-zero exit, no traceback, previous site intact.

Every case first copies a good build of the tiny card (same name, same --out and --artifacts),
then runs `modelatlas build` on a broken card / model / corpus and checks that the site and the
artifacts are byte-for-byte what they were, with no staging folder left behind.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cards import FIXTURES, small_corpus, write_card
from robust_support import (
    cli,
    copy_tiny_model,
    edit_weights,
    leftovers,
    output_lines,
    overflowing_model,
    tree_bytes,
)

NAME = "tiny-bert"


@dataclass
class Built:
    """A copy of a good build, with its bytes recorded before the bad run."""

    root: Path
    out: Path
    artifacts: Path
    site_before: dict[str, bytes]
    artifacts_before: dict[str, bytes]

    def build(self, card, *options, debug=False):
        """Run `modelatlas [--debug] build CARD OPTIONS` into this site and artifact store."""
        main_options = ("--debug",) if debug else ()
        args = ("build", card, "--out", self.out, "--artifacts", self.artifacts, *options)
        return cli(*main_options, *args)

    def assert_unchanged(self) -> None:
        assert tree_bytes(self.out) == self.site_before, "the previous site changed"
        assert tree_bytes(self.artifacts) == self.artifacts_before, "the artifacts changed"
        assert leftovers(self.out) == [] and leftovers(self.artifacts) == []


@pytest.fixture
def built(tiny_build, tmp_path) -> Built:
    """A copy of the shared tiny-BERT build (tests/conftest.py), for a bad build to leave alone."""
    _, out, artifacts = tiny_build
    shutil.copytree(out, tmp_path / "site")
    shutil.copytree(artifacts, tmp_path / "artifacts")
    built = Built(tmp_path, tmp_path / "site", tmp_path / "artifacts", {}, {})
    built.site_before = tree_bytes(built.out)
    built.artifacts_before = tree_bytes(built.artifacts)
    assert (built.out / NAME / "index.html").is_file()
    return built


def fails(built: Built, card, *expected: str, options=()) -> str:
    """Build `card`, require one error line holding every `expected` text; return the line."""
    result = built.build(card, *options)
    assert result.exit_code == 2, result.output
    lines = output_lines(result)
    assert len(lines) == 1, f"expected one line, got:\n{result.output}"
    assert "Traceback" not in result.output
    line = lines[0]
    assert line.startswith("Error: ")
    for text in expected:
        assert text in line, f"{text!r} not in {line!r}"
    built.assert_unchanged()
    return line


def card_with(built: Built, **settings) -> Path:
    """Write the tiny card (same name as the good build) with `settings` changed."""
    return write_card(built.root / "cards", **settings)


def corpus_file(built: Built, name: str, content: bytes) -> Path:
    path = built.root / "data" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def corpus_card(built: Built, path: Path, **settings) -> Path:
    settings = {"label_field": None, "split_field": None, **settings}
    return card_with(built, corpus=str(path), **settings)


# --- the card ---------------------------------------------------------------------------------


def test_missing_card(built):
    fails(built, built.root / "nope.md", "nope.md", "card not found")


def test_card_that_is_a_folder(built):
    folder = built.root / "folder.md"
    folder.mkdir()
    fails(built, folder, "is a folder")


def test_card_not_utf8(built):
    card = built.root / "latin1.md"
    card.write_bytes("---\nname: tiny-bert\ntitle: caf\xe9\n---\n".encode("latin-1"))
    fails(built, card, "not UTF-8", "save it as UTF-8")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_card(built):
    card = card_with(built)
    card.chmod(0)
    try:
        fails(built, card, "cannot read card")
    finally:
        card.chmod(0o644)


def test_card_read_error(built, monkeypatch):
    """The same path as an unreadable card for users who are root (who can read any mode)."""
    card = card_with(built)
    original = Path.read_text

    def refuse(self, *args, **kwargs):
        if self == card:
            raise PermissionError(13, "Permission denied", str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", refuse)
    fails(built, card, "cannot read card: Permission denied")


def test_invalid_yaml(built):
    card = built.root / "cards" / "broken.md"
    card.parent.mkdir(parents=True, exist_ok=True)
    card.write_text("---\nname: tiny-bert\nmodel: [unclosed\ncorpus: x\n---\n", encoding="utf-8")
    fails(built, card, "invalid YAML in the front matter at line")


def test_unknown_keys_and_wrong_types_are_reported_together(built):
    card = card_with(built, poolng="mean", colour=3, max_length="long", showcase=True)
    line = fails(built, card, "4 problem(s)")
    assert "unknown key 'poolng' (did you mean 'pooling'?)" in line
    assert "unknown key 'colour'" in line
    assert "'max_length' must be an integer" in line and "the string 'long'" in line
    assert "'showcase' must be an integer" in line and "a boolean (true)" in line


def test_model_path_that_does_not_exist(built):
    fails(built, card_with(built, model="./no-such-model"), "'model' folder", "no-such-model")


# --- the checkpoint -----------------------------------------------------------------------------


TINY_XLNET = FIXTURES / "tiny-xlnet"


def model_card(built: Built, model: Path) -> Path:
    return card_with(built, model=str(model))


@pytest.fixture
def model(built) -> Path:
    return copy_tiny_model(built.root / "model")


def test_model_folder_without_config(built, model):
    (model / "config.json").unlink()
    fails(built, model_card(built, model), "config.json does not exist", "save_pretrained")


def test_model_folder_without_weights(built, model):
    (model / "model.safetensors").unlink()
    fails(built, model_card(built, model), "model.safetensors does not exist")


def test_model_folder_with_only_a_pickle_checkpoint(built, model):
    (model / "model.safetensors").rename(model / "pytorch_model.bin")
    fails(built, model_card(built, model), "pickle checkpoints are refused")


def test_truncated_safetensors(built, model):
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    fails(built, model_card(built, model), "not a readable safetensors file", "truncated")


def test_corrupt_safetensors(built, model):
    (model / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage" * 10)
    fails(built, model_card(built, model), "not a readable safetensors file")


def test_weights_with_wrong_names(built, model):
    def rename(tensors):
        tensors["encoder.layer.0.attention.self.kwery.weight"] = tensors.pop(
            "encoder.layer.0.attention.self.query.weight"
        )
        return tensors

    edit_weights(model, rename)
    fails(
        built,
        model_card(built, model),
        "does not match the model config",
        "1 unused checkpoint tensors: encoder.layer.0.attention.self.kwery.weight",
        "1 model parameters not in checkpoint: encoder.layer.0.attention.self.query.weight",
    )


def test_weights_with_wrong_shapes(built, model):
    def shrink(tensors):
        name = "encoder.layer.1.intermediate.dense.weight"
        tensors[name] = tensors[name][:48]
        return tensors

    edit_weights(model, shrink)
    fails(
        built,
        model_card(built, model),
        "1 shape mismatches: encoder.layer.1.intermediate.dense.weight expected [64, 32] got [48, 32]",
    )


def test_unsupported_architecture(built, model):
    config = json.loads((model / "config.json").read_text())
    config["model_type"] = "mamba"
    (model / "config.json").write_text(json.dumps(config))
    line = fails(built, model_card(built, model), "model_type 'mamba' is not supported", "bert")
    assert "xlnet" in line  # the supported list names every family


def test_xlnet_with_an_unsupported_attention_type(built):
    """XLNet's `uni` attention (and bi_data) are pre-training settings: one line, nothing written."""
    model = Path(shutil.copytree(TINY_XLNET, built.root / "xlnet"))
    config = json.loads((model / "config.json").read_text())
    config["attn_type"] = "uni"
    (model / "config.json").write_text(json.dumps(config))
    fails(built, model_card(built, model), "XLNet attn_type 'uni' is not supported; only 'bi' is")


@pytest.fixture
def albert_model(built) -> Path:
    """A copy of tiny-albert-mlm: 4 layers over 2 groups (layers 2 and 3 apply group 1)."""
    return Path(shutil.copytree(FIXTURES / "tiny-albert-mlm", built.root / "albert"))


def test_albert_with_more_groups_than_layers(built, albert_model):
    config = json.loads((albert_model / "config.json").read_text())
    config["num_hidden_groups"] = 5
    (albert_model / "config.json").write_text(json.dumps(config))
    fails(
        built, model_card(built, albert_model), "num_hidden_groups 5", "at most one group per layer"
    )


def test_albert_checkpoint_without_a_group(built, albert_model):
    edit_weights(albert_model, lambda t: {k: v for k, v in t.items() if "groups.1." not in k})
    fails(
        built,
        model_card(built, albert_model),
        "model parameters not in checkpoint: encoder.albert_layer_groups.1.albert_layers.0.",
    )


def test_non_finite_shared_block_names_the_first_layer_that_applies_it(built, albert_model):
    name = "albert.encoder.albert_layer_groups.1.albert_layers.0.ffn.weight"
    edit_weights(albert_model, lambda t: {**t, name: np.full_like(t[name], 3e38)})
    card = card_with(
        built,
        model=str(albert_model),
        corpus=str(small_corpus(built.root / "data", ["a first sentence", "the second one"])),
        label_field=None,
        split_field=None,
        showcase=2,
    )
    fails(built, card, "NaN or Inf in activations", "at layer 3 (output of block 2")


# --- the corpus ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.txt", "empty.csv"])
def test_empty_corpus(built, name):
    content = b"text\n" if name.endswith(".csv") else b"\n  \n"
    path = corpus_file(built, name, content)
    fails(built, corpus_card(built, path), f"corpus {name} has no texts")


def test_corpus_not_utf8(built):
    path = corpus_file(built, "latin1.txt", "first line\ncaf\xe9 au lait\n".encode("latin-1"))
    fails(built, corpus_card(built, path), "is not UTF-8: byte 0xe9 at line 2", "re-save")


def test_corpus_with_nul_characters(built):
    path = corpus_file(built, "utf16.txt", "a text\nsaved as UTF-16\n".encode("utf-16-le"))
    fails(built, corpus_card(built, path), "NUL character", "line 1", "UTF-16")


def test_jsonl_with_an_escaped_nul(built):
    path = corpus_file(built, "nul.jsonl", b'{"text": "fine"}\n{"text": "a\\u0000b"}\n')
    fails(built, corpus_card(built, path), "line 2: 'text' has a NUL character")


def test_jsonl_with_an_unpaired_surrogate(built):
    path = corpus_file(built, "surrogate.jsonl", b'{"text": "bad \\ud800 escape"}\n')
    fails(built, corpus_card(built, path), "line 1: 'text' has an unpaired surrogate \\ud800")


def test_card_title_with_a_nul_escape(built):
    card = card_with(built)
    card.write_text(card.read_text().replace("title: Tiny BERT", 'title: "Tiny\\0BERT"'))
    fails(built, card, "'title' has a NUL character")


def test_jsonl_with_a_broken_line(built):
    rows = b'{"text": "one"}\n{"text": "two"}\n{"text": "three\n{"text": "four"}\n'
    path = corpus_file(built, "broken.jsonl", rows)
    fails(built, corpus_card(built, path), "line 3 is not valid JSON")


def test_csv_without_the_named_column(built):
    path = corpus_file(built, "table.csv", b"sentence,topic\nhello there,a\n")
    fails(built, corpus_card(built, path), "has no column 'text'", "'sentence', 'topic'")


def test_labels_on_only_some_rows(built):
    rows = b'{"text": "one", "label": "a"}\n{"text": "two"}\n{"text": "three", "label": "b"}\n'
    path = corpus_file(built, "some.jsonl", rows)
    fails(
        built,
        corpus_card(built, path, label_field="label"),
        "label field 'label' is missing or empty on 1 of 3 rows, first at line 2",
    )


def long_corpus(built: Built) -> Path:
    long = " ".join(["the quick brown fox jumps over the lazy dog"] * 4)
    texts = [long, "a short one", long + " again", "tiny", "also short"]
    return small_corpus(built.root / "data", texts)


def test_texts_longer_than_max_length_warn_and_build(built):
    card = corpus_card(built, long_corpus(built), max_length=16, showcase=2)
    result = built.build(card)
    assert result.exit_code == 0, result.output
    warnings = [line for line in output_lines(result) if line.startswith("WARNING")]
    assert warnings == [
        "WARNING: tiny-bert: 2 of 5 texts are longer than max_length 16 tokens and were truncated"
    ]
    page = (built.out / NAME / "index.html").read_text(encoding="utf-8")
    assert "2 texts were longer than max_length 16" in page


def test_strict_makes_truncation_fatal(built):
    card = corpus_card(built, long_corpus(built), max_length=16, showcase=2)
    fails(
        built,
        card,
        "--strict: 2 of 5 texts are longer than max_length 16 tokens and were truncated",
        options=("--strict",),
    )


def test_non_finite_activations_name_layer_and_text(built):
    model = overflowing_model(built.root / "model", block=1)
    texts = ["a first sentence", "the second one", "and a third text"]
    card = card_with(
        built,
        model=str(model),
        corpus=str(small_corpus(built.root / "data", texts)),
        label_field=None,
        split_field=None,
        showcase=2,
    )
    line = fails(built, card, "NaN or Inf in activations", "at layer 2 (output of block 1")
    index = int(line.split(" for text ")[1].split()[0])
    assert repr(texts[index]) in line


# --- the CLI's own error handling ---------------------------------------------------------------


def test_debug_shows_the_traceback(built):
    result = built.build(built.root / "nope.md", debug=True)
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.output
    assert "CardError" in result.output
    assert output_lines(result)[-1].startswith("Error: ") and "card not found" in result.output


def test_unexpected_error_is_one_line_unless_debug(built, monkeypatch):
    import generator.build

    def explode(*args, **kwargs):
        raise RuntimeError("boom\nsecond line of the message")

    monkeypatch.setattr(generator.build, "build_cards", explode)
    card = card_with(built)
    result = built.build(card)
    assert result.exit_code == 1
    assert output_lines(result) == [
        "Error: unexpected RuntimeError: boom second line of the message"
        " (rerun with --debug for the traceback)"
    ]
    with pytest.raises(RuntimeError, match="boom"):
        built.build(card, debug=True)
    built.assert_unchanged()


@pytest.mark.parametrize("command", ["extract", "render"])
def test_stage_commands_report_bad_input_in_one_line(built, command):
    card = card_with(built, max_length="long")
    result = cli(command, card, "--artifacts", built.artifacts)
    assert result.exit_code == 2 and len(output_lines(result)) == 1, result.output
    assert "'max_length' must be an integer" in result.output
    built.assert_unchanged()
