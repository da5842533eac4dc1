"""Write `site/NAME/` for one model and `site/index.html` for all of them, atomically."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import generator
from generator.artifacts import Artifacts, dump_json
from generator.atomic import recover, staged_folder, write_text_atomic
from generator.hashing import files_sha256, json_sha256, source_sha256
from generator.render.assets import copy_assets
from generator.render.environment import environment, templates_dir
from generator.render.pages import PAGES

log = logging.getLogger(__name__)

BUILD_INFO = "build-info.json"
SITE_README = "README.md"


@dataclass(frozen=True)
class RenderResult:
    """What the render stage did for one model."""

    folder: Path
    skipped: bool


def template_hash() -> str:
    """Hash every template and asset, so editing one re-renders the sites."""
    root = templates_dir()
    return files_sha256([p for p in root.rglob("*") if p.is_file()], root)


def model_summary(card, artifacts: Artifacts) -> dict:
    """Headline facts about a model for the site index."""
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
    }


def render_model(
    card, artifacts: Artifacts, tables: dict, out_dir: Path, cache_dir: Path, force: bool = False
) -> RenderResult:
    """Render every page of one model into `out_dir/NAME`, unless nothing it depends on changed."""
    final = out_dir / card.name
    render_hash = json_sha256(
        {
            "artifacts": artifacts.manifest["input_hash"],
            "tables": json_sha256(tables),
            "templates": template_hash(),
            "card": {"title": card.title, "prose": card.prose},
            "version": generator.__version__,
            "code": source_sha256("render", "analyze"),
        }
    )
    info_path = final / BUILD_INFO
    recover(final)
    if not force and info_path.is_file():
        try:
            if json.loads(info_path.read_text(encoding="utf-8")).get("render_hash") == render_hash:
                log.info("%s: site up to date, render skipped", card.name)
                return RenderResult(final, skipped=True)
        except ValueError:
            pass
    env = environment()
    summary = model_summary(card, artifacts)
    with staged_folder(final) as staging:
        assets = copy_assets(templates_dir(), cache_dir, staging)
        for page in PAGES:
            context = page.context(artifacts, tables)
            html = env.get_template(page.template).render(
                page=page,
                pages=PAGES,
                card=card,
                model=summary,
                assets=assets,
                root="../",
                version=generator.__version__,
                **context,
            )
            (staging / page.filename).write_text(html, encoding="utf-8")
        info = {
            "render_hash": render_hash,
            "model": summary,
            "pages": [page.filename for page in PAGES],
            "generator": generator.__version__,
        }
        (staging / BUILD_INFO).write_text(dump_json(info), encoding="utf-8")
    log.info("%s: site written to %s", card.name, final)
    return RenderResult(final, skipped=False)


def built_models(out_dir: Path) -> list[dict]:
    """Return the summaries of every model folder under `out_dir`, sorted by name."""
    models = []
    for info_path in sorted(out_dir.glob(f"*/{BUILD_INFO}")):
        if info_path.parent.name.startswith("."):
            continue  # a staging or retired folder, not a model
        try:
            models.append(json.loads(info_path.read_text(encoding="utf-8"))["model"])
        except (ValueError, KeyError):
            log.warning("skipping %s: unreadable build info", info_path)
    return models


def render_index(out_dir: Path) -> Path:
    """Write `out_dir/index.html` listing every built model, with its own copy of the CSS."""
    env = environment()
    html = env.get_template("site_index.html").render(
        models=built_models(out_dir),
        version=generator.__version__,
        root="",
    )
    css = (templates_dir() / "assets" / "atlas.css").read_text(encoding="utf-8")
    write_text_atomic(out_dir / "assets" / "atlas.css", css)
    write_text_atomic(out_dir / "index.html", html)
    return out_dir / "index.html"
