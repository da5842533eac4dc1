"""The Python API behind the CLI: build = extract + analyze + render, each skipped when unchanged."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from generator.card import ModelCard

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildReport:
    """Per-card outcome of a build."""

    name: str
    extracted: bool
    rendered: bool
    seconds: float
    warnings: tuple[str, ...]
    compile_seconds: float = 0.0  # JAX tracing + compilation inside `seconds`


def cache_dir(artifacts_root: Path) -> Path:
    """Return the folder for caches shared by all models (compiled programs, Vega bundle)."""
    return artifacts_root / ".cache"


def extract_card(
    card: ModelCard,
    artifacts_root: Path,
    force: bool = False,
    strict: bool = False,
    progress: bool = True,
):
    """Run the extract stage for one card; return its ExtractResult."""
    from generator.extract.run import extract

    return extract(card, artifacts_root, force=force, strict=strict, progress=progress)


def render_card(card: ModelCard, artifacts_root: Path, out_dir: Path, force: bool = False):
    """Analyze and render one card from its existing artifacts; return the RenderResult."""
    from generator.analyze.run import analyze
    from generator.artifacts import open_artifacts
    from generator.render.site import render_model

    artifacts = open_artifacts(artifacts_root / card.name)
    tables = analyze(artifacts, force=force)
    return render_model(card, artifacts, tables, out_dir, cache_dir(artifacts_root), force=force)


def build_cards(
    cards: list[ModelCard],
    out_dir: Path,
    artifacts_root: Path,
    force: bool = False,
    strict: bool = False,
    progress: bool = True,
) -> list[BuildReport]:
    """Build every card into `out_dir`, then rewrite the site index."""
    from generator.render.site import render_index

    reports = []
    for card in cards:
        started = time.perf_counter()
        extracted = extract_card(
            card, artifacts_root, force=force, strict=strict, progress=progress
        )
        rendered = render_card(card, artifacts_root, out_dir, force=force)
        reports.append(
            BuildReport(
                card.name,
                not extracted.skipped,
                not rendered.skipped,
                time.perf_counter() - started,
                extracted.warnings,
                extracted.compile_seconds,
            )
        )
    render_index(out_dir)
    return reports
