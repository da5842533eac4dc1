"""Unit tests for generator.card: parsing, defaults, path resolution and every validation rule."""

from __future__ import annotations

import os
import string
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import generator
from generator.card import (
    KEYS,
    Checkpoint,
    ModelCard,
    find_cards,
    load_card,
    parse_card_text,
)
from generator.errors import CardError

PACKAGE_ROOT = Path(generator.__file__).parent


def write_card(folder: Path, front: str, prose: str = "", name: str = "card.md") -> Path:
    """Write a card with front matter `front` (YAML text) and `prose` into `folder`."""
    path = folder / name
    path.write_text(f"---\n{front.strip()}\n---\n{prose}", encoding="utf-8")
    return path


def card_from(folder: Path, data: dict, prose: str = "") -> Path:
    """Write a card whose front matter is `data` dumped as YAML."""
    return write_card(folder, yaml.safe_dump(data, sort_keys=False), prose)


def problems_of(path: Path) -> str:
    """Load `path`, expecting a CardError; return its message."""
    with pytest.raises(CardError) as info:
        load_card(path)
    message = info.value.message
    assert "\n" not in message
    return message


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """Return a fake local model folder next to the cards."""
    folder = tmp_path / "tiny-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Return a small .jsonl corpus next to the cards."""
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"text": "hello"}\n')
    return path


# --- valid cards --------------------------------------------------------------------------------


def test_minimal_card_gets_defaults(tmp_path: Path, model_dir: Path) -> None:
    path = write_card(tmp_path, "name: tiny\nmodel: tiny-model")
    card = load_card(path)
    assert card == ModelCard(path=path.resolve(), name="tiny", title="tiny", model="tiny-model")
    assert card.path.is_absolute()
    assert card.revision is None and card.corpus is None and card.task is None
    assert card.text_field == "text" and card.label_field is None and card.split_field is None
    assert (card.max_length, card.showcase, card.pooling) == (128, 8, "mean")
    assert card.checkpoints == () and card.analyses is None
    assert (card.dtype, card.store_dtype, card.prose) == ("float32", "float32", "")
    assert card.generation_steps == 16
    assert card.head_sample is None  # the FLOP budget decides (generator/extract/head_budget.py)
    assert card.model_path() == model_dir
    assert card.corpus_path() is None


def test_full_card_parses_every_key(tmp_path: Path, model_dir: Path, corpus: Path) -> None:
    (tmp_path / "epoch-1").mkdir()
    front = f"""
name: tiny.v2_x
title: "Tiny: a test model"
model: {model_dir}
revision: abc123
corpus: corpus.jsonl
text_field: sentence
label_field: label
split_field: split
max_length: 256
showcase: 4
pooling: cls
task: classification
checkpoints:
  - name: epoch-1
    model: epoch-1
  - name: hub
    model: org/some-model
analyses: [heads, representations]
dtype: bfloat16
store_dtype: float16
generation_steps: 0
"""
    path = write_card(tmp_path, front, prose="\n# Tiny\n\nA *test* model.\n")
    card = load_card(path)
    assert card.name == "tiny.v2_x"
    assert card.title == "Tiny: a test model"
    assert card.model == str(model_dir) and card.model_path() == model_dir
    assert card.revision == "abc123"
    assert card.corpus == "corpus.jsonl" and card.corpus_path() == corpus
    assert (card.text_field, card.label_field, card.split_field) == ("sentence", "label", "split")
    assert (card.max_length, card.showcase, card.pooling) == (256, 4, "cls")
    assert card.task == "classification"
    assert card.checkpoints == (
        Checkpoint(name="epoch-1", model="epoch-1"),
        Checkpoint(name="hub", model="org/some-model"),
    )
    assert card.checkpoint_model_path(card.checkpoints[0]) == tmp_path / "epoch-1"
    assert card.checkpoint_model_path(card.checkpoints[1]) is None
    assert card.analyses == ("heads", "representations")
    assert (card.dtype, card.store_dtype) == ("bfloat16", "float16")
    assert card.generation_steps == 0
    assert card.prose == "# Tiny\n\nA *test* model."


