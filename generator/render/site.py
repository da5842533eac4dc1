"""Write `site/NAME/` for one model and `site/index.html` for all of them, atomically."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import generator
from generator.analysis_names import recorded_analyses
from generator.artifacts import Artifacts, dump_json
from generator.atomic import recover, staged_folder, write_text_atomic
from generator.hashing import files_sha256, json_sha256, source_sha256
from generator.render.assets import copy_assets
from generator.render.datafiles import write_data_files
from generator.render.environment import environment, templates_dir
from generator.render.figures import export_charts
from generator.render.findings import fact_link, findings
from generator.render.pages import PAGES, Page
from generator.render.snippet import SNIPPET, card_snippet, normalize_base_url
from generator.timings import PartTimer, record_stage

log = logging.getLogger(__name__)

BUILD_INFO = "build-info.json"
SITE_README = "README.md"
ROOT_ASSETS = ("atlas.css", "theme.js")  # what site/index.html needs from templates/assets


@dataclass(frozen=True)
class RenderResult:
    """What the render stage did for one model."""

    folder: Path
    skipped: bool


def template_hash() -> str:
    """Hash every template and asset, so editing one re-renders the sites."""
    root = templates_dir()
    return files_sha256([p for p in root.rglob("*") if p.is_file()], root)


def model_pages(artifacts: Artifacts) -> tuple[Page, ...]:
    """Return the pages of a model: those of the analyses its card runs, in navigation order."""
    selected = recorded_analyses(artifacts.manifest)
    return tuple(page for page in PAGES if page.analysis is None or page.analysis in selected)


def headlines(artifacts: Artifacts, tables: dict) -> list[dict]:
    """Collect every page's headline facts: [{page, label, value}], in page order."""
    rows = []
    for page in model_pages(artifacts):
        if page.headline is None:
            continue
        for label, value in page.headline(artifacts, tables).items():
            rows.append({"page": page.filename, "label": str(label), "value": str(value)})
    return rows


def model_summary(card, artifacts: Artifacts, tables: dict | None = None) -> dict:
    """Headline facts about a model for the site index and the card snippet.

    The fixed facts come from the manifest; pages add theirs through `Page.headline`.
    """
    manifest = artifacts.manifest
    config = manifest["model"]["config"]
    corpus = manifest.get("corpus") or {}
    return {
        "name": card.name,
        "title": card.title,
        "source": card.model,
        "family": config["family"],
        "model_type": manifest["model"]["model_type"],
        "layers": config["n_layers"],
        "heads": config["n_heads"],
        "d_model": config["d_model"],
        "parameters": sum(row["count"] for row in manifest["parameters"]),
        "texts": corpus.get("n_texts", 0),
        "headlines": headlines(artifacts, tables) if tables is not None else [],
    }


def page_findings(tables: dict, pages) -> list[dict]:
    """Return the findings whose page is rendered, each with its permalink (`link`)."""
    shown = {page.filename for page in pages}
    return [{**fact, "link": fact_link(fact)} for fact in findings(tables) if fact["page"] in shown]


