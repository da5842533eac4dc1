"""Static assets of a model folder: the Vega runtime (from vl-convert) and our own JS/CSS."""

from __future__ import annotations

import shutil
from pathlib import Path

from generator.atomic import write_text_atomic

VEGA_BUNDLE = "vega-bundle.js"


def vega_bundle() -> Path:
    """Return a classic-script Vega + Vega-Lite + vega-embed bundle, made once per vl-convert version.

    It is kept in the user's cache (`user_cache_dir`), so a build into a new artifact store
    does not make it again (vl-convert takes 2-3 s).

    vl-convert's default bundle has no import/export and ends by setting `window.vegaEmbed`,
    `window.vega` and `window.vegaLite`; wrapped in a function scope, its thousands of
    top-level names stay out of the page's globals. Loads from file:// as a plain script.
    """
    import vl_convert

    from generator.user_cache import user_cache_dir

    version = getattr(vl_convert, "__version__", "unknown")
    path = user_cache_dir() / f"vega-bundle-{version}.js"
    if not path.is_file():
        bundle = vl_convert.javascript_bundle()
        write_text_atomic(path, "(function () {\n" + bundle + "\n})();\n")
    return path


def copy_assets(templates_dir: Path, target: Path) -> list[str]:
    """Copy the runtime and our assets into `target/assets`; return their relative paths."""
    assets = target / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(vega_bundle(), assets / VEGA_BUNDLE)
    own = sorted(p for p in (templates_dir / "assets").iterdir() if p.suffix in (".js", ".css"))
    for path in own:
        shutil.copyfile(path, assets / path.name)
    return [f"assets/{name}" for name in (VEGA_BUNDLE, *(p.name for p in own))]
