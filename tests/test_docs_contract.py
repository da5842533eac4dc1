"""The README and docs/artifacts.md document what the code has, and nothing it lacks.

Card keys (README's card table) and CLI options (README) both ways; the arrays and tables
declared in generator/schema.py and those documented in docs/artifacts.md, both ways (arrays by
full name, by a `PREFIX/*` / NAME pattern, or by bare name under a section headed with its
`prefix/`); every array and table that the tiny BERT and T5 builds write is declared.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import numpy as np
import pytest

from generator.analyze.run import ANALYSES
from generator.artifacts import ArtifactWriter
from generator.card import KEYS
from generator.cli import main
from generator.schema import ARRAYS, TABLES, check_array, check_tables, name_regex

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
ARTIFACTS_DOC = (ROOT / "docs" / "artifacts.md").read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """Return the text under a `## heading` up to the next `## `."""
    start = text.index(f"## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def first_column_names(text: str) -> set[str]:
    """Return the backticked names in the first column of every markdown table row."""
    names = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            names.update(re.findall(r"`([^`]+)`", first))
    return names


def test_readme_card_table_lists_exactly_the_card_keys():
    documented = first_column_names(section(README, "Model cards"))
    assert documented == set(KEYS), (
        f"undocumented: {sorted(set(KEYS) - documented)}; "
        f"documented but not keys: {sorted(documented - set(KEYS))}"
    )


def cli_options() -> set[str]:
    """Every long option of every command (and of the group)."""
    options = set()
    commands = [main, *main.commands.values()]
    for command in commands:
        for param in command.params:
            if isinstance(param, click.Option):
                names = [*param.opts, *param.secondary_opts]
                options.update(o for o in names if o.startswith("--"))
    options.discard("--help")
    return options


def test_readme_names_every_cli_option_and_no_other():
    options = cli_options()
    mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", README))
    missing = options - mentioned
    assert not missing, f"CLI options the README does not mention: {sorted(missing)}"
    usage = section(README, "Usage")
    in_usage = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", usage.split("```")[1]))
    assert in_usage <= options, f"README usage shows unknown options: {sorted(in_usage - options)}"


def documented_arrays() -> list[str]:
    """The array names (or `PREFIX/*` / NAME patterns) of docs/artifacts.md's array tables.

    An array table is one whose header starts `| array |`; a bare name takes the `prefix/` of
    its section heading, and later bare names of a row share the first one's folder.
    """
    names, prefix, in_array_table = [], "", False
    for line in ARTIFACTS_DOC.splitlines():
        if line.startswith("#"):
            found = re.findall(r"`([a-z_]+/)[^`]*`", line)
            prefix = found[0] if found else ""
            continue
        if not line.startswith("|"):
            in_array_table = False
            continue
        if line.startswith("| array |"):
            in_array_table = True
        if not (in_array_table and line.startswith("| `")):
            continue
        row_prefix, first = prefix, None
        for name in re.findall(r"`([^`]+)`", line.split("|")[1]):
            if name.startswith("_") and first:  # `weights/embedding_sample_ids`, `_tokens`
                name = first.rsplit("_", 1)[0] + name
            full = name if "/" in name else row_prefix + name
            if "/" in name:  # later bare names of the row share the first one's folder
                row_prefix, first = name.rsplit("/", 1)[0] + "/", name
            names.append(full)
    return names


def documented_tables() -> set[str]:
    """The names in the first column of docs/artifacts.md's `| table |` tables."""
    names, in_table = set(), False
    for line in ARTIFACTS_DOC.splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        if line.startswith("| table |"):
            in_table = True
        elif in_table and line.startswith("| `"):
            names.update(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return names


def test_schema_and_docs_list_the_same_arrays():
    documented = documented_arrays()
    assert len(documented) > 50, "the parser found no array tables in docs/artifacts.md"
    undeclared = [name for name in documented if not any(a.regex.fullmatch(name) for a in ARRAYS)]
    assert not undeclared, f"documented arrays not declared in generator/schema.py: {undeclared}"
    patterns = [name_regex(name) for name in documented]
    undocumented = [a.pattern for a in ARRAYS if not any(p.fullmatch(a.pattern) for p in patterns)]
    assert not undocumented, (
        f"arrays of generator/schema.py missing from docs/artifacts.md: {undocumented}"
    )


def test_schema_and_docs_list_the_same_tables():
    declared = {table.name for table in TABLES}
    documented = documented_tables()
    assert documented - declared == set(), (
        f"documented tables not declared: {sorted(documented - declared)}"
    )
    mentioned = set(re.findall(r"`([a-z_]+)`", ARTIFACTS_DOC))
    assert declared - mentioned == set(), (
        f"declared tables missing from docs/artifacts.md: {sorted(declared - mentioned)}"
    )


def test_schema_declarations_are_well_formed():
    analyses = set(ANALYSES)
    for array in ARRAYS:
        assert (ROOT / "generator" / "extract" / f"{array.producer}.py").is_file(), array
        assert array.dtype in ("store", "str", "int", "int32", "int64", "float32", "float64")
    assert {table.analysis for table in TABLES} <= analyses
    assert len({a.pattern for a in ARRAYS}) == len(ARRAYS)
    assert len({t.name for t in TABLES}) == len(TABLES)


def test_undeclared_or_misshapen_arrays_are_refused(tmp_path):
    writer = ArtifactWriter(tmp_path)
    with pytest.raises(ValueError, match=r"not declared: add an Array\(\.\.\.\) line .*schema"):
        writer.write_array("showcase/made_up", np.zeros(3, np.float32), ("example",))
    with pytest.raises(ValueError, match="declares 'example token'"):
        writer.write_array("showcase/input_ids", np.zeros(3, np.int32), ("example",))
    with pytest.raises(ValueError, match="declares int32"):
        writer.write_array("showcase/input_ids", np.zeros((1, 3), np.float32), ("example", "token"))
    writer.write_array(
        "checkpoints/epoch-1/corpus/pooled_mean",
        np.zeros((1, 2, 3), np.float16),
        ("text", "layer", "d_model"),
    )
    with pytest.raises(ValueError, match="undeclared tables"):
        check_tables("corpus", ["corpus_facts", "made_up_table"])
    check_tables("corpus", ["corpus_facts"])


@pytest.fixture(scope="module")
def built(tiny_build, t5_build):
    """(manifest, analysis index) of each tiny build."""
    out = []
    for _, _, artifacts in (tiny_build, t5_build):
        folder = next(p for p in artifacts.iterdir() if (p / "manifest.json").is_file())
        manifest = json.loads((folder / "manifest.json").read_text())
        index = json.loads((folder / "analyses" / "index.json").read_text())
        out.append((manifest, index))
    return out


def test_every_array_of_the_tiny_builds_is_declared(built):
    for manifest, _ in built:
        for name, entry in manifest["arrays"].items():
            check_array(name, tuple(entry["axes"]), entry["dtype"])


def test_every_table_of_the_tiny_builds_is_declared(built):
    declared = {table.name for table in TABLES}
    made = {t for _, index in built for t in index["tables"]}
    assert made - declared == set(), f"undeclared tables: {sorted(made - declared)}"


def test_every_manifest_key_is_documented(built):
    documented = first_column_names(section(ARTIFACTS_DOC, "manifest.json"))
    documented = {n for names in documented for n in re.split(r",\s*", names)}
    documented |= set(re.findall(r'manifest\["([a-z_]+)"\]', ARTIFACTS_DOC))
    keys = {key for manifest, _ in built for key in manifest}
    assert keys <= documented, (
        f"manifest keys missing from docs/artifacts.md: {sorted(keys - documented)}"
    )
