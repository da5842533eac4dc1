"""Resolve the path forms a model card may use: local paths and `package:MODULE/SUBDIR`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE_PREFIX = "package:"


def is_package_path(value: str) -> bool:
    """Return True when `value` names a folder inside an installed Python package."""
    return value.startswith(PACKAGE_PREFIX)


def resolve_package_path(value: str) -> Path:
    """Resolve `package:MODULE/SUBDIR` to a path inside the installed package MODULE.

    Raises:
        FileNotFoundError: when the module is not installed or the sub-path does not exist.
    """
    spec = value[len(PACKAGE_PREFIX) :].strip("/")
    module, _, subdir = spec.partition("/")
    if not module:
        raise FileNotFoundError(f"'{value}' names no package; write package:MODULE/SUBDIR")
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError(
            f"package '{module}' is not installed; install it (pip install) or use a local path"
        )
    root = Path(next(iter(found.submodule_search_locations)))
    target = root / subdir if subdir else root
    if not target.exists():
        raise FileNotFoundError(f"'{subdir}' does not exist inside package '{module}' ({root})")
    return target