def test_card_with_only_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "card.md"
    path.write_text("---\nname: x\nmodel: org/x\n---")
    assert load_card(path).prose == ""


def test_hub_id_is_not_checked(tmp_path: Path) -> None:
    card = load_card(write_card(tmp_path, "name: x\nmodel: sentence-transformers/all-MiniLM-L6-v2"))
    assert card.model_path() is None


def test_local_folder_wins_over_hub_id(tmp_path: Path) -> None:
    (tmp_path / "org" / "local").mkdir(parents=True)
    card = load_card(write_card(tmp_path, "name: x\nmodel: org/local"))
    assert card.model_path() == tmp_path / "org" / "local"


def test_package_paths_resolve(tmp_path: Path) -> None:
    front = "name: x\nmodel: package:generator/models\ncorpus: package:generator/paths.py"
    card = load_card(write_card(tmp_path, front))
    assert card.model_path() == PACKAGE_ROOT / "models"
    assert card.corpus_path() == PACKAGE_ROOT / "paths.py"


def test_absolute_paths_are_allowed(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "c.txt").write_text("a\n")
    front = f"name: x\nmodel: {elsewhere}\ncorpus: {elsewhere}/c.txt"
    card = load_card(write_card(tmp_path, front))
    assert card.model_path() == elsewhere
    assert card.corpus_path() == elsewhere / "c.txt"


def test_relative_path_inside_cwd_is_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cards = tmp_path / "model_cards"
    cards.mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "c.txt").write_text("a\n")
    monkeypatch.chdir(tmp_path)
    card = load_card(write_card(cards, "name: x\nmodel: org/x\ncorpus: ../data/c.txt"))
    assert card.corpus_path() == tmp_path / "data" / "c.txt"


def test_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "card.md"
    path.write_bytes(b"\xef\xbb\xbf---\r\nname: x\r\nmodel: org/x\r\n---\r\nHello\r\n")
    card = load_card(path)
    assert (card.name, card.prose) == ("x", "Hello")


def test_null_optional_keys_mean_default(tmp_path: Path) -> None:
    front = "name: x\nmodel: org/x\nrevision:\ntask:\ncheckpoints:\nanalyses:\ncorpus:"
    card = load_card(write_card(tmp_path, front))
    assert (card.revision, card.task, card.checkpoints, card.analyses) == (None, None, (), None)


