"""Text and label of each showcase example, whether it is a corpus row or an extra text.

`showcase/index` holds corpus rows; a row past the corpus (n + k) is the k-th of the card's
`showcase_texts` that the corpus does not hold, stored in `showcase/extra_texts` and never part
of a corpus statistic. Such a text has no label, split or corpus-pass values.
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.artifacts import Artifacts


@dataclass(frozen=True)
class ShowcaseText:
    """One showcase example: its row (past the corpus for an extra text), text and label."""

    row: int
    text: str
    label: str
    in_corpus: bool


def showcase_texts(artifacts: Artifacts) -> list[ShowcaseText]:
    """Return the showcase examples in `showcase/index` order, with their texts and labels."""
    texts = artifacts.array("corpus/texts")
    labels = artifacts.array("corpus/labels") if artifacts.has("corpus/labels") else None
    extra = artifacts.array("showcase/extra_texts") if artifacts.has("showcase/extra_texts") else ()
    n = len(texts)
    out = []
    for row in (int(r) for r in artifacts.array("showcase/index")):
        inside = row < n
        out.append(
            ShowcaseText(
                row=row,
                text=str(texts[row] if inside else extra[row - n]),
                label=str(labels[row]) if inside and labels is not None else "",
                in_corpus=inside,
            )
        )
    return out


def showcase_note(artifacts: Artifacts) -> str | None:
    """Return how the card chose the showcase (None without `showcase_texts`)."""
    named = artifacts.manifest.get("showcase")
    if not named:
        return None
    count, outside = named["named"], named["outside_corpus"]
    text = f"the {count} the card names come first, in its order"
    if outside:
        text += (
            f" ({outside} of them not in the corpus: captured for these views only and kept"
            " out of every corpus statistic)"
        )
    return text + "; the rest are chosen round-robin across labels from the held-out split"
