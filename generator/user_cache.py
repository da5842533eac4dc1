"""The user's cache folder, shared by every build and artifact store on the machine."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """Return MODELATLAS_CACHE, else `$XDG_CACHE_HOME/modelatlas`, else `~/.cache/modelatlas`.

    It holds what depends on its inputs and the installed tools alone: rendered paper figures
    (keyed by spec), fitted 2-D maps (keyed by their input vectors, analyze/map_cache.py) and
    the Vega runtime bundle (keyed by vl-convert's version).
    """
    root = os.environ.get("MODELATLAS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "modelatlas"
    )
    return Path(root)
