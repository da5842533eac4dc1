"""Model Atlas: a static-site atlas of what a transformer does inside.

The notebook API (generator/notebook.py) is importable from here: `build`, `open_atlas`,
`Atlas`, `show`. It loads on first use, so `import generator` stays light.
"""

import importlib

__version__ = "0.1.0"

_LAZY = {name: "generator.notebook" for name in ("Atlas", "open_atlas", "show")}
__all__ = ["__version__", "build", *_LAZY]


def __getattr__(name: str):
    """Import a notebook API name on first access (PEP 562).

    `build` is the submodule generator.build, which is callable (`generator.build(CARD)`):
    importing it binds it here, so it is the same object before and after.
    """
    if name == "build":
        return importlib.import_module("generator.build")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'generator' has no attribute {name!r}")


def __dir__() -> list[str]:
    """List the module's names, the lazy ones included."""
    return sorted({*globals(), *__all__})