def render_model(
    card,
    artifacts: Artifacts,
    tables: dict,
    *,
    out_dir: Path,
    force: bool = False,
    base_url: str | None = None,
) -> RenderResult:
    """Render every page of one model into `out_dir/NAME`, unless nothing it depends on changed.

    Also exports every chart to `figures/` (SVG, PNG) and writes `card-snippet.md`, whose links
    are absolute under `base_url` (the hosted site's root) when given, else relative.
    """
    base_url = normalize_base_url(base_url)
    final = out_dir / card.name
    render_hash = json_sha256(
        {
            "artifacts": artifacts.manifest["input_hash"],
            "tables": json_sha256(tables),
            "templates": template_hash(),
            "card": {"title": card.title, "prose": card.prose},
            "version": generator.__version__,
            "code": source_sha256("render", "analyze"),
            "base_url": base_url,
        }
    )
    info_path = final / BUILD_INFO
    recover(final)
    timer = PartTimer()
    if not force and info_path.is_file():
        try:
            if json.loads(info_path.read_text(encoding="utf-8")).get("render_hash") == render_hash:
                log.info("%s: site up to date, render skipped", card.name)
                record_stage(
                    artifacts.root, "render", {"skipped": True, "seconds": timer.elapsed()}
                )
                return RenderResult(final, skipped=True)
        except ValueError:
            pass
    env = environment()
    summary = model_summary(card, artifacts, tables)
    with staged_folder(final) as staging:
        with timer.part("assets"):
            assets = copy_assets(templates_dir(), staging)
        pages = model_pages(artifacts)
        summary["findings"] = page_findings(tables, pages)
        with timer.part("charts"):
            contexts = [(page, page.context(artifacts, tables)) for page in pages]
        with timer.part("figures"):
            figures = export_charts(contexts, staging)
        with timer.part("pages"):
            write_pages(
                env, staging, contexts, card=card, pages=pages, model=summary, assets=assets
            )
        links = [(page.filename, page.title) for page in pages]
        snippet = card_snippet(summary, links, figures, generator.__version__, base_url)
        (staging / SNIPPET).write_text(snippet, encoding="utf-8")
        info = {
            "render_hash": render_hash,
            "model": summary,
            "pages": [page.filename for page in pages],
            "page_titles": [page.title for page in pages],
            "figures": [figure.to_dict() for figure in figures],
            "snippet": SNIPPET,
            "generator": generator.__version__,
        }
        (staging / BUILD_INFO).write_text(dump_json(info), encoding="utf-8")
    log.info("%s: site written to %s", card.name, final)
    record = {"seconds": timer.elapsed(), "parts": timer.parts, "figures": len(figures)}
    record_stage(artifacts.root, "render", record)
    return RenderResult(final, skipped=False)


def write_pages(env, staging: Path, contexts: list, **shared) -> None:
    """Render each (page, context) to `staging/FILENAME` with the model-wide template values.

    A context's `data_files` ({name: data}) are written as `staging/data/NAME.js` (datafiles.py).
    """
    for page, context in contexts:
        html = env.get_template(page.template).render(
            page=page, root="../", version=generator.__version__, **shared, **context
        )
        (staging / page.filename).write_text(html, encoding="utf-8")
        write_data_files(staging, context.get("data_files") or {})


def built_models(out_dir: Path) -> list[dict]:
    """Return the summaries of every model folder under `out_dir`, sorted by name.

    Each summary also gets `links`: (href relative to the site root, title) of its pages.
    """
    models = []
    for info_path in sorted(out_dir.glob(f"*/{BUILD_INFO}")):
        if info_path.parent.name.startswith("."):
            continue  # a staging or retired folder, not a model
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
            model = dict(info["model"])
        except (ValueError, KeyError, TypeError):
            log.warning("skipping %s: unreadable build info", info_path)
            continue
        folder = info_path.parent.name
        files = info.get("pages", [])
        titles = info.get("page_titles") or files
        model["links"] = [(f"{folder}/{f}", t) for f, t in zip(files, titles, strict=False)]
        if info.get("snippet"):
            model["links"].append((f"{folder}/{info['snippet']}", "card snippet"))
        model.setdefault("headlines", [])
        models.append(model)
    return models


def render_index(out_dir: Path) -> Path:
    """Write `out_dir/index.html` comparing every built model, with its own CSS and theme script."""
    env = environment()
    models = built_models(out_dir)
    html = env.get_template("site_index.html").render(
        models=models,
        any_headlines=any(m["headlines"] for m in models),
        version=generator.__version__,
        root="",
    )
    for name in ROOT_ASSETS:
        text = (templates_dir() / "assets" / name).read_text(encoding="utf-8")
        write_text_atomic(out_dir / "assets" / name, text)
    write_text_atomic(out_dir / "index.html", html)
    return out_dir / "index.html"


def export_model_figures(card, artifacts: Artifacts, tables: dict, out_dir: Path, formats) -> list:
    """Export every chart of one model into `out_dir/NAME/figures/` without rendering pages."""
    contexts = [(page, page.context(artifacts, tables)) for page in model_pages(artifacts)]
    return export_charts(contexts, out_dir / card.name, formats)
