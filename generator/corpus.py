"""Load a text corpus (`.txt`, `.jsonl`, `.csv`) into texts, optional labels and optional splits.

Every problem with the file raises `CorpusError` with one line naming the problem and the fix.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from generator.errors import CorpusError
from generator.paths import is_package_path, resolve_package_path
from generator.textcheck import unusable_character

DEMO_CORPUS_SPEC = "package:generator/data/demo_corpus.jsonl"
SUPPORTED_SUFFIXES = (".txt", ".jsonl", ".csv")
SPLIT_NAMES = ("train", "validation", "test")
_BOM = b"\xef\xbb\xbf"

# A record: (line number where it starts, field name -> raw value).
_Record = tuple[int, dict[str, object]]


@dataclass(frozen=True)
class Corpus:
    """Texts in file order, with labels and splits aligned to them (None when not requested)."""

    texts: tuple[str, ...]
    labels: tuple[str, ...] | None
    splits: tuple[str, ...] | None
    source: str
    sha256: str

    def __len__(self) -> int:
        return len(self.texts)

    def label_counts(self) -> dict[str, int]:
        """Return the number of texts per label, sorted by label; {} when unlabeled."""
        if self.labels is None:
            return {}
        return dict(sorted(Counter(self.labels).items()))


def load_corpus(
    path: str | Path,
    text_field: str = "text",
    label_field: str | None = None,
    split_field: str | None = None,
) -> Corpus:
    """Load a corpus file.

    Args:
        path: a `.txt` (one text per line), `.jsonl` (one JSON object per line) or `.csv`
            (header row) file, or a `package:MODULE/SUBPATH` spec naming one inside a package.
        text_field: the JSON key or CSV column holding the text (ignored for `.txt`).
        label_field: the key or column holding each text's label; None for an unlabeled corpus.
        split_field: the key or column holding each text's split (train, validation or test).

    Returns:
        The corpus, with `sha256` the digest of the file's bytes.

    Raises:
        CorpusError: the file is missing, unreadable, empty or malformed.
    """
    source = str(path)
    file = _resolve(source)
    name = file.name
    suffix = file.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise CorpusError(
            f"corpus {name}: unsupported format '{file.suffix or '(no extension)'}'; "
            f"use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if suffix == ".txt" and (label_field or split_field):
        raise CorpusError(
            f"corpus {name}: a .txt corpus has one text per line and no fields; "
            "drop label_field/split_field or use a .jsonl or .csv corpus"
        )
    raw = file.read_bytes()
    text = _decode(raw, name)
    if suffix == ".txt":
        records = [(n, {text_field: line}) for n, line in _lines(text)]
    elif suffix == ".jsonl":
        records = list(_jsonl_records(text, name))
    else:
        records = _csv_records(text, name, [f for f in (text_field, label_field, split_field) if f])
    if not records:
        raise CorpusError(f"corpus {name} has no texts; add at least one text to it")
    texts = tuple(_text(rec, line, text_field, name) for line, rec in records)
    labels = _column(records, label_field, "label", name) if label_field else None
    splits = _column(records, split_field, "split", name) if split_field else None
    if splits is not None:
        unknown = sorted(set(splits) - set(SPLIT_NAMES))
        if unknown:
            raise CorpusError(
                f"corpus {name}: split field '{split_field}' has values "
                f"{', '.join(repr(u) for u in unknown)}; use only {', '.join(SPLIT_NAMES)}"
            )
    return Corpus(texts, labels, splits, source, hashlib.sha256(raw).hexdigest())


def _resolve(source: str) -> Path:
    """Turn a local path or `package:` spec into an existing file path."""
    if is_package_path(source):
        try:
            file = resolve_package_path(source)
        except FileNotFoundError as exc:
            raise CorpusError(f"corpus {source} not found: {exc}") from None
    else:
        file = Path(source).expanduser()
        if not file.exists():
            raise CorpusError(f"corpus file {source} not found; check the card's corpus path")
    if not file.is_file():
        raise CorpusError(f"corpus {source} is not a file; point corpus at a .txt, .jsonl or .csv")
    return file


def _decode(raw: bytes, name: str) -> str:
    """Decode strict UTF-8 (an optional BOM is dropped), naming the first bad byte or NUL."""
    skip = len(_BOM) if raw.startswith(_BOM) else 0
    try:
        text = raw[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = skip + exc.start
        line = raw[:offset].count(b"\n") + 1
        raise CorpusError(
            f"corpus {name} is not UTF-8: byte 0x{raw[offset]:02x} at line {line} "
            f"(byte offset {offset}); re-save the file as UTF-8"
        ) from None
    if "\x00" in text:  # UTF-16 files with ASCII content decode as UTF-8 with a NUL per char
        offset = raw.index(b"\x00")
        line = raw[:offset].count(b"\n") + 1
        raise CorpusError(
            f"corpus {name} has a NUL character at line {line} (byte offset {offset}); "
            "it may be UTF-16 or binary: re-save it as UTF-8 text"
        )
    return text


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield (line number, line) for non-blank lines, without the line terminator."""
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if line.strip():
            yield number, line


