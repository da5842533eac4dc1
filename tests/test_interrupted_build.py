"""Interrupted and damaged builds lose nothing: killed builds, half-done swaps, corrupt arrays.

A build writes each folder next to its destination and swaps it in at the end (generator.atomic).
These tests kill real `modelatlas build` processes with SIGKILL mid-way, check that the previous
site and artifacts are intact and still open cleanly in Chromium, and that the next build removes
what the killed one left behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from browser_support import file_url, open_page
from robust_support import (
    cli,
    cli_command,
    leftovers,
    output_lines,
    subprocess_env,
    tree_bytes,
)

from generator.artifacts import open_artifacts
from generator.atomic import recover, staged_folder
from generator.render.pages import PAGES

NAME = "tiny-bert"


@pytest.fixture
def build(tiny_build, tmp_path):
    """A private copy of the shared tiny-BERT build: (card, out, artifacts, site and artifact bytes)."""
    card, out, artifacts = tiny_build
    shutil.copytree(out, tmp_path / "site")
    shutil.copytree(artifacts, tmp_path / "artifacts")
    out, artifacts = tmp_path / "site", tmp_path / "artifacts"
    return card, out, artifacts, tree_bytes(out), tree_bytes(artifacts / NAME)


def dead_pid() -> int:
    """Return the id of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def assert_site_opens_clean(page, out: Path) -> None:
    open_page(page, file_url(out / "index.html"), expect_charts=False).assert_clean()
    for item in PAGES:
        open_page(page, file_url(out / NAME / item.filename)).assert_clean()


def kill_when(process: subprocess.Popen, ready, timeout: float = 300) -> None:
    """SIGKILL `process` as soon as ready() is true; fail if it finished first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"the build finished (exit {process.returncode}) before it was killed")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the build never reached the point where it is killed")
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL


def assert_next_build_cleans_up(card, out, artifacts, site_before, artifacts_before) -> None:
    result = cli("build", card, "--out", out, "--artifacts", artifacts)
    assert result.exit_code == 0, result.output
    assert f"{NAME}: artifacts cached, site cached" in result.output
    assert leftovers(out) == [] and leftovers(artifacts) == []
    assert tree_bytes(out) == site_before
    assert tree_bytes(artifacts / NAME) == artifacts_before


def test_build_killed_during_extraction_keeps_previous_results(build, page, tmp_path):
    card, out, artifacts, site_before, artifacts_before = build
    args = ("build", card, "--out", out, "--artifacts", artifacts, "--force", "-q")
    with open(tmp_path / "stderr.txt", "wb") as stderr:
        process = subprocess.Popen(cli_command(*args), env=subprocess_env(), stderr=stderr)
        # Arrays are opened in the staging folder before the first batch runs: kill mid-extraction.
        kill_when(process, lambda: any(artifacts.glob(f".{NAME}.staging-*/**/*.npy")))

    assert leftovers(artifacts), "the killed build should have left its staging folder"
    assert tree_bytes(artifacts / NAME) == artifacts_before
    open_artifacts(artifacts / NAME)  # every array still matches its recorded hash
    assert tree_bytes(out) == site_before
    assert_site_opens_clean(page, out)
    assert_next_build_cleans_up(card, out, artifacts, site_before, artifacts_before)


# Runs the CLI with swap_in paused just before the site folder is swapped in, so the kill lands
# at a known point: every page written into the staging folder, none swapped in yet.
PAUSED_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import generator.atomic as atomic

    out, marker = Path(sys.argv[1]), Path(sys.argv[2])
    original = atomic.swap_in

    def paused(staging, final):
        if final.parent == out:
            marker.write_text(str(staging))
            time.sleep(600)
        original(staging, final)

    atomic.swap_in = paused
    from generator.cli import main
    main(sys.argv[3:])
    """
)


def test_build_killed_before_the_site_is_swapped_in_keeps_previous_site(build, page, tmp_path):
    card, out, artifacts, site_before, artifacts_before = build
    marker = tmp_path / "paused"
    args = ("build", card, "--out", out, "--artifacts", artifacts, "--force", "-q")
    command = [sys.executable, "-c", PAUSED_CHILD, str(out), str(marker), *map(str, args)]
    with open(tmp_path / "stderr.txt", "wb") as stderr:
        process = subprocess.Popen(command, env=subprocess_env(), stderr=stderr)
        kill_when(process, marker.is_file)

    staging = Path(marker.read_text())
    assert staging.is_dir() and (staging / "index.html").is_file()
    assert tree_bytes(out, leftovers=False) == site_before
    assert tree_bytes(artifacts / NAME) == artifacts_before  # the new artifacts are identical
    assert_site_opens_clean(page, out)
    assert_next_build_cleans_up(card, out, artifacts, site_before, artifacts_before)


