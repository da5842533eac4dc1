"""Model Atlas: a static-site atlas of what a transformer does inside.

The notebook API (generator/notebook.py) is importable from here: `build`, `open_atlas`,
`Atlas`, `show`. It loads on first use, so `import generator` stays light.
"""

import importlib

__version__ = "0.1.0"

_LAZY = {name: "generator.notebook" for name in ("Atlas", "build", "open_atlas", "show")}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    """Import a notebook API name on first access (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'generator' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
