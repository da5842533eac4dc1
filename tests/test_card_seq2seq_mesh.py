"""Card keys of encoder-decoder targets (target, target_field, max_target_length) and mesh."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from generator.card import load_card
from generator.errors import CardError
from generator.extract.sharding import MeshShape


def card(tmp_path: Path, corpus: str = "data.jsonl", **settings) -> Path:
    (tmp_path / "model").mkdir(exist_ok=True)
    (tmp_path / corpus).write_text('{"text": "a", "summary": "b"}\n')
    front = {"name": "x", "model": "model", "corpus": corpus, **settings}
    path = tmp_path / "card.md"
    path.write_text(f"---\n{yaml.safe_dump(front)}---\n", encoding="utf-8")
    return path


def problems(path: Path) -> str:
    with pytest.raises(CardError) as info:
        load_card(path)
    assert "\n" not in info.value.message
    return info.value.message


def test_defaults(tmp_path):
    loaded = load_card(card(tmp_path))
    assert loaded.target_field is None and loaded.target is None
    assert loaded.target_mode() == "greedy" and loaded.max_target_length == 32
    assert loaded.mesh is None


def test_target_field_implies_field_targets(tmp_path):
    loaded = load_card(card(tmp_path, target_field="summary", max_target_length=16))
    assert loaded.target_mode() == "field" and loaded.max_target_length == 16
    explicit = load_card(card(tmp_path, target_field="summary", target="field"))
    assert explicit.target_mode() == "field"
    assert load_card(card(tmp_path, target="greedy")).target_mode() == "greedy"


def test_target_settings_change_the_extraction_hash(tmp_path):
    greedy = load_card(card(tmp_path)).extraction_settings()
    field = load_card(card(tmp_path, target_field="summary")).extraction_settings()
    shorter = load_card(card(tmp_path, max_target_length=8)).extraction_settings()
    assert len({str(greedy), str(field), str(shorter)}) == 3


def test_mesh_is_parsed_and_does_not_change_the_extraction_hash(tmp_path):
    plain = load_card(card(tmp_path))
    meshed = load_card(card(tmp_path, mesh={"data": 2, "model": 4}))
    assert meshed.mesh == MeshShape(2, 4)
    assert load_card(card(tmp_path, mesh={"model": 2})).mesh == MeshShape(None, 2)
    assert plain.extraction_settings() == meshed.extraction_settings()


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"target": "beam"}, "'target' must be one of greedy, field"),
        ({"target": "field"}, "'target: field' needs 'target_field'"),
        ({"target": "greedy", "target_field": "summary"}, "'target: greedy' contradicts"),
        ({"target_field": 3}, "'target_field' must be a string"),
        ({"max_target_length": 0}, "'max_target_length' must be from 1 to 512"),
        ({"max_target_length": "32"}, "'max_target_length' must be an integer"),
        ({"mesh": 8}, "'mesh' must be a mapping like {data: 4, model: 2}"),
        ({"mesh": {"data": 0}}, "'mesh.data' must be a positive integer"),
        ({"mesh": {"data": True}}, "'mesh.data' must be a positive integer"),
        ({"mesh": {"pipeline": 2}}, "'mesh' has unknown axis 'pipeline'"),
        ({"mesh": {}}, "'mesh' must be a mapping"),
        ({"target_fild": "summary"}, "did you mean 'target_field'?"),
    ],
)
def test_bad_values_are_reported(tmp_path, settings, expected):
    assert expected in problems(card(tmp_path, **settings))


def test_target_field_needs_fields_in_the_corpus(tmp_path):
    message = problems(card(tmp_path, corpus="data.txt", target_field="summary"))
    assert "'target_field' needs a .jsonl or .csv corpus" in message


def test_all_problems_together(tmp_path):
    message = problems(card(tmp_path, target="field", max_target_length=999, mesh={"x": 1}))
    assert message.count(";") >= 2 and "3 problem(s)" in message
