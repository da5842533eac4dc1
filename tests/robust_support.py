"""Helpers shared by the robustness tests: CLI runs, folder snapshots, damaged checkpoints."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from cards import TINY_BERT
from click.testing import CliRunner

from generator.cli import main

REPO = Path(__file__).resolve().parents[1]
# compiled programs, the Vega bundle and the weights-hash cache (caches), and the build's
# wall-clock times: not results
CACHES = (".jax-cache", ".cache", ".file-hashes.json", "timings.json")


def cli(*args):
    """Run `modelatlas ARGS` in-process; return Click's Result (exceptions propagate)."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


# printed by `build` before the forward passes
PROGRESS_NOTES = (": memory estimate per device:", ": time estimate ")


def output_lines(result) -> list[str]:
    """Return the non-blank lines a CLI run printed (stdout and stderr), less progress notes."""
    return [
        line
        for line in result.output.splitlines()
        if line.strip() and not any(note in line for note in PROGRESS_NOTES)
    ]


def tree_bytes(
    folder: Path, skip: tuple[str, ...] = CACHES, leftovers: bool = True
) -> dict[str, bytes]:
    """Return {relative path: bytes} of every file under `folder`, outside `skip` folders.

    With leftovers=False, files inside a writer's leftover (`.NAME.staging-*`, ...) are left out.
    """
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or set(relative.parts) & set(skip):
            continue
        if not leftovers and any(_is_leftover(part) for part in relative.parts):
            continue
        files[relative.as_posix()] = path.read_bytes()
    return files


def _is_leftover(name: str) -> bool:
    return name.startswith(".") and any(m in name for m in (".staging-", ".retired-", ".tmp-"))


def leftovers(folder: Path) -> list[str]:
    """Return staging, retired and temporary entries the atomic writers left under `folder`."""
    marks = (".staging-", ".retired-", ".tmp-")
    return sorted(
        str(path.relative_to(folder))
        for path in folder.rglob(".*")
        if any(mark in path.name for mark in marks)
    )


def copy_tiny_model(target: Path) -> Path:
    """Copy the tiny-bert checkpoint to `target` and return it."""
    return Path(shutil.copytree(TINY_BERT, target))


def edit_weights(model_dir: Path, edit) -> None:
    """Rewrite `model_dir/model.safetensors` as edit(tensors)."""
    from safetensors.numpy import load_file, save_file

    path = model_dir / "model.safetensors"
    save_file(edit(load_file(str(path))), str(path))


def overflowing_model(target: Path, block: int = 1) -> Path:
    """Copy tiny-bert with block `block`'s MLP weights set huge, so its output overflows to Inf/NaN."""
    name = f"encoder.layer.{block}.intermediate.dense.weight"

    def plant(tensors):
        tensors[name] = np.full_like(tensors[name], 3e38)
        return tensors

    model = copy_tiny_model(target)
    edit_weights(model, plant)
    return model


def subprocess_env() -> dict[str, str]:
    """Environment for a `python -m generator.cli` child that imports this worktree's code."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def cli_command(*args) -> list[str]:
    """Return the argv of `modelatlas ARGS` run as a child process."""
    return [sys.executable, "-m", "generator.cli", *(str(a) for a in args)]


def run_cli_process(
    *args, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run `modelatlas ARGS` in a fresh Python process and wait for it (`env`: added variables)."""
    return subprocess.run(
        cli_command(*args),
        env={**subprocess_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