def test_swap_cut_between_its_renames_is_undone_by_the_next_build(build):
    """The fallback swap renames twice; a kill in between leaves only `.NAME.retired-PID`."""
    card, out, artifacts, site_before, artifacts_before = build
    pid = dead_pid()
    for final in (out / NAME, artifacts / NAME):
        shutil.copytree(final, final.with_name(f".{NAME}.staging-{pid}-x1y2z3"))
        final.rename(final.with_name(f".{NAME}.retired-{pid}"))
    assert not (out / NAME).exists() and not (artifacts / NAME).exists()
    assert_next_build_cleans_up(card, out, artifacts, site_before, artifacts_before)


def test_corrupt_array_is_reextracted_never_rendered(build):
    card, out, artifacts, site_before, artifacts_before = build
    target = artifacts / NAME / "showcase" / "attentions.npy"
    data = bytearray(target.read_bytes())
    data[-100:] = bytes(100)  # zero the last weights: still a valid .npy, wrong content
    target.write_bytes(bytes(data))
    assert np.load(target).shape  # numpy alone would happily read it

    render = cli("render", card, "--out", out, "--artifacts", artifacts, "--force")
    assert render.exit_code == 2 and len(output_lines(render)) == 1, render.output
    assert "damaged (showcase/attentions)" in render.output and "--force" in render.output
    assert tree_bytes(out) == site_before

    result = cli("build", card, "--out", out, "--artifacts", artifacts)
    assert result.exit_code == 0, result.output
    assert "WARNING" in result.output and "damaged" in result.output
    assert f"{NAME}: extracted" in result.output
    assert tree_bytes(artifacts / NAME) == artifacts_before
    assert tree_bytes(out) == site_before
    assert leftovers(out) == [] and leftovers(artifacts) == []


def test_truncated_array_is_detected(build):
    card, out, artifacts, site_before, artifacts_before = build
    target = artifacts / NAME / "corpus" / "token_lengths.npy"
    target.write_bytes(target.read_bytes()[:-8])
    result = cli("build", card, "--out", out, "--artifacts", artifacts)
    assert result.exit_code == 0 and f"{NAME}: extracted" in result.output, result.output
    assert tree_bytes(artifacts / NAME) == artifacts_before
    assert tree_bytes(out) == site_before


# --- generator.atomic on its own ----------------------------------------------------------------


def test_recover_removes_leftovers_of_dead_writers_only(tmp_path):
    final = tmp_path / "model"
    final.mkdir()
    (final / "kept.txt").write_text("current")
    dead = dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = [
            tmp_path / f".model.staging-{dead}-abc123",
            tmp_path / ".model.staging-oldstyle",
            tmp_path / f".model.retired-{dead}",
        ]
        for folder in stale:
            folder.mkdir()
        stale_file = tmp_path / f".model.tmp-{dead}"
        stale_file.write_text("partial")
        running = tmp_path / f".model.staging-{live.pid}-def456"
        running.mkdir()
        other = tmp_path / f".other.staging-{dead}-abc"
        other.mkdir()

        handled = recover(final)
        assert sorted(handled) == sorted(p.name for p in [*stale, stale_file])
        assert not any(p.exists() for p in [*stale, stale_file])
        assert running.is_dir(), "a live build's staging folder must be left alone"
        assert other.is_dir(), "leftovers of other destinations are theirs to clean"
        assert (final / "kept.txt").read_text() == "current"
    finally:
        live.kill()
        live.wait()


def test_recover_restores_a_retired_folder_when_the_destination_is_gone(tmp_path):
    final = tmp_path / "model"
    retired = tmp_path / f".model.retired-{dead_pid()}"
    retired.mkdir()
    (retired / "page.html").write_text("previous")
    recover(final)
    assert (final / "page.html").read_text() == "previous" and not retired.exists()


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
def test_staged_folder_swaps_in_and_leaves_nothing(tmp_path, monkeypatch, exchange):
    import generator.atomic as atomic

    if not exchange:
        monkeypatch.setattr(atomic, "exchange", lambda a, b: False)
    final = tmp_path / "model"
    for version in ("one", "two"):
        with staged_folder(final) as staging:
            (staging / "version.txt").write_text(version)
        assert (final / "version.txt").read_text() == version
        assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
