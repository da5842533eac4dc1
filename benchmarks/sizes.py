"""Real model sizes: cold builds of random-init checkpoints of published sizes.

For each size (bert-base, GPT-2 small, a 24-layer ~350M Llama-style decoder; `benchmarks/
checkpoints.py` has their configs), the checkpoint is written at bench time into the scratch
folder (a child process: `python -m benchmarks.checkpoints`), then built cold with the default
card's settings on the bundled demo corpus (`modelatlas build` as a child process, so its peak
RSS comes from os.wait4), and the seeds-style script runs on the same checkpoint when PyTorch and
matplotlib are installed. Where the build's time went comes from the `timings.json` it writes
(`generator/timings.py`): each stage, each extract step, the analyses and the render parts.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks.runner import ROOT, Run, copy_repo, run_build, run_measured
from benchmarks.scaling import DEMO_CORPUS, scaled_rows

log = logging.getLogger(__name__)

DEFAULT_CARD = ROOT / "model_cards" / "all-minilm-l6-v2.md"
GB = 1e9


@dataclass
class SizeResult:
    """One size: its checkpoint, one cold build, and the baseline on the same checkpoint."""

    kind: str
    parameters: int
    checkpoint: Run  # writing the random-init checkpoint
    build: Run
    timings: dict  # the build's timings.json
    baseline: Run | None = None

    @property
    def rss_gb(self) -> float:
        """Peak resident memory of the build, in GB (10⁹ bytes)."""
        return self.build.max_rss_mb * 2**20 / GB

    @property
    def rss_bytes_per_parameter(self) -> float:
        """Peak resident bytes of the build per model parameter."""
        return self.build.max_rss_mb * 2**20 / self.parameters

    @property
    def compile_seconds(self) -> float | None:
        """JAX compile seconds of the extract stage (timings.json, else the build's stdout)."""
        extract = self.timings.get("extract", {})
        if "compile_seconds" in extract:
            return float(extract["compile_seconds"])
        return self.build.compile_seconds

    def baseline_stages(self) -> dict | None:
        """The baseline script's own stage timings (the JSON line it prints), if it ran."""
        if self.baseline is None:
            return None
        lines = self.baseline.stdout.strip().splitlines()
        try:
            return json.loads(lines[-1])["timings"] if lines else None
        except (ValueError, KeyError):
            return None


def card_settings(default_card: Path = DEFAULT_CARD) -> dict:
    """Return the default card's front matter without what names its model (name, title, task)."""
    text = default_card.read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("---", 2)[1])
    for key in ("name", "title", "model", "task"):
        front.pop(key, None)
    front["corpus"] = str(DEMO_CORPUS)
    return front


def smoke_settings(folder: Path) -> dict:
    """Return the default card's settings over 24 demo texts at max_length 32 (written here)."""
    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "smoke.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in scaled_rows(24)), encoding="utf-8")
    return {**card_settings(), "corpus": str(corpus), "max_length": 32}


def write_size_card(folder: Path, name: str, model: Path, settings: dict) -> Path:
    """Write a card for `model` with `settings` (the default card's); return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    front = {"name": name, "model": str(model), **settings}
    card = folder / f"{name}.md"
    card.write_text(f"---\n{yaml.safe_dump(front, sort_keys=False)}---\nReal-size benchmark.\n")
    return card


def write_checkpoint(
    kind: str, folder: Path, dtype: str = "float32", layers: int | None = None
) -> tuple[Run, int]:
    """Write the random-init checkpoint `kind` in a child process; return (its run, parameters).

    `layers` overrides its depth.
    """
    from benchmarks.checkpoints import parameter_count

    args = [sys.executable, "-m", "benchmarks.checkpoints", kind, str(folder), "--dtype", dtype]
    args += ["--layers", str(layers)] if layers is not None else []
    run = run_measured(args, cwd=ROOT)
    return run, parameter_count(folder)


def read_build_timings(artifacts: Path, name: str) -> dict:
    """Return the timings.json a build wrote for card `name` ({} when missing)."""
    from generator.timings import read_timings

    return read_timings(artifacts / name)


def run_sizes(
    work: Path, kinds: tuple[str, ...], threads: int, with_baseline: bool, smoke: bool = False
) -> list[SizeResult]:
    """Write, build cold and (optionally) baseline every size in `kinds`; return the results.

    `smoke` builds over 24 demo texts at max_length 32 instead of the whole demo corpus.
    """
    from benchmarks.e2e import baseline_command
    from generator.card import load_card

    repo = copy_repo(work / "repo")
    settings = smoke_settings(work / "cards") if smoke else card_settings()
    results = []
    for index, kind in enumerate(kinds):
        model = work / "checkpoints" / kind
        written, parameters = write_checkpoint(kind, model)
        name = f"size-{kind}"
        card_path = write_size_card(work / "cards", name, model, settings)
        card = load_card(card_path)
        folder = work / name

        def build(card_path=card_path, folder=folder):
            return run_build(repo, card_path, folder / "site", folder / "artifacts")

        def base(card=card, folder=folder):
            out = folder / "baseline"
            return run_measured(baseline_command(card, out, threads, card.corpus_path()), ROOT)

        runs = {}
        order = [("build", build), ("baseline", base)][:: -1 if index % 2 else 1]
        for role, fn in order:
            if role == "baseline" and not with_baseline:
                continue
            runs[role] = fn()
            log.info("sizes %s %s: %.1f s", kind, role, runs[role].seconds)
        results.append(
            SizeResult(
                kind,
                parameters,
                written,
                runs["build"],
                read_build_timings(folder / "artifacts", card.name),
                runs.get("baseline"),
            )
        )
    return results
