"""Content hashes that decide whether a stage's inputs changed."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from generator.atomic import write_text_atomic

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def files_sha256(
    paths: Iterable[Path], root: Path, hasher: Callable[[Path], str] = file_sha256
) -> str:
    """Return one hex SHA-256 over several files, keyed by their path relative to `root`."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(hasher(path).encode())
    return digest.hexdigest()


class FileHashCache:
    """SHA-256 of large files remembered by (absolute path, size, mtime_ns) in a JSON file.

    A warm rebuild re-hashes a multi-GB checkpoint only when its size or modification time
    changed. `path=None` remembers nothing on disk.
    """

    def __init__(self, path: Path | None):
        self.path = path
        self._entries: dict[str, dict] = self._read() if path is not None else {}
        self._changed = False

    def _read(self) -> dict[str, dict]:
        """Return the stored entries; an unreadable cache file is ignored (hashes are redone)."""
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return {}
        return entries if isinstance(entries, dict) else {}

    def sha256(self, path: Path) -> str:
        """Return the hex SHA-256 of `path`, hashing it only when (size, mtime_ns) changed."""
        path = Path(os.path.abspath(path))
        stat = path.stat()
        key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        entry = self._entries.get(str(path))
        if isinstance(entry, dict) and {k: entry.get(k) for k in key} == key:
            digest = entry.get("sha256")
            if isinstance(digest, str) and len(digest) == 64:
                return digest
        digest = file_sha256(path)
        self._entries[str(path)] = {**key, "sha256": digest}
        self._changed = True
        return digest

    def save(self) -> None:
        """Write the entries back when a hash was added (atomically; a failure only logs)."""
        if self.path is None or not self._changed:
            return
        self._entries = {
            p: e for p, e in self._entries.items() if os.path.isfile(p)
        }  # drop gone files
        try:
            write_text_atomic(self.path, json.dumps(self._entries, sort_keys=True, indent=1))
        except OSError as error:
            log.warning("could not save the file-hash cache %s (%s)", self.path, error)
        self._changed = False


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