def test_find_cards(tmp_path: Path) -> None:
    for name in ("b.md", "a.md", "README.md", "notes.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "folder.md").mkdir()
    (tmp_path / "empty").mkdir()
    assert find_cards(tmp_path) == [tmp_path / "a.md", tmp_path / "b.md"]
    assert find_cards(tmp_path / "empty") == []
    with pytest.raises(CardError, match="card folder not found"):
        find_cards(tmp_path / "missing")


# --- extraction settings ------------------------------------------------------------------------


def test_extraction_settings_track_only_extraction(tmp_path: Path) -> None:
    base = {
        "name": "x",
        "model": "org/x",
        "title": "One",
        "checkpoints": [{"name": "e1", "model": "org/e1"}],
    }
    first = load_card(card_from(tmp_path, base, prose="Prose one."))
    retitled = load_card(card_from(tmp_path, {**base, "title": "Two"}, prose="Other prose."))
    longer = load_card(card_from(tmp_path, {**base, "max_length": 64}))
    assert first.extraction_settings() == retitled.extraction_settings()
    assert first.extraction_settings() != longer.extraction_settings()
    settings_ = first.extraction_settings()
    assert settings_["checkpoints"] == [{"name": "e1", "model": "org/e1"}]
    assert set(settings_) == {
        "model",
        "revision",
        "corpus",
        "text_field",
        "label_field",
        "split_field",
        "max_length",
        "showcase",
        "checkpoints",
        "dtype",
        "store_dtype",
        "task",
        "target",
        "target_field",
        "max_target_length",
        "generation_steps",
        "analyses",
        "pooling",
    }
    yaml.safe_dump(settings_)  # plain types only


# --- file-level problems ------------------------------------------------------------------------


def test_missing_card(tmp_path: Path) -> None:
    message = problems_of(tmp_path / "nope.md")
    assert "1 problem(s)" in message
    assert "card not found:" in message
    assert "pass the path of a model_cards/NAME.md file" in message


def test_card_is_a_folder(tmp_path: Path) -> None:
    assert "is a folder" in problems_of(tmp_path)


def test_card_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "card.md"
    path.write_bytes(b"---\nname: \xff\n---\n")
    assert "not UTF-8" in problems_of(path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs file permissions")
def test_unreadable_card(tmp_path: Path) -> None:
    path = write_card(tmp_path, "name: x\nmodel: org/x")
    path.chmod(0)
    try:
        assert "cannot read card" in problems_of(path)
    finally:
        path.chmod(0o644)


def test_no_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "card.md"
    path.write_text("# Just prose\n")
    assert "no front matter" in problems_of(path)
    path.write_text("")
    assert "no front matter" in problems_of(path)


def test_unclosed_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "card.md"
    path.write_text("---\nname: x\nmodel: org/x\n")
    assert "no closing '---' line" in problems_of(path)


def test_invalid_yaml_gives_line_number(tmp_path: Path) -> None:
    path = tmp_path / "card.md"
    path.write_text("---\nname: x\nmodel: org/x\ntitle: [unclosed\npooling: mean\n---\n")
    message = problems_of(path)
    assert "invalid YAML in the front matter at line" in message
    path.write_text("---\nname: x\nmodel: org/x\n  bad: indent\n---\n")
    assert "invalid YAML in the front matter at line 4" in problems_of(path)


def test_front_matter_not_a_mapping(tmp_path: Path) -> None:
    path = write_card(tmp_path, "- name\n- model")
    assert "front matter must be a mapping" in problems_of(path)
    assert "a list of 2 item(s)" in problems_of(path)


def test_empty_front_matter_reports_required_keys(tmp_path: Path) -> None:
    path = tmp_path / "card.md"
    path.write_text("---\n---\n")
    message = problems_of(path)
    assert "2 problem(s)" in message
    assert "missing required key 'name'" in message
    assert "missing required key 'model'" in message


# --- key and value problems ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("poolng: mean", "unknown key 'poolng' (did you mean 'pooling'?)"),
        ("max_len: 64", "unknown key 'max_len' (did you mean 'max_length'?)"),
        ("zzz: 1", "unknown key 'zzz' (known keys: name, title, model"),
        ("1: 1", "unknown key 1"),
        ("name: y", None),
        ("title: 3", "'title' must be a string (quote it), got a number (3)"),
        ("title: ''", "'title' is an empty string"),
        ("model: [a, b]", "'model' must be a string, got a list of 2 item(s)"),
        ("revision: 1234", "'revision' must be a string (quote it), got a number (1234)"),
        ("text_field:", "'text_field' must be a string, got nothing (null)"),
        ("label_field: {a: 1}", "'label_field' must be a string, got a mapping"),
        ("split_field: true", "'split_field' must be a string (quote it), got a boolean (true)"),
        ("max_length: true", "'max_length' must be an integer from 8 to 8192, got a boolean"),
        ("max_length: 12.0", "'max_length' must be an integer from 8 to 8192, got a number"),
        ("max_length: '64'", "'max_length' must be an integer from 8 to 8192, got the string"),
        ("max_length: 4", "'max_length' must be from 8 to 8192, got 4"),
        ("max_length: 10000", "'max_length' must be from 8 to 8192, got 10000"),
        ("showcase: 0", "'showcase' must be from 1 to 64, got 0"),
        ("showcase: 65", "'showcase' must be from 1 to 64, got 65"),
        ("generation_steps: -1", "'generation_steps' must be from 0 to 256, got -1"),
        ("generation_steps: 300", "'generation_steps' must be from 0 to 256, got 300"),
        ("generation_steps: 2.5", "'generation_steps' must be an integer from 0 to 256, got a"),
        ("head_sample: 4", "'head_sample' must be from 8 to 4096, got 4"),
        ("head_sample: all", "'head_sample' must be an integer from 8 to 4096, got the string"),
        ("pooling: max", "'pooling' must be one of mean, cls, last, got the string 'max'"),
        ("pooling: lst", "(did you mean 'last'?)"),
        ("pooling:", "'pooling' must be one of mean, cls, last, got nothing (null)"),
        ("task: lm", "'task' must be one of embedding, embedding-centroid, masked-lm, causal-lm,"),
        ("task: 3", "'task' must be one of"),
        ("dtype: float16", "'dtype' must be one of float32, bfloat16, got the string 'float16'"),
        ("store_dtype: int8", "'store_dtype' must be one of float32, float16, bfloat16"),
        ("analyses: []", "'analyses' must be a non-empty list of analysis names"),
        ("analyses: attention", "'analyses' must be a non-empty list"),
        ("analyses: [heads, 3]", "'analyses[1]' must be an analysis name, got a number (3)"),
        ("analyses: [heads, heads]", "'analyses' lists heads more than once"),
        (
            "analyses: [heads, probes]",
            "'analyses' names 'probes', which is not an analysis; valid:",
        ),
        ("checkpoints: e1", "'checkpoints' must be a list of mappings with keys name and model"),
        ("checkpoints: [e1]", "'checkpoints[0]' must be a mapping with keys name and model"),
        ("checkpoints: [{name: e1}]", "missing required key 'checkpoints[0].model'"),
        ("checkpoints: [{model: org/x}]", "missing required key 'checkpoints[0].name'"),
        (
            "checkpoints: [{name: e1, model: org/x, step: 3}]",
            "'checkpoints[0]' has unknown key(s) 'step': only name and model allowed",
        ),
        ("checkpoints: [{name: E 1, model: org/x}]", "'checkpoints[0].name' must be a slug"),
        ("checkpoints: [{name: e1, model: 3}]", "'checkpoints[0].model' must be a string"),
        (
            "checkpoints: [{name: e1, model: org/x}, {name: e1, model: org/y}]",
            "'checkpoints[1].name' repeats checkpoint name 'e1': make it unique",
        ),
    ],
)
def test_value_problems(tmp_path: Path, extra: str, expected: str | None) -> None:
    given = {line.split(":")[0] for line in extra.splitlines()}  # a key set twice is its own error
    base = "".join(
        f"{key}: {value}\n"
        for key, value in (("name", "x"), ("model", "org/x"))
        if key not in given
    )
    path = write_card(tmp_path, f"{base}{extra}")
    if expected is None:
        load_card(path)
        return
    message = problems_of(path)
    assert "1 problem(s)" in message
    assert expected in message


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("a", True),
        ("bert-base.v2_1", True),
        ("0x", True),
        ("Bert", False),
        ("-a", False),
        (".a", False),
        ("a b", False),
        ("a/b", False),
        ("a\n", False),
        ("", False),
    ],
)
def test_name_must_be_slug(tmp_path: Path, name: str, ok: bool) -> None:
    path = card_from(tmp_path, {"name": name, "model": "org/x"})
    if ok:
        assert load_card(path).name == name
    else:
        message = problems_of(path)
        assert "'name' must be a slug" in message or "'name' is an empty string" in message


