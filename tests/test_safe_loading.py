"""Safe loading: no remote or pickled code ever runs, and card paths cannot wander off.

Decision on symlinks: a model folder may contain symlinks that point outside it, and they are
followed. The Hugging Face cache is built that way (`snapshots/REV/FILE -> ../../blobs/HASH`),
only data is read through them (JSON, safetensors, tokenizer files; never code), and the user
chose the folder. What *is* checked is the path a card writes: relative paths may not climb out
of both the card's folder and the working directory (`..` is resolved lexically), `package:`
paths may not leave their package, and the card's `name`, which becomes a folder under --out and
--artifacts, must be a slug.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
from pathlib import Path

import pytest
from cards import small_corpus, write_card
from robust_support import cli, copy_tiny_model, output_lines

from generator.models import load_model

PACKAGE = Path(__file__).resolve().parents[1] / "generator"

# Calls that run code hidden in data files, or let Hugging Face run a repository's code.
FORBIDDEN = {
    "trust_remote_code=True": re.compile(r"trust_remote_code\s*=\s*True"),
    "pickle.load(": re.compile(r"\bpickle\.loads?\("),
    "torch.load(": re.compile(r"\btorch\.load\("),
    "allow_pickle=True": re.compile(r"allow_pickle\s*=\s*True"),
    "yaml.load(": re.compile(r"\byaml\.(unsafe_)?load\("),
    "eval( / exec(": re.compile(r"(?<![\w.])(eval|exec)\("),
}


def test_package_source_never_runs_pickled_or_remote_code():
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 20
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {name}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        for name, pattern in FORBIDDEN.items()
        if pattern.search(line)
    ]
    assert not found, "\n".join(found)


def test_every_npy_load_refuses_pickles():
    calls = [
        f"{path.name}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if re.search(r"\bnp\.load\(", line) and "allow_pickle=False" not in line
    ]
    assert not calls, calls


class _Planted:
    """Unpickling this creates a file: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pickle ran"))


def plant_pickle(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps({"weight": _Planted(marker)}))


def test_pickle_checkpoint_is_never_unpickled(tmp_path):
    model = copy_tiny_model(tmp_path / "model")
    marker = tmp_path / "PWNED"
    (model / "model.safetensors").unlink()
    plant_pickle(model / "pytorch_model.bin", marker)
    card = write_card(tmp_path / "cards", model=str(model))
    result = cli("build", card, "--out", tmp_path / "site", "--artifacts", tmp_path / "art")
    assert result.exit_code == 2 and "pickle checkpoints are refused" in result.output
    assert not marker.exists()


def test_safetensors_wins_over_a_pickle_next_to_it(tmp_path):
    model = copy_tiny_model(tmp_path / "model")
    marker = tmp_path / "PWNED"
    plant_pickle(model / "pytorch_model.bin", marker)
    loaded = load_model(model)
    assert loaded.weights_path.name == "model.safetensors"
    assert not marker.exists()


def test_tokenizer_remote_code_is_ignored(tmp_path):
    """A tokenizer_config.json `auto_map` pointing at a module in the folder must not import it."""
    from generator.extract.tokenize import load_tokenizer

    model = copy_tiny_model(tmp_path / "model")
    marker = tmp_path / "PWNED"
    config = json.loads((model / "tokenizer_config.json").read_text())
    config["auto_map"] = {"AutoTokenizer": ["evil_tokenizer.EvilTokenizer", None]}
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    (model / "evil_tokenizer.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('remote code ran')\n"
        "from transformers import BertTokenizerFast as EvilTokenizer\n"
    )
    tokenizer = load_tokenizer(model)
    assert type(tokenizer).__module__.startswith("transformers.")
    assert not marker.exists()


# --- paths in cards -------------------------------------------------------------------------------


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """tmp/work/cards/ holds the card, tmp/outside/ a model and a corpus; cwd is tmp/work/run."""
    model = copy_tiny_model(tmp_path / "outside" / "model")
    corpus = small_corpus(tmp_path / "outside", ["one text", "another text"])
    cards = tmp_path / "work" / "cards"
    run = tmp_path / "work" / "run"
    run.mkdir(parents=True)
    monkeypatch.chdir(run)
    return cards, model, corpus


def refused(tmp_path, card, *expected):
    out, artifacts = tmp_path / "work" / "site", tmp_path / "work" / "artifacts"
    result = cli("build", card, "--out", out, "--artifacts", artifacts)
    assert result.exit_code == 2, result.output
    lines = output_lines(result)
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for text in expected:
        assert text in lines[0], lines[0]
    assert not out.exists() and not artifacts.exists()
    return lines[0]


def test_relative_model_path_cannot_leave_card_folder_and_cwd(tmp_path, layout):
    cards, model, _ = layout
    card = write_card(cards, model="../../outside/model")
    refused(tmp_path, card, "model path '../../outside/model' leaves the card's folder")


def test_dotdot_is_resolved_before_the_check(tmp_path, layout):
    cards, _, _ = layout
    (cards / "sub").mkdir(parents=True)
    card = write_card(cards, model="sub/../../../outside/model")
    refused(tmp_path, card, "leaves the card's folder")


def test_relative_corpus_path_cannot_leave(tmp_path, layout):
    cards, _, corpus = layout
    card = write_card(
        cards, corpus="../../outside/corpus.jsonl", label_field=None, split_field=None
    )
    refused(tmp_path, card, "corpus path '../../outside/corpus.jsonl' leaves the card's folder")


def test_checkpoint_model_path_cannot_leave(tmp_path, layout):
    cards, _, _ = layout
    card = write_card(cards, checkpoints=[{"name": "epoch-1", "model": "../../outside/model"}])
    refused(tmp_path, card, "checkpoints[0].model path", "leaves the card's folder")


def test_package_path_cannot_leave_its_package(tmp_path, layout):
    cards, _, _ = layout
    card = write_card(cards, corpus="package:generator/../../outside/corpus.jsonl")
    refused(tmp_path, card, "leaves its package")


@pytest.mark.parametrize("name", ["../escape", "/abs", "a/b", ".hidden", "UPPER"])
def test_name_cannot_become_a_path(tmp_path, layout, name):
    cards, _, _ = layout
    card = write_card(cards, name="x")
    card.write_text(card.read_text().replace("name: x", f"name: {json.dumps(name)}"))
    refused(tmp_path, card, "'name' must be a slug")


def test_absolute_paths_are_accepted(layout):
    from generator.card import load_card

    cards, model, corpus = layout
    card = load_card(write_card(cards, model=str(model), corpus=str(corpus), label_field=None))
    assert card.model_path() == model and card.corpus_path() == corpus


def test_symlinked_files_in_a_model_folder_are_followed(tmp_path):
    """The Hugging Face cache layout: a snapshot folder of symlinks into a blobs folder."""
    source = copy_tiny_model(tmp_path / "source")
    blobs = tmp_path / "cache" / "blobs"
    snapshot = tmp_path / "cache" / "snapshots" / "abc123"
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for file in source.iterdir():
        blob = blobs / f"blob-{file.name}"
        shutil.copyfile(file, blob)
        (snapshot / file.name).symlink_to(Path("../../blobs") / blob.name)
    loaded = load_model(snapshot)
    assert loaded.config.n_layers == 2
