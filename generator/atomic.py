"""Write a folder next to its destination, then swap it in, so a failed build loses nothing."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def staged_folder(final: Path) -> Iterator[Path]:
    """Yield an empty sibling folder of `final`; on success it replaces `final` atomically.

    On any exception the staged folder is removed and `final` is left untouched.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.staging-", dir=final.parent))
    staging.chmod(0o777 & ~current_umask())  # mkdtemp makes 0700; publish like any new folder
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    swap_in(staging, final)


def current_umask() -> int:
    """Return the process umask without changing it."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def swap_in(staging: Path, final: Path) -> None:
    """Replace `final` by `staging` with two renames; the old folder is removed afterwards."""
    retired = None
    if final.exists():
        retired = final.with_name(f".{final.name}.retired-{os.getpid()}")
        if retired.exists():
            shutil.rmtree(retired)
        os.replace(final, retired)
    os.replace(staging, final)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file through a temporary sibling and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
