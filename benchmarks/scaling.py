"""Scaling: cold build time and peak memory against corpus size and max_length.

Corpora are made deterministically from the bundled demo corpus: row i is demo row i mod 500
with " #i" appended (so every text's tokens differ); for the max_length series, row i joins
LONG_JOIN consecutive demo sentences, so every text reaches the token limit and is truncated
there. Each build is cold (fresh artifact and site folders) and runs as its own process, whose
peak resident memory comes from os.wait4.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks.runner import ROOT, Run, copy_repo, run_build
from benchmarks.stats import Samples

log = logging.getLogger(__name__)

DEMO_CORPUS = ROOT / "generator" / "data" / "demo_corpus.jsonl"
LONG_JOIN = 48  # demo sentences average ~15 tokens: 48 of them exceed 512 tokens


@dataclass
class Point:
    """Repeated cold builds of one corpus setting."""

    label: str
    texts: int
    max_length: int
    runs: list[Run]

    @property
    def seconds(self) -> Samples:
        """Wall seconds."""
        return Samples(tuple(r.seconds for r in self.runs))

    @property
    def cpu_seconds(self) -> Samples:
        """CPU seconds (user + system)."""
        return Samples(tuple(r.cpu_seconds for r in self.runs))

    @property
    def rss_mb(self) -> Samples:
        """Peak resident memory in MiB."""
        return Samples(tuple(r.max_rss_mb for r in self.runs))

    @property
    def compile_seconds(self) -> Samples:
        """JAX compile seconds reported by the builds."""
        return Samples(tuple(r.compile_seconds or 0.0 for r in self.runs))


def demo_rows() -> list[dict]:
    """Return the bundled demo corpus rows."""
    lines = DEMO_CORPUS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def scaled_rows(n: int, join: int = 1) -> list[dict]:
    """Return n rows built from the demo corpus (see module doc); labels and splits kept."""
    rows = demo_rows()
    out = []
    for i in range(n):
        base = rows[i % len(rows)]
        text = " ".join(rows[(i + j) % len(rows)]["text"] for j in range(join))
        out.append({"text": f"{text} #{i}", "label": base["label"], "split": base["split"]})
    return out


def write_card(folder: Path, name: str, model: str, rows: list[dict], max_length: int) -> Path:
    """Write a corpus and a card for it into `folder`; return the card path."""
    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / f"{name}.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    front = {
        "name": name,
        "model": model,
        "corpus": str(corpus),
        "label_field": "label",
        "split_field": "split",
        "max_length": max_length,
    }
    card = folder / f"{name}.md"
    card.write_text(f"---\n{yaml.safe_dump(front, sort_keys=False)}---\nScaling run.\n")
    return card


def run_scaling(
    work: Path,
    model: str,
    sizes: tuple[int, ...],
    lengths: tuple[int, ...],
    length_texts: int,
    reps: int,
    base_max_length: int = 128,
) -> list[Point]:
    """Cold-build every setting `reps` times (settings interleaved within each repetition)."""
    repo = copy_repo(work / "repo")
    settings = [(f"{n} texts", n, base_max_length, scaled_rows(n)) for n in sizes]
    long_rows = scaled_rows(length_texts, join=LONG_JOIN)
    settings += [(f"max_length {m}", length_texts, m, long_rows) for m in lengths]
    points = []
    for index, (label, n, max_length, rows) in enumerate(settings):
        card = write_card(work / "cards", f"scale-{index}", model, rows, max_length)
        points.append((Point(label, n, max_length, []), card))
    for rep in range(reps):
        order = points if rep % 2 == 0 else points[::-1]
        for point, card in order:
            folder = work / f"{card.stem}-{rep}"
            run = run_build(repo, card, folder / "site", folder / "artifacts")
            point.runs.append(run)
            log.info(
                "scaling %s #%d: %.1f s, %.0f MiB", point.label, rep, run.seconds, run.max_rss_mb
            )
    return [point for point, _ in points]
