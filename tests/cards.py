"""Write model cards for tests, pointing at the tiny fixture checkpoint by absolute path."""

from __future__ import annotations

from pathlib import Path

import yaml

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY_BERT = FIXTURES / "tiny-bert"
TINY_T5 = FIXTURES / "tiny-t5-v1_1"
# Llama-like decoder: grouped-query attention, RoPE, an untied LM head (its own unembedding)
TINY_DECODER = FIXTURES / "tiny-llama"
# 3 layers over 2 groups of 2 shared blocks (6 block applications), MLM + sentence-order heads
TINY_ALBERT = FIXTURES / "tiny-albert-pretraining"
DEMO_CORPUS = "package:generator/data/demo_corpus.jsonl"
# The first 15 texts of each label of the demo corpus (12 train, 3 validation): tiny builds
# stay fast while keeping labels and both splits. The default card still uses the full corpus.
TEST_CORPUS = str(FIXTURES / "corpus-small.jsonl")
DEFAULT_CARD = Path(__file__).resolve().parents[1] / "model_cards" / "all-minilm-l6-v2.md"
# The tiny build's `showcase_texts`: a text the corpus does not hold, a train row by id and a
# corpus text (row 1); the showcase's fourth example is chosen as usual.
OUTSIDE_TEXT = "A lighthouse keeper counted the ships that passed the cape at dawn."
TINY_SHOWCASE_TEXTS = [
    OUTSIDE_TEXT,
    7,
    "The bank raised its mortgage rate by a quarter point on Monday.",
]


def write_card(folder: Path, prose: str = "A tiny random BERT for tests.", **settings) -> Path:
    """Write `folder/NAME.md` with the tiny model and demo corpus unless `settings` override them."""
    front = {
        "name": "tiny-bert",
        "title": "Tiny BERT",
        "model": str(TINY_BERT),
        "corpus": TEST_CORPUS,
        "label_field": "label",
        "split_field": "split",
        "max_length": 64,
        "showcase": 4,
    }
    front.update(settings)
    front = {key: value for key, value in front.items() if value is not None}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{front['name']}.md"
    path.write_text(
        f"---\n{yaml.safe_dump(front, sort_keys=False)}---\n{prose}\n", encoding="utf-8"
    )
    return path


def small_corpus(folder: Path, texts: list[str], labels: list[str] | None = None) -> Path:
    """Write a .jsonl corpus and return its path."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "corpus.jsonl"
    rows = [{"text": t, **({"label": labels[i]} if labels else {})} for i, t in enumerate(texts)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_t5_card(folder: Path, **settings) -> Path:
    """Write a card for the tiny T5 v1.1 (greedy decoder targets of up to 12 tokens)."""
    front = {"name": "tiny-t5", "title": "Tiny T5", "model": str(TINY_T5), "max_target_length": 12}
    front.update(settings)
    return write_card(folder, prose="A tiny random T5 for tests.", **front)


def write_albert_card(folder: Path, **settings) -> Path:
    """Write a card for the tiny ALBERT (shared blocks, masked-LM task)."""
    front = {"name": "tiny-albert", "title": "Tiny ALBERT", "model": str(TINY_ALBERT)}
    front.update({"task": "masked-lm", **settings})
    return write_card(folder, prose="A tiny random ALBERT for tests.", **front)


def write_decoder_card(folder: Path, **settings) -> Path:
    """Write a card for the tiny Llama decoder (causal-LM task, untied head)."""
    front = {"name": "tiny-llama", "title": "Tiny Llama", "model": str(TINY_DECODER)}
    front.update({"task": "causal-lm", **settings})
    return write_card(folder, prose="A tiny random Llama decoder for tests.", **front)
