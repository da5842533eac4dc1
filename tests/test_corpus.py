"""Tests for generator.corpus: formats, errors, round-trips and the bundled demo corpus."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.corpus import DEMO_CORPUS_SPEC, Corpus, load_corpus
from generator.errors import CorpusError


def write_jsonl(path: Path, rows: list[object]) -> Path:
    """Write one JSON value per line."""
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    """Write a CSV file with a header row."""
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def error_of(path: Path | str, **kwargs: object) -> str:
    """Return the CorpusError message raised by loading `path`."""
    with pytest.raises(CorpusError) as info:
        load_corpus(path, **kwargs)
    message = info.value.message
    assert "\n" not in message
    return message


# Formats ------------------------------------------------------------------------------------


def test_txt_loads_lines_skipping_blanks(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_bytes(b"first text\r\n\n   \n  second,  kept as is \nthird")
    corpus = load_corpus(path)
    assert corpus.texts == ("first text", "  second,  kept as is ", "third")
    assert corpus.labels is None and corpus.splits is None
    assert corpus.label_counts() == {}
    assert len(corpus) == 3
    assert corpus.source == str(path)
    assert corpus.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_jsonl_loads_texts_labels_splits(tmp_path: Path) -> None:
    rows = [
        {"body": "a", "topic": "x", "part": "train"},
        {"body": "b", "topic": 2, "part": "validation"},
        {"body": "c", "topic": "x", "part": "test", "extra": [1]},
    ]
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    path.write_text(path.read_text("utf-8") + "\n\n", "utf-8")
    corpus = load_corpus(path, text_field="body", label_field="topic", split_field="part")
    assert corpus.texts == ("a", "b", "c")
    assert corpus.labels == ("x", "2", "x")
    assert corpus.splits == ("train", "validation", "test")
    assert corpus.label_counts() == {"2": 1, "x": 2}


def test_jsonl_without_label_field_is_unlabeled(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"text": "a", "label": "x"}])
    corpus = load_corpus(path)
    assert corpus.labels is None and corpus.splits is None


def test_csv_loads_with_quoting(tmp_path: Path) -> None:
    rows = [["one, two", "b", "train"], ['say "hi"\nthen go', "a", "test"]]
    path = write_csv(tmp_path / "c.csv", ["text", "label", "split"], rows)
    corpus = load_corpus(path, label_field="label", split_field="split")
    assert corpus.texts == ("one, two", 'say "hi"\nthen go')
    assert corpus.labels == ("b", "a")
    assert corpus.splits == ("train", "test")
    assert corpus.label_counts() == {"a": 1, "b": 1}


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"\xef\xbb\xbftext,label\nhello,x\n")
    corpus = load_corpus(path, label_field="label")
    assert corpus.texts == ("hello",) and corpus.labels == ("x",)
    assert corpus.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_package_spec_loads_bundled_corpus() -> None:
    corpus = load_corpus(DEMO_CORPUS_SPEC, label_field="label", split_field="split")
    assert isinstance(corpus, Corpus)
    assert corpus.source == DEMO_CORPUS_SPEC
    assert len(corpus) >= 400


def test_corpus_is_frozen(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_text("a\n", "utf-8")
    corpus = load_corpus(path)
    with pytest.raises(AttributeError):
        corpus.texts = ()  # type: ignore[misc]


# Errors -------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    message = error_of(tmp_path / "nope.jsonl")
    assert "nope.jsonl" in message and "not found" in message


def test_missing_package_file() -> None:
    message = error_of("package:generator/data/nope.jsonl")
    assert "nope.jsonl" in message and "not found" in message


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "dir.txt"
    folder.mkdir()
    assert "not a file" in error_of(folder)


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "c.tsv"
    path.write_text("a\tb\n", "utf-8")
    message = error_of(path)
    assert "c.tsv" in message and "'.tsv'" in message
    assert ".txt" in message and ".jsonl" in message and ".csv" in message


def test_txt_rejects_label_and_split_fields(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_text("a\n", "utf-8")
    assert "label_field" in error_of(path, label_field="label")
    assert "c.txt" in error_of(path, split_field="split")


@pytest.mark.parametrize("content", ["", "\n  \n\n"])
@pytest.mark.parametrize("suffix", [".txt", ".jsonl", ".csv"])
def test_empty_corpus(tmp_path: Path, content: str, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_text(content, "utf-8")
    message = error_of(path)
    assert f"empty{suffix}" in message and "no texts" in message


def test_csv_with_header_only_is_empty(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", ["text"], [])
    assert "no texts" in error_of(path)


def test_not_utf8_reports_line_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_bytes(b"ok\nfine\nbad \xff here\n")
    message = error_of(path)
    assert "not UTF-8" in message and "0xff" in message
    assert "line 3" in message and "byte offset 12" in message


def test_not_utf8_offset_counts_bom(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_bytes(b"\xef\xbb\xbfab\xe9\n")
    assert "line 1" in error_of(path) and "byte offset 5" in error_of(path)


def test_jsonl_broken_line(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "a"}\n\n{"text": "b",\n', "utf-8")
    message = error_of(path)
    assert "c.jsonl" in message and "line 3 is not valid JSON" in message


def test_jsonl_line_not_an_object(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"text": "a"}, ["text", "b"]])
    message = error_of(path)
    assert "line 2" in message and "list" in message and "not an object" in message


def test_jsonl_missing_text_field_names_keys(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"text": "a"}, {"body": "b", "topic": "x"}])
    message = error_of(path)
    assert "line 2" in message and "'text'" in message
    assert "'body'" in message and "'topic'" in message and "text_field" in message


@pytest.mark.parametrize("value", [None, 3, ["a"], {"a": 1}])
def test_jsonl_text_not_a_string(tmp_path: Path, value: object) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"text": "a"}, {"text": "b"}, {"text": value}])
    message = error_of(path)
    assert "line 3" in message and "not a string" in message


@pytest.mark.parametrize("value", ["", "   ", "\n"])
def test_jsonl_empty_text(tmp_path: Path, value: str) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"text": value}])
    message = error_of(path)
    assert "line 1" in message and "empty" in message


def test_csv_empty_text(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", ["text", "label"], [["a", "x"], ["", "y"]])
    message = error_of(path)
    assert "line 3" in message and "empty" in message


def test_csv_without_named_column_lists_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", ["sentence", "topic"], [["a", "x"]])
    message = error_of(path)
    assert "c.csv" in message and "'text'" in message
    assert "'sentence'" in message and "'topic'" in message
    message = error_of(path, text_field="sentence", label_field="label")
    assert "'label'" in message and "'topic'" in message


def test_labels_on_only_some_rows(tmp_path: Path) -> None:
    rows: list[object] = [{"text": f"t{i}", "label": "x"} for i in range(40)]
    rows[6] = {"text": "t6"}
    rows[20] = {"text": "t20", "label": ""}
    rows[30] = {"text": "t30", "label": None}
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    message = error_of(path, label_field="label")
    assert message.endswith(
        "label field 'label' is missing or empty on 3 of 40 rows, first at line 7; "
        "label every row or drop label_field"
    )


def test_csv_labels_on_only_some_rows(tmp_path: Path) -> None:
    rows = [["a", "x"], ["b", ""], ["c", " "]]
    path = write_csv(tmp_path / "c.csv", ["text", "label"], rows)
    message = error_of(path, label_field="label")
    assert "2 of 3 rows, first at line 3" in message


def test_splits_on_only_some_rows(tmp_path: Path) -> None:
    rows = [{"text": "a", "split": "train"}, {"text": "b"}]
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    message = error_of(path, split_field="split")
    assert "split field 'split' is missing or empty on 1 of 2 rows, first at line 2" in message
    assert "drop split_field" in message


def test_unknown_split_values(tmp_path: Path) -> None:
    rows = [
        {"text": "a", "split": "train"},
        {"text": "b", "split": "dev"},
        {"text": "c", "split": "eval"},
        {"text": "d", "split": "dev"},
    ]
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    message = error_of(path, split_field="split")
    assert "'dev', 'eval'" in message and "train, validation, test" in message


def test_label_that_is_a_list(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"text": "a", "label": ["x"]}])
    message = error_of(path, label_field="label")
    assert "line 1" in message and "list" in message


# Round-trips --------------------------------------------------------------------------------

no_nul = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))  # NUL: refused
nonblank_texts = st.lists(
    st.text(alphabet=no_nul, min_size=1, max_size=40).filter(lambda t: t.strip()),
    min_size=1,
    max_size=8,
)
line_texts = st.lists(
    st.text(
        alphabet=st.characters(blacklist_characters="\n\r\x00", blacklist_categories=("Cs",)),
        min_size=1,
        max_size=40,
    ).filter(lambda t: t.strip()),
    min_size=1,
    max_size=8,
)
labels = st.sampled_from(["a", "b, c", 'say "x"', "😀", "ünï"])
splits = st.sampled_from(["train", "validation", "test"])
suppress = [HealthCheck.function_scoped_fixture]


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=suppress)
@given(texts=nonblank_texts, data=st.data())
def test_jsonl_round_trip(tmp_path: Path, texts: list[str], data: st.DataObject) -> None:
    ls = [data.draw(labels) for _ in texts]
    ss = [data.draw(splits) for _ in texts]
    rows = [{"text": t, "label": lab, "split": s} for t, lab, s in zip(texts, ls, ss, strict=True)]
    path = write_jsonl(tmp_path / "rt.jsonl", rows)
    corpus = load_corpus(path, label_field="label", split_field="split")
    assert corpus.texts == tuple(texts)
    assert corpus.labels == tuple(ls) and corpus.splits == tuple(ss)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=suppress)
@given(texts=nonblank_texts, data=st.data())
def test_csv_round_trip(tmp_path: Path, texts: list[str], data: st.DataObject) -> None:
    ls = [data.draw(labels) for _ in texts]
    rows = [list(r) for r in zip(texts, ls, strict=True)]
    path = write_csv(tmp_path / "rt.csv", ["text", "label"], rows)
    corpus = load_corpus(path, label_field="label")
    assert corpus.texts == tuple(texts)
    assert corpus.labels == tuple(ls)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=suppress)
@given(texts=line_texts)
def test_txt_round_trip(tmp_path: Path, texts: list[str]) -> None:
    path = tmp_path / "rt.txt"
    path.write_bytes("\n".join(texts).encode("utf-8"))
    assert load_corpus(path).texts == tuple(texts)


# The bundled demo corpus --------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> Corpus:
    return load_corpus(DEMO_CORPUS_SPEC, label_field="label", split_field="split")


def test_demo_size_and_labels(demo: Corpus) -> None:
    assert len(demo) >= 400
    counts = demo.label_counts()
    assert len(counts) >= 4
    assert max(counts.values()) <= 1.5 * min(counts.values())


def test_demo_splits_per_label(demo: Corpus) -> None:
    assert demo.labels is not None and demo.splits is not None
    pairs = Counter(zip(demo.labels, demo.splits, strict=True))
    for label, total in demo.label_counts().items():
        assert pairs[(label, "train")] > 0 and pairs[(label, "validation")] > 0
        assert 0.1 <= pairs[(label, "validation")] / total <= 0.3


def test_demo_texts_unique_and_short(demo: Corpus) -> None:
    assert len(set(demo.texts)) == len(demo.texts)
    assert len({t.lower().strip() for t in demo.texts}) == len(demo.texts)
    for text in demo.texts:
        assert 5 <= len(text.split()) <= 25, text


def test_demo_not_separable_by_one_keyword(demo: Corpus) -> None:
    """No rule "word present -> label" has both recall >= 0.35 and precision >= 0.8."""
    assert demo.labels is not None
    docs = [set(re.findall(r"[a-z0-9]+(?:'[a-z]+)?", t.lower())) for t in demo.texts]
    doc_freq = Counter(w for words in docs for w in words)
    violations = []
    for label, size in demo.label_counts().items():
        in_label = [words for words, lab in zip(docs, demo.labels, strict=True) if lab == label]
        hits = Counter(w for words in in_label for w in words)
        for word, hit in hits.items():
            recall, precision = hit / size, hit / doc_freq[word]
            if recall >= 0.35 and precision >= 0.8:
                violations.append((label, word, round(recall, 2), round(precision, 2)))
    assert violations == []