def test_missing_required_keys(tmp_path: Path) -> None:
    message = problems_of(write_card(tmp_path, "title: t"))
    assert "missing required key 'name'" in message
    assert "missing required key 'model'" in message


# --- path problems ------------------------------------------------------------------------------


def test_missing_local_model_folder(tmp_path: Path) -> None:
    message = problems_of(write_card(tmp_path, "name: x\nmodel: ./no-such-model"))
    assert "'model' folder './no-such-model' not found" in message
    assert str(tmp_path / "no-such-model") in message


def test_model_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"")
    path = write_card(tmp_path, "name: x\nmodel: weights.bin")
    assert "is a file, not a folder" in problems_of(path)


def test_missing_corpus_file(tmp_path: Path) -> None:
    message = problems_of(write_card(tmp_path, "name: x\nmodel: org/x\ncorpus: data/c.jsonl"))
    assert "'corpus' file 'data/c.jsonl' not found" in message


def test_corpus_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    message = problems_of(write_card(tmp_path, "name: x\nmodel: org/x\ncorpus: data"))
    assert "'corpus' 'data' is a folder" in message


def test_missing_checkpoint_model_folder(tmp_path: Path) -> None:
    front = "name: x\nmodel: org/x\ncheckpoints: [{name: e1, model: ./e1}]"
    assert "'checkpoints[0].model' folder './e1' not found" in problems_of(
        write_card(tmp_path, front)
    )


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        (
            "model: package:no_such_pkg_xyz/models",
            "'model' package 'no_such_pkg_xyz' is not installed",
        ),
        ("model: package:generator/no-such-dir", "'no-such-dir' does not exist inside package"),
        ("model: package:generator/paths.py", "is a file, not a folder"),
        ("model: package:generator/../x", "model path 'package:generator/../x' leaves its package"),
        ("model: package:os.path/x", "is not a top-level module name"),
        ("model: 'package:'", "names no package"),
        ("model: org/x\ncorpus: package:generator/no-such.txt", "'no-such.txt' does not exist"),
    ],
)
def test_package_path_problems(tmp_path: Path, front: str, expected: str) -> None:
    message = problems_of(write_card(tmp_path, f"name: x\n{front}"))
    assert "1 problem(s)" in message
    assert expected in message


