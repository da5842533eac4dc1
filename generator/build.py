"""The Python API behind the CLI: build = extract + analyze + render, each skipped when unchanged."""

from __future__ import annotations

import logging
import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

from generator.card import ModelCard
from generator.options import BuildOptions
from generator.timings import read_timings

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
    timings: dict = field(default_factory=dict)  # per stage, as in ARTIFACTS/NAME/timings.json


def extract_card(
    card: ModelCard, artifacts_root: Path, options: BuildOptions | None = None, **flags
):
    """Run the extract stage for one card; return its ExtractResult.

    Args:
        card: the validated ModelCard.
        artifacts_root: folder holding one artifact folder per model.
        options: the build's flags (force, strict, progress, allow_pickle, notify).
        **flags: BuildOptions fields set on top of `options` (e.g. `progress=False`).
    """
    from generator.extract.run import extract

    return extract(card, artifacts_root, BuildOptions.of(options, **flags))


def render_card(
    card: ModelCard,
    artifacts_root: Path,
    out_dir: Path,
    options: BuildOptions | None = None,
    **flags,
):
    """Analyze and render one card from its existing artifacts; return the RenderResult.

    Args:
        card: the validated ModelCard.
        artifacts_root: folder holding one artifact folder per model.
        out_dir: the site folder.
        options: the build's flags (force, base_url are read here).
        **flags: BuildOptions fields set on top of `options`.
    """
    from generator.analyze.run import analyze
    from generator.artifacts import open_artifacts
    from generator.render.site import render_model

    options = BuildOptions.of(options, **flags)
    artifacts = open_artifacts(artifacts_root / card.name)
    tables = analyze(artifacts, force=options.force)
    return render_model(
        card,
        artifacts,
        tables,
        out_dir=out_dir,
        force=options.force,
        base_url=options.base_url,
    )


def figures_card(card: ModelCard, artifacts_root: Path, out_dir: Path, formats) -> list:
    """Export every chart of one card to `out_dir/NAME/figures/` from existing artifacts."""
    from generator.analyze.run import analyze
    from generator.artifacts import open_artifacts
    from generator.render.site import export_model_figures

    artifacts = open_artifacts(artifacts_root / card.name)
    return export_model_figures(card, artifacts, analyze(artifacts), out_dir, formats)


def build_cards(
    cards: list[ModelCard],
    out_dir: Path,
    artifacts_root: Path,
    options: BuildOptions | None = None,
    **flags,
) -> list[BuildReport]:
    """Build every card into `out_dir`, then rewrite the site index.

    Args:
        cards: the validated ModelCards.
        out_dir: the site folder.
        artifacts_root: folder holding one artifact folder per model.
        options: the build's flags (see BuildOptions: force, strict, progress, allow_pickle,
            base_url, notify).
        **flags: BuildOptions fields set on top of `options`, so
            `build_cards(cards, out, artifacts, strict=True, progress=False)` works.

    Returns:
        One BuildReport per card.
    """
    from generator.analyze.prefetch import prefetching
    from generator.extract.processes import is_primary_process
    from generator.render.site import render_index

    options = BuildOptions.of(options, **flags)
    reports = []
    for card in cards:
        started = time.perf_counter()
        # The representation maps' t-SNE fits may start during the extraction (prefetch.py).
        with prefetching():
            extracted = extract_card(card, artifacts_root, options)
            if not is_primary_process():  # distributed runs: process 0 analyses and renders
                reports.append(
                    BuildReport(card.name, not extracted.skipped, False, 0.0, extracted.warnings)
                )
                continue
            rendered = render_card(card, artifacts_root, out_dir, options)
        reports.append(
            BuildReport(
                card.name,
                not extracted.skipped,
                not rendered.skipped,
                time.perf_counter() - started,
                extracted.warnings,
                extracted.compile_seconds,
                read_timings(artifacts_root / card.name),
            )
        )
    if is_primary_process():
        render_index(out_dir)
    return reports


def build(
    *cards: str | Path,
    out: str | Path = "site",
    artifacts: str | Path = "artifacts",
    force: bool = False,
    strict: bool = False,
    base_url: str | None = None,
    allow_pickle: bool = False,
) -> list[BuildReport]:
    """Build model cards by path, as `modelatlas build CARD...` does (the notebook API).

    Args:
        *cards: card paths (model_cards/NAME.md).
        out: the site folder; the model's pages go to OUT/NAME.
        artifacts: the artifact store; the model's arrays and tables go to ARTIFACTS/NAME.
        force: recompute every stage.
        strict: treat warnings as errors.
        base_url: the hosted site's root, for absolute links in card snippets.
        allow_pickle: read pytorch_model.bin checkpoints without safetensors.

    Returns:
        One BuildReport per card; `generator.open_atlas(ARTIFACTS/NAME)` reads the result.
    """
    from generator.card import load_card
    from generator.errors import AtlasError
    from generator.render.snippet import normalize_base_url

    if not cards:
        raise AtlasError("build needs at least one card path, e.g. build('model_cards/x.md')")
    return build_cards(
        [load_card(card) for card in cards],
        Path(out),
        Path(artifacts),
        force=force,
        strict=strict,
        progress=False,
        base_url=normalize_base_url(base_url),
        allow_pickle=allow_pickle,
    )


class _CallableModule(types.ModuleType):
    """This module, callable: `generator.build(CARD, ...)` is `generator.build.build(CARD, ...)`.

    `generator.build` names this module (Python binds a submodule to its package's attribute),
    so the notebook API's `build` is the module itself, called.
    """

    def __call__(self, *cards, **options) -> list[BuildReport]:
        """Build model cards by path (see `build`)."""
        return build(*cards, **options)


sys.modules[__name__].__class__ = _CallableModule
