"""Structure rules a reviewer would otherwise check by eye: short functions where the model and
extraction code lives, and a cache key that holds every card setting extraction reads."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from generator.card import ModelCard

ROOT = Path(__file__).resolve().parents[1]
SHORT_FOLDERS = ("generator/extract", "generator/models")
MAX_LINES = 60

# Card fields that do not change extracted arrays: where the artifacts go (`name`), what the
# pages say (`title`, `prose`), where the card lives (`path`, used in messages), and the device
# mesh (arrays do not depend on it beyond float32 rounding; docs/artifacts.md "Device mesh").
NOT_EXTRACTION = {"path", "name", "title", "prose", "mesh"}


def long_functions(source: str, limit: int = MAX_LINES) -> list[tuple[str, int]]:
    """(qualified name, lines) of every function or method longer than `limit` lines."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = child.end_lineno - child.lineno + 1
                if lines > limit:
                    found.append((prefix + child.name, lines))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(ast.parse(source), "")
    return found


def test_long_functions_are_found():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    source = f"class A:\n    def f(self):\n    {body.replace(chr(10), chr(10) + '    ')}\n"
    assert long_functions(source) == [("A.f", MAX_LINES + 1)]
    assert long_functions(source, limit=MAX_LINES + 1) == []


def test_no_function_over_60_lines_in_extract_and_models():
    found = [
        f"{path.relative_to(ROOT)}: {name} ({lines} lines)"
        for folder in SHORT_FOLDERS
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name, lines in long_functions(path.read_text(encoding="utf-8"))
    ]
    assert not found, f"functions over {MAX_LINES} lines (split them): {found}"


def test_extraction_settings_hold_every_card_field_extraction_reads():
    fields = {field.name for field in dataclasses.fields(ModelCard)}
    # keys that are keyed only when set (so cards without them keep their cache keys): set them
    card = ModelCard(
        path=ROOT / "card.md",
        name="n",
        title="t",
        model="m",
        subfolder="s",
        showcase_texts=(0,),
        head_sample=32,
    )
    keyed = set(card.extraction_settings())
    # `target` is keyed as the resolved target mode; every other field by its own name
    assert fields - NOT_EXTRACTION == keyed, (
        f"card fields outside the cache key: {sorted(fields - NOT_EXTRACTION - keyed)}; "
        f"keys that are no card field: {sorted(keyed - fields)}"
    )


def test_build_options_are_one_keyword_only_frozen_object():
    from generator.options import BuildOptions

    with pytest.raises(TypeError):
        BuildOptions(True)  # keyword-only: a bare flag says nothing
    options = BuildOptions(strict=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.strict = False
    both = BuildOptions.of(options, progress=False)
    assert (both.strict, both.progress, both.force) == (True, False, False)
    assert BuildOptions.of(options) is options
    assert BuildOptions.of(None) == BuildOptions()
    with pytest.raises(TypeError, match="must be a BuildOptions"):
        BuildOptions.of(True)  # the old positional `force`
    with pytest.raises(TypeError, match="stirct"):
        BuildOptions.of(options, stirct=True)
