"""Write a folder next to its destination, then swap it in, so a failed build loses nothing.

Writers leave siblings of their destination `NAME` while they work: `.NAME.staging-PID-*`
(the folder being written), `.NAME.retired-PID` (the old folder during a two-rename swap) and
`.NAME.tmp-PID` (a file being written). A build that is killed leaves them behind; `recover`
removes those of dead processes, and puts a retired folder back when the swap was cut between
its two renames, so the previous result is what the next build finds.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

_LEFTOVER = re.compile(r"\.(?P<name>.+)\.(?P<kind>staging|retired|tmp)-(?P<rest>.*)")


@contextlib.contextmanager
def staged_folder(final: Path) -> Iterator[Path]:
    """Yield an empty sibling folder of `final`; on success it replaces `final` atomically.

    On any exception the staged folder is removed and `final` is left untouched.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    recover(final)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{final.name}.staging-{os.getpid()}-", dir=final.parent)
    )
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
    """Replace `final` by `staging`: one atomic exchange where the OS has it, else two renames."""
    if final.exists() and exchange(staging, final):
        shutil.rmtree(staging, ignore_errors=True)  # `staging` now names the old folder
        return
    retired = None
    if final.exists():
        retired = final.with_name(f".{final.name}.retired-{os.getpid()}")
        if retired.exists():
            shutil.rmtree(retired)
        os.replace(final, retired)
    os.replace(staging, final)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


@lru_cache(maxsize=1)
def _renameat2():
    """Return libc's renameat2 (Linux, glibc 2.28+), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (renameat2 RENAME_EXCHANGE); False if unsupported."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write a binary file through a temporary sibling and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file through a temporary sibling and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    recover(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def recover(final: Path) -> list[str]:
    """Clean up after writers of `final` that died: restore or remove their leftovers.

    A retired folder of a dead process comes back as `final` when `final` is missing (the
    swap was cut between its renames); every other leftover of a dead process is removed.
    Leftovers of live processes (a build running beside this one) are left alone.

    Returns:
        The names of the leftovers handled.
    """
    parent = final.parent
    try:
        entries = sorted(parent.iterdir(), key=lambda p: p.name)
    except OSError:
        return []
    stale = []
    for entry in entries:
        match = _LEFTOVER.fullmatch(entry.name)
        if match and match["name"] == final.name and not _alive(_pid(match["rest"])):
            stale.append((match["kind"], entry))
    for kind, entry in stale:
        if kind == "retired" and not final.exists() and entry.is_dir():
            os.replace(entry, final)
            log.warning("restored %s from an interrupted build", final)
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
    if stale:
        log.info("removed leftovers of interrupted builds next to %s", final)
    return [entry.name for _, entry in stale]


def _pid(rest: str) -> int | None:
    """Return the process id recorded in a leftover's name suffix (`PID` or `PID-random`)."""
    match = re.match(r"(\d+)(?:-|$)", rest)
    return int(match[1]) if match else None


def _alive(pid: int | None) -> bool:
    """Return whether process `pid` is running (None: unknown writer, treated as dead)."""
    if pid is None:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists under another user, or cannot be probed: leave it alone
    return True