def test_escaping_paths_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cards = tmp_path / "project" / "model_cards"
    cards.mkdir(parents=True)
    monkeypatch.chdir(cards)
    front = (
        "name: x\nmodel: ../../m\ncorpus: ../../etc/x\n"
        "checkpoints: [{name: e1, model: ../../../e1}]"
    )
    message = problems_of(write_card(cards, front))
    assert "3 problem(s)" in message
    assert "corpus path '../../etc/x' leaves the card's folder; use an absolute path" in message
    assert "model path '../../m' leaves the card's folder; use an absolute path" in message
    assert "checkpoints[0].model path '../../../e1' leaves the card's folder" in message


def test_label_and_split_fields_need_structured_corpus(tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_text("a\n")
    front = "name: x\nmodel: org/x\ncorpus: c.txt\nlabel_field: y\nsplit_field: s"
    message = problems_of(write_card(tmp_path, front))
    assert "2 problem(s)" in message
    assert "'label_field' needs a .jsonl or .csv corpus" in message
    assert "'split_field' needs a .jsonl or .csv corpus" in message


def test_many_problems_reported_together(tmp_path: Path) -> None:
    front = """
name: Not A Slug
model: ./missing
poolng: mean
max_length: true
showcase: 100
task: lm
dtype: float64
analyses: []
"""
    path = write_card(tmp_path, front)
    message = problems_of(path)
    assert message.startswith(f"{path}: 8 problem(s): ")
    assert message.count("; ") >= 7
    for part in (
        "'name' must be a slug",
        "'model' folder './missing' not found",
        "unknown key 'poolng'",
        "'max_length' must be an integer",
        "'showcase' must be from",
        "'task' must be one of",
        "'dtype' must be one of",
        "'analyses' must be a non-empty",
    ):
        assert part in message


def test_parse_card_text_directly(tmp_path: Path) -> None:
    card = parse_card_text("---\nname: x\nmodel: org/x\n---\nHi", tmp_path / "x.md")
    assert card.prose == "Hi" and card.path == tmp_path / "x.md"
    with pytest.raises(CardError, match=r"x\.md: 1 problem\(s\): no front matter"):
        parse_card_text("Hi", tmp_path / "x.md")


# --- properties ---------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=8), children, max_size=3),
    ),
    max_leaves=6,
)
KEY_NAMES = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=15)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=len(KEYS)))
def test_random_values_only_raise_card_error(data: dict) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = card_from(Path(folder), data)
        try:
            card = load_card(path)
        except CardError as exc:
            assert "\n" not in exc.message
            assert " problem(s): " in exc.message
        else:
            assert card.name == data["name"] and card.model == data["model"]


