"""Run a command as a child process and measure its wall time, CPU time and peak memory."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What a build needs from the repository: the package, its templates, the model cards.
REPO_PARTS = ("generator", "templates", "model_cards")
# The per-card summary line of `build` ("NAME: extracted, rendered in 9.1 s (JAX compile 4.2 s) ->
# SITE/"), not the extract timings line below it, which repeats the figure.
_COMPILE = re.compile(r"JAX compile ([0-9.]+) s\) ->")


class CommandFailed(RuntimeError):
    """A measured command exited with a non-zero status."""


class CommandTimedOut(CommandFailed):
    """A measured command ran past its time limit and was killed (with its children)."""

    def __init__(self, message: str, seconds: float, stdout: str, stderr: str):
        super().__init__(message)
        self.seconds, self.stdout, self.stderr = seconds, stdout, stderr


@dataclass(frozen=True)
class Run:
    """One measured child process."""

    seconds: float  # wall time
    cpu_seconds: float  # user + system time of the child
    max_rss_mb: float  # peak resident memory of the child
    stdout: str

    @property
    def compile_seconds(self) -> float | None:
        """JAX compile time the build reported on stdout, if it extracted anything."""
        found = _COMPILE.findall(self.stdout)
        return sum(float(x) for x in found) if found else None


def run_measured(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float | None = None
) -> Run:
    """Run `args` to completion; return its wall time, CPU time and peak RSS.

    The command runs under `benchmarks.launch`, a small parent that reads the child's own
    rusage with os.wait4 (see that module for why the benchmark process must not fork it).
    Past `timeout` seconds the command and its children are killed: CommandTimedOut.
    A build compiles into its own artifact store's cache (cold in fresh folders, warm in a
    rebuild): a shared `MODELATLAS_JAX_CACHE` of the caller's environment (the test suite sets
    one) would make a cold build's compile time that of whatever the cache already holds.
    """
    child_env = {**os.environ, **(env or {})}
    if "MODELATLAS_JAX_CACHE" not in (env or {}):
        child_env.pop("MODELATLAS_JAX_CACHE", None)
    child_env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + ([child_env["PYTHONPATH"]] if child_env.get("PYTHONPATH") else [])
    )
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as scratch,
    ):
        report = Path(scratch) / "usage.json"
        launcher = [sys.executable, "-m", "benchmarks.launch", str(report), "--"]
        started = time.perf_counter()
        proc = subprocess.Popen(
            launcher + args,
            cwd=cwd,
            env=child_env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: a timeout kills the build too
        )
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        usage = json.loads(report.read_text()) if report.is_file() else None
    if code is None:
        raise CommandTimedOut(
            f"{' '.join(args[:5])} ... killed after {timeout:.0f} s", seconds, stdout, stderr
        )
    if code or usage is None:
        raise CommandFailed(f"{' '.join(args[:5])} ... exited {code}:\n{stderr[-3000:]}")
    return Run(seconds, usage["cpu_seconds"], usage["max_rss_kb"] / 1024.0, stdout)


def copy_repo(target: Path) -> Path:
    """Copy the package, templates and cards into `target` (a private tree the bench may edit)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in REPO_PARTS:
        shutil.copytree(ROOT / part, target / part, ignore=ignore)
    return target


def build_command(card: Path, out: Path, artifacts: Path) -> list[str]:
    """Return the `modelatlas build` command line for one card."""
    return [
        sys.executable,
        "-m",
        "generator.cli",
        "build",
        str(card),
        "--out",
        str(out),
        "--artifacts",
        str(artifacts),
    ]


def run_build(
    repo: Path,
    card: Path,
    out: Path,
    artifacts: Path,
    timeout: float | None = None,
    extra_env: dict[str, str] | None = None,
) -> Run:
    """Run `modelatlas build` from the copied repo `repo` (its code and templates win).

    The user cache (figures, t-SNE maps, the Vega bundle) sits beside `artifacts`: a build into
    fresh folders renders every figure and fits every map (cold), a rebuild into the same
    folders finds them (warm), as for a user. `extra_env` adds
    environment variables for the build (e.g. JAX's GPU memory fraction).
    """
    env = {"PYTHONPATH": str(repo), "MODELATLAS_CACHE": str(artifacts.parent / "figure-cache")}
    env |= extra_env or {}
    return run_measured(build_command(card, out, artifacts), cwd=repo, env=env, timeout=timeout)
