"""Tiny-but-wide builds for the legibility checks of issue #16: many layers, heads and tokens.

A random-init BERT of 24 layers x 16 heads (d_model 64) or of 8 layers x 32 heads (d_model 128),
written at test or screenshot time from our own Flax model (`benchmarks.checkpoints`; never
committed), over a corpus whose texts join JOIN demo sentences, so that every text, and so
every showcase example, is longer than 128 tokens (150-169 with the MiniLM tokenizer).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.checkpoints import make_checkpoint  # noqa: E402
from benchmarks.scaling import scaled_rows, write_card  # noqa: E402

WIDE_KINDS = {"bert-24x16": (24, 16), "bert-8x32": (8, 32)}
MAX_LENGTH = 256  # tokens per text: no text is truncated (a strict build fails on that)
JOIN = 12  # demo sentences per text (~15 tokens each)
TEXTS = 40
TEST_TEXTS = 16
# The test build: the pages whose charts have a layer or head axis, fewer texts and examples.
TEST_SETTINGS = {"showcase": 2, "analyses": ["heads", "weights", "activations"]}


def write_wide_card(folder: Path, kind: str = "bert-24x16", texts: int = TEXTS, **settings) -> Path:
    """Write the checkpoint `kind`, its corpus and card into `folder`; return the card path.

    settings: card keys added to the front matter (e.g. showcase, analyses).
    """
    folder = Path(folder)
    checkpoint = make_checkpoint(kind, folder / "checkpoints" / kind)
    card = write_card(
        folder / "cards", f"wide-{kind}", str(checkpoint), scaled_rows(texts, JOIN), MAX_LENGTH
    )
    if settings:
        _, front, prose = card.read_text(encoding="utf-8").split("---\n", 2)
        front = {**yaml.safe_load(front), **settings}
        card.write_text(f"---\n{yaml.safe_dump(front, sort_keys=False)}---\n{prose}")
    return card