@settings(max_examples=100, deadline=None)
@given(st.lists(KEY_NAMES.filter(lambda k: k not in KEYS), min_size=1, max_size=5, unique=True))
def test_every_unknown_key_is_named(unknown: list[str]) -> None:
    data = {"name": "x", "model": "org/x", **dict.fromkeys(unknown, 1)}
    with tempfile.TemporaryDirectory() as folder:
        path = card_from(Path(folder), data)
        with pytest.raises(CardError) as info:
            load_card(path)
    message = info.value.message
    assert f"{len(unknown)} problem(s)" in message
    for key in unknown:
        assert f"unknown key {key!r}" in message


def test_duplicate_key_names_the_key_and_both_lines(tmp_path: Path) -> None:
    path = write_card(tmp_path, "name: x\nmodel: org/x\nshowcase: 4\nshowcase: 6")
    message = problems_of(path)
    assert "'showcase' is set twice in the front matter (lines 4 and 5)" in message
    nested = "name: x\nmodel: org/x\ncheckpoints:\n  - name: a\n    model: b\n    model: c"
    assert "'model' is set twice in the front matter (lines 6 and 7)" in problems_of(
        write_card(tmp_path, nested)
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[3, 'a text', 0]", None),
        ("a text", "'showcase_texts' must be a list of texts or corpus row ids, got the string"),
        ("[]", "'showcase_texts' must be a list of texts or corpus row ids"),
        ("[-1]", "'showcase_texts[0]' must be a corpus row id (0 or more), got -1"),
        ("[1, true]", "'showcase_texts[1]' must be a text or a corpus row id, got a boolean"),
        ("[1.5]", "'showcase_texts[0]' must be a text or a corpus row id, got a number"),
        ("['  ']", "'showcase_texts[0]' is an empty text: give the text or remove the entry"),
        ("[{a: 1}]", "'showcase_texts[0]' must be a text or a corpus row id, got a mapping"),
        ("[2, 2]", "'showcase_texts[1]' repeats 2: list each text once"),
        ("[1, 2, 3, 4, 5]", "'showcase_texts' lists 5 texts but 'showcase' is 4"),
    ],
)
def test_showcase_texts_problems(tmp_path: Path, value: str, expected: str | None) -> None:
    (tmp_path / "corpus.txt").write_text("one\ntwo\n", encoding="utf-8")
    path = write_card(
        tmp_path, f"name: x\nmodel: org/x\ncorpus: corpus.txt\nshowcase: 4\nshowcase_texts: {value}"
    )
    if expected is None:
        card = load_card(path)
        assert card.showcase_texts == (3, "a text", 0)
        assert card.extraction_settings()["showcase_texts"] == [3, "a text", 0]
        return
    message = problems_of(path)
    assert "1 problem(s)" in message
    assert expected in message


def test_showcase_texts_need_a_corpus_and_stay_out_of_the_key_when_absent(tmp_path: Path) -> None:
    message = problems_of(write_card(tmp_path, "name: x\nmodel: org/x\nshowcase_texts: [1]"))
    assert "'showcase_texts' needs a 'corpus'" in message
    plain = load_card(write_card(tmp_path, "name: x\nmodel: org/x", name="plain.md"))
    assert "showcase_texts" not in plain.extraction_settings()  # older cache keys unchanged
