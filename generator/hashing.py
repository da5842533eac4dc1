"""Content hashes that decide whether a stage's inputs changed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def files_sha256(paths: Iterable[Path], root: Path) -> str:
    """Return one hex SHA-256 over several files, keyed by their path relative to `root`."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(file_sha256(path).encode())
    return digest.hexdigest()


def json_sha256(value: object) -> str:
    """Return the hex SHA-256 of a JSON-able value in canonical form (sorted keys)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def source_sha256(*modules: str) -> str:
    """Hash the Python source of `generator` sub-packages/modules, so code edits invalidate caches."""
    root = Path(__file__).resolve().parent
    paths = []
    for module in modules:
        target = root / module
        paths += sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]
    return files_sha256(paths, root)