def _jsonl_records(text: str, name: str) -> Iterator[_Record]:
    """Yield one JSON object per non-blank line."""
    for number, line in _lines(text):
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(
                f"corpus {name}: line {number} is not valid JSON: {exc.msg} (column {exc.colno}); "
                "write one JSON object per line"
            ) from None
        if not isinstance(value, dict):
            raise CorpusError(
                f"corpus {name}: line {number} is a JSON {type(value).__name__}, not an object; "
                'write one object per line, e.g. {"text": "..."}'
            )
        yield number, value


def _csv_records(text: str, name: str, needed: list[str]) -> list[_Record]:
    """Read a CSV with a header row into records, checking the needed columns exist."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    records: list[_Record] = []
    start = 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = row
                missing = [f for f in needed if f not in header]
                if missing:
                    raise CorpusError(
                        f"corpus {name} has no column {', '.join(repr(m) for m in missing)}; "
                        f"its columns are {', '.join(repr(h) for h in header)}; "
                        "set text_field/label_field/split_field to one of them"
                    )
                continue
            records.append((line, dict(zip(header, row, strict=False))))
    except csv.Error as exc:
        raise CorpusError(
            f"corpus {name}: line {reader.line_num} is not valid CSV: {exc}; fix its quoting"
        ) from None
    return records


def _text(record: dict[str, object], line: int, field: str, name: str) -> str:
    """Return the record's text, or explain why it has none."""
    if field not in record:
        keys = ", ".join(repr(k) for k in list(record)[:10])
        raise CorpusError(
            f"corpus {name}: line {line} has no '{field}' field (it has {keys or 'no keys'}); "
            "set text_field to the key that holds the text"
        )
    value = record[field]
    if not isinstance(value, str):
        raise CorpusError(
            f"corpus {name}: line {line}: '{field}' is a {type(value).__name__}, not a string; "
            "store each text as a JSON string"
        )
    if not value.strip():
        raise CorpusError(
            f"corpus {name}: line {line}: '{field}' is empty; remove the line or give it a text"
        )
    bad = unusable_character(value)
    if bad:
        raise CorpusError(f"corpus {name}: line {line}: '{field}' has {bad}; remove it")
    return value


def _column(records: list[_Record], field: str, kind: str, name: str) -> tuple[str, ...]:
    """Return one label (or split) per record as strings, requiring every record to have one."""
    values: list[str] = []
    missing: list[int] = []
    for line, record in records:
        value = record.get(field)
        if isinstance(value, (dict, list)):
            raise CorpusError(
                f"corpus {name}: line {line}: {kind} field '{field}' is a JSON "
                f"{type(value).__name__}; use a string or number"
            )
        value = "" if value is None else str(value).strip()
        bad = unusable_character(value)
        if bad:
            raise CorpusError(
                f"corpus {name}: line {line}: {kind} field '{field}' has {bad}; remove it"
            )
        if not value:
            missing.append(line)
        values.append(value)
    if missing:
        raise CorpusError(
            f"corpus {name}: {kind} field '{field}' is missing or empty on {len(missing)} of "
            f"{len(records)} rows, first at line {missing[0]}; "
            f"{kind} every row or drop {kind}_field"
        )
    return tuple(values)
