"""The README and docs/artifacts.md document what the code has, and nothing it lacks.

Card keys (README's card table) and CLI options (README) both ways; every array and table that
the tiny BERT and T5 builds write must be documented in docs/artifacts.md (arrays by full name,
by a `PREFIX/*` / NAME pattern, or by bare name under a section headed with its `prefix/`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest

from generator.card import KEYS
from generator.cli import main

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


def documented_array_patterns() -> list[re.Pattern]:
    """Regexes of the array names docs/artifacts.md documents."""
    patterns, prefix = [], ""
    for line in ARTIFACTS_DOC.splitlines():
        if line.startswith("#"):
            found = re.findall(r"`([a-z_]+/)[^`]*`", line)
            prefix = found[0] if found else ""
            continue
        if not line.startswith("| `"):
            continue
        row_prefix, first = prefix, None
        for name in re.findall(r"`([^`]+)`", line.split("|")[1]):
            if name.startswith("_") and first:  # `weights/embedding_sample_ids`, `_tokens`
                name = first.rsplit("_", 1)[0] + name
            full = name if "/" in name else row_prefix + name
            if "/" in name:  # later bare names of the row share the first one's folder
                row_prefix, first = name.rsplit("/", 1)[0] + "/", name
            if not re.fullmatch(r"[A-Za-z0-9_*/.-]+", full):
                continue
            regex = "".join(
                "[^/]+" if part in ("*",) or part.isupper() else re.escape(part)
                for part in re.split(r"(\*|[A-Z]+)", full)
                if part
            )
            patterns.append(re.compile(regex))
    return patterns


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


def test_every_array_is_documented(built):
    patterns = documented_array_patterns()
    missing = sorted(
        {
            name
            for manifest, _ in built
            for name in manifest["arrays"]
            if not any(p.fullmatch(name) for p in patterns)
        }
    )
    assert not missing, f"arrays missing from docs/artifacts.md: {missing}"


def test_every_table_is_documented(built):
    documented = set(re.findall(r"`([a-z_]+)`", ARTIFACTS_DOC))
    missing = sorted({t for _, index in built for t in index["tables"]} - documented)
    assert not missing, f"analysis tables missing from docs/artifacts.md: {missing}"


def test_every_manifest_key_is_documented(built):
    documented = first_column_names(section(ARTIFACTS_DOC, "manifest.json"))
    documented = {n for names in documented for n in re.split(r",\s*", names)}
    documented |= set(re.findall(r'manifest\["([a-z_]+)"\]', ARTIFACTS_DOC))
    keys = {key for manifest, _ in built for key in manifest}
    assert keys <= documented, (
        f"manifest keys missing from docs/artifacts.md: {sorted(keys - documented)}"
    )
