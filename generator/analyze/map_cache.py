"""Fitted 2-D maps kept in the user's cache: each t-SNE input is fitted once per machine.

A map is a pure function of its input vectors and settings: the fits are seeded and run on one
thread, so the same input gives the same bytes (tests/test_reproducible.py). The cache key
hashes the inputs' values (prefetch.job_key), the fitting function's name and module source,
and the scikit-learn, SciPy and NumPy versions, so a changed input, method or library fits
again. A build whose vectors did not change (a new corpus beside the same token embeddings, a
rebuild into a new artifact store) reads the map back instead of fitting it again: seconds of
t-SNE per map.

Stored as `.npz` under `user_cache_dir()/maps/`; an unreadable entry is fitted again and
replaced, and a cache that cannot be written only costs the time of the fit.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from generator.atomic import write_bytes_atomic
from generator.user_cache import user_cache_dir

ARRAY = "array"  # the .npz entry of a map that is one array
ENTRY = "entry:"  # the prefix of the entries of a map that is a dict of arrays


def map_key(fit: Callable, args: tuple) -> str:
    """Return the cache key of `fit(*args)`: inputs, function, its module's source, versions."""
    import scipy
    import sklearn

    from generator.analyze.prefetch import job_key

    source = Path(sys.modules[fit.__module__].__file__).read_bytes()
    versions = (sklearn.__version__, scipy.__version__, np.__version__)
    digest = hashlib.sha256(job_key(fit, args).encode())
    for part in (source, *(version.encode() for version in versions)):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def map_path(key: str) -> Path:
    """Return the cache file of a key."""
    return user_cache_dir() / "maps" / key[:2] / f"{key}.npz"


def _encoded(fitted: np.ndarray | dict) -> bytes:
    entries = (
        {ARRAY: fitted}
        if isinstance(fitted, np.ndarray)
        else {ENTRY + name: value for name, value in fitted.items()}
    )
    buffer = io.BytesIO()
    np.savez(buffer, **entries)
    return buffer.getvalue()


def _decoded(path: Path) -> np.ndarray | dict | None:
    """Return the map stored at `path`, or None when it is missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            if stored.files == [ARRAY]:
                return stored[ARRAY]
            if stored.files and all(name.startswith(ENTRY) for name in stored.files):
                return {name[len(ENTRY) :]: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        pass
    return None


def remembered(fit: Callable, *args) -> np.ndarray | dict | None:
    """Return `fit(*args)`, read back from the user's cache when this input was fitted before.

    `fit` returns an array, a dict of arrays, or None (not stored: nothing was fitted).
    """
    path = map_path(map_key(fit, args))
    found = _decoded(path)
    if found is not None:
        return found
    fitted = fit(*args)
    if fitted is not None:
        with contextlib.suppress(OSError):  # a read-only or full cache costs only the fit's time
            write_bytes_atomic(path, _encoded(fitted))
    return fitted
