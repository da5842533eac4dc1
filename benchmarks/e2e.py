"""End to end: cold `modelatlas build` of a card against the seeds-style baseline script.

Every build runs from a private copy of the package, templates and cards (`runner.copy_repo`),
so the template-change case edits the copy's `templates/base.html`, never the real one.

- cold: fresh artifact and site folders (so an empty JAX compilation cache), alternated with
  the baseline script over the same corpus;
- warm: the same build again with nothing changed (every stage skipped);
- template: a comment appended to the copy's base.html before each build (render only).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.runner import ROOT, Run, copy_repo, run_build, run_measured
from benchmarks.stats import Samples

log = logging.getLogger(__name__)

BASELINE = ROOT / "benchmarks" / "baselines" / "seeds_baseline.py"


@dataclass
class E2EResult:
    """Runs of each case; `site` is the folder of the last cold build (for the page bench)."""

    card: str
    cold: list[Run] = field(default_factory=list)
    baseline: list[Run] = field(default_factory=list)
    warm: list[Run] = field(default_factory=list)
    template: list[Run] = field(default_factory=list)
    site: Path | None = None
    baseline_skipped: str | None = None

    @staticmethod
    def seconds(runs: list[Run]) -> Samples:
        """Wall seconds of a list of runs."""
        return Samples(tuple(r.seconds for r in runs))

    @staticmethod
    def cpu(runs: list[Run]) -> Samples:
        """CPU seconds (user + system) of a list of runs."""
        return Samples(tuple(r.cpu_seconds for r in runs))

    def compile_seconds(self) -> Samples | None:
        """JAX compile seconds reported by the cold builds."""
        values = [r.compile_seconds for r in self.cold if r.compile_seconds is not None]
        return Samples(tuple(values)) if values else None


def baseline_command(card, out: Path, threads: int, corpus: Path | None) -> list[str]:
    """Return the baseline command for the same model, corpus and max_length as `card`."""
    args = [sys.executable, str(BASELINE), "--out", str(out), "--threads", str(threads)]
    args += ["--model", str(card.model_path()), "--max-length", str(card.max_length)]
    if corpus is not None:
        args += ["--corpus", str(corpus)]
    return args


def run_e2e(
    card_path: Path,
    work: Path,
    reps: int,
    warm_reps: int,
    threads: int,
    with_baseline: bool,
) -> E2EResult:
    """Measure cold builds (alternated with the baseline), warm rebuilds and template re-renders."""
    from generator.card import load_card

    card = load_card(card_path)
    repo = copy_repo(work / "repo")
    copied_card = repo / "model_cards" / card_path.name
    if not copied_card.is_file():
        copied_card.write_text(card_path.read_text(encoding="utf-8"), encoding="utf-8")
    result = E2EResult(card.name)
    if not with_baseline:
        result.baseline_skipped = "PyTorch / matplotlib not installed (or not asked for)"
    last = None
    for rep in range(reps):
        cold_dir = work / f"cold-{rep}"

        def cold(cold_dir=cold_dir):
            return run_build(repo, copied_card, cold_dir / "site", cold_dir / "artifacts")

        def base(rep=rep):
            return run_measured(
                baseline_command(card, work / f"baseline-{rep}", threads, card.corpus_path()),
                cwd=ROOT,
            )

        order = [("cold", cold), ("baseline", base)]
        if rep % 2:
            order.reverse()
        for name, fn in order:
            if name == "baseline" and not with_baseline:
                continue
            run = fn()
            getattr(result, name).append(run)
            log.info("e2e %s #%d: %.1f s", name, rep, run.seconds)
        last = cold_dir
    site, artifacts = last / "site", last / "artifacts"
    base_html = repo / "templates" / "base.html"
    for rep in range(warm_reps):
        result.warm.append(run_build(repo, copied_card, site, artifacts))
        with base_html.open("a", encoding="utf-8") as handle:
            handle.write(f"\n{{# benchmark template edit {rep} #}}\n")
        result.template.append(run_build(repo, copied_card, site, artifacts))
    for run in result.warm:
        if "artifacts cached, site cached" not in run.stdout:
            raise RuntimeError(f"warm rebuild did work: {run.stdout.strip()}")
    for run in result.template:
        if "artifacts cached, rendered" not in run.stdout:
            raise RuntimeError(f"template change did not re-render only: {run.stdout.strip()}")
    result.site = site
    return result
