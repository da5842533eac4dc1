"""Choose the showcase examples that keep full per-token captures.

A card's `showcase_texts` come first, in the order given: a corpus row id, or a text, which is
its corpus row when the corpus holds it (the first such row) and otherwise an extra text. Extra
texts get the rows after the corpus's (row n + k for the k-th extra text): they are tokenised
and captured for the showcase views only, never part of a corpus pass or statistic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from generator.errors import CorpusError
from generator.extract import sharding
from generator.extract.batching import pad_rows
from generator.extract.tokenize import TokenizedCorpus, tokenize_corpus


def resolve_showcase_texts(
    entries: Sequence[int | str], texts: Sequence[str], *, has_targets: bool = False
) -> tuple[list[int], list[str]]:
    """Return (rows, extra texts) of a card's `showcase_texts` over a corpus of `texts`.

    Raises:
        CorpusError: a row id past the corpus, or (with corpus targets) a text not in it.
    """
    first_row: dict[str, int] = {}
    for row, text in enumerate(texts):
        first_row.setdefault(str(text), row)
    rows: list[int] = []
    extra: list[str] = []
    for index, entry in enumerate(entries):
        if isinstance(entry, int):
            if entry >= len(texts):
                raise CorpusError(
                    f"showcase_texts[{index}]: row id {entry} is past the corpus's {len(texts)}"
                    f" texts (rows 0-{len(texts) - 1}): give a row id in range or the text itself"
                )
            row = entry
        elif entry in first_row:
            row = first_row[entry]
        elif has_targets:
            raise CorpusError(
                f"showcase_texts[{index}]: the text is not in the corpus, so it has no"
                " target_field value: add it to the corpus or give a corpus row id"
            )
        else:
            row = len(texts) + len(extra)
            extra.append(entry)
        if row in rows:
            raise CorpusError(
                f"showcase_texts[{index}] names corpus row {row} a second time: list it once"
            )
        rows.append(row)
    return rows, extra


def showcase_tokens(tokens: TokenizedCorpus, tokenizer, extra: Sequence[str]) -> TokenizedCorpus:
    """Return the corpus's tokens followed by those of the extra showcase texts."""
    if not extra:
        return tokens
    more = tokenize_corpus(tokenizer, list(extra), tokens.max_length)
    return TokenizedCorpus(
        ids=tokens.ids + more.ids,
        full_lengths=np.concatenate([tokens.full_lengths, more.full_lengths]),
        max_length=tokens.max_length,
    )


def choose_showcase(
    n_texts: int,
    count: int,
    labels: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
    first: Sequence[int] = (),
) -> np.ndarray:
    """Return the rows of up to `count` showcase examples: `first` in order, then sorted rows.

    `first` (the card's `showcase_texts`) may hold rows past `n_texts` (extra texts). The rest
    are corpus rows not in `first`: held-out rows (split `validation` or `test`) are preferred
    when a split exists, so the showcase shows examples no probe was trained on; labels are
    taken round-robin in sorted order so every label is represented; within a label, corpus
    order decides. Deterministic.
    """
    named = [int(row) for row in first][:count]
    rest = _fill(n_texts, count - len(named), labels, splits, exclude=set(named))
    return np.array(named + rest.tolist(), dtype=np.int64) if named else rest


def _fill(n_texts, count, labels, splits, *, exclude) -> np.ndarray:
    """Return sorted rows of up to `count` examples outside `exclude` (held-out, round-robin)."""
    rows = np.array([row for row in range(n_texts) if row not in exclude], dtype=np.int64)
    if splits is not None:
        held_out = np.array([splits[row] in ("validation", "test") for row in rows], dtype=bool)
        if held_out.any():
            rows = rows[held_out]
    if labels is None:
        return np.sort(rows[:count])
    by_label: dict[str, list[int]] = {}
    for row in rows:
        by_label.setdefault(str(labels[row]), []).append(int(row))
    queues = [by_label[label] for label in sorted(by_label)]
    chosen: list[int] = []
    depth = 0
    while len(chosen) < min(count, len(rows)):
        for queue in queues:
            if depth < len(queue) and len(chosen) < count:
                chosen.append(queue[depth])
        depth += 1
    return np.sort(np.array(chosen, dtype=np.int64))


def showcase_batch(tokens, showcase: np.ndarray, width: int, pad_id: int, mesh):
    """Return padded showcase ids and mask [example(rounded to the data axis), token]."""
    rows = sharding.round_up(len(showcase), sharding.data_size(mesh))
    return pad_rows([tokens.ids[r] for r in showcase], width, rows, pad_id)
