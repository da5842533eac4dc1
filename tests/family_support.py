"""The family builds: one tiny checkpoint of every family, built once per test run.

`tests/test_family_builds.py` checks their artifacts and pages; `tests/test_attributions_build.py`
checks their attributions. The session fixture `family_builds` (conftest.py) builds them.
"""

from __future__ import annotations

import json
from pathlib import Path

from cards import FIXTURES, small_corpus, write_card

# One tiny checkpoint per family and variant: (fixture, is a decoder).
FAMILY_FIXTURES = {
    "tiny-gpt2": True,
    "tiny-llama": True,  # grouped-query attention, untied head
    "tiny-mistral": True,  # sliding window on every layer
    "tiny-qwen2": True,  # q/k/v bias, sliding window on layer 1
    "tiny-bert-mlm": False,
    "tiny-roberta-mlm": False,
    "tiny-xlm-roberta-mlm": False,
    "tiny-bert-cls": False,
    "tiny-distilbert-cls": False,
    "tiny-electra": False,
}

# Cards that also exercise reduced precision (forward pass and stored arrays).
PRECISION = {"tiny-qwen2": {"dtype": "bfloat16", "store_dtype": "bfloat16"}}

TEXTS = [
    "the cat sat on the mat",
    "a dog runs in the park every morning",
    "she reads a book by the window when it rains",
    "he drinks coffee before work",
    "we walked to the market to buy apples bread and milk",
    "the children played in the garden until the sun went down",
    "birds sing in the trees near the river",
    "the small boat moved slowly across the lake",
    "please open the door",
    "the train leaves the station at seven in the evening",
    "my sister works at the hospital as a nurse",
    "the moon and the stars shine in the dark sky",
    "the farmer grows wheat corn and potatoes",
    "it was a long day",
    "our cat sleeps near the fire",
    "the library opens at nine",
]
LABELS = ["home", "outdoors"] * 8


def family_card(folder: Path, fixture: str, corpus: Path, **settings) -> Path:
    """Write a small card for a family fixture (`settings` add to or override its defaults)."""
    front = {
        "prose": f"Tiny random {fixture} for tests.",
        "name": fixture,
        "title": fixture,
        "model": str(FIXTURES / fixture),
        "corpus": str(corpus),
        "split_field": None,
        "max_length": 32,
        "showcase": 3,
    }
    return write_card(folder, **{**front, **settings})


def build_families(root: Path) -> tuple[Path, Path, Path]:
    """Build every family card into `root`: returns (site, artifacts, file of the notes echoed)."""
    from generator.build import build_cards
    from generator.card import load_card

    corpus = small_corpus(root / "corpus", TEXTS, LABELS)
    cards = [
        load_card(family_card(root / "cards", name, corpus, **PRECISION.get(name, {})))
        for name in FAMILY_FIXTURES
    ]
    notes: list[str] = []
    out, artifacts = root / "site", root / "artifacts"
    build_cards(cards, out, artifacts, strict=True, progress=False, notify=notes.append)
    notes_file = root / "notes.json"
    notes_file.write_text(json.dumps(notes), encoding="utf-8")
    return out, artifacts, notes_file
