"""Reproducible output: the same card and inputs give byte-identical sites and artifacts.

Each comparison builds a second time in a fresh Python process into other --out and --artifacts
folders (so nothing is shared but the inputs: no compile cache, no analyses, no Vega bundle) and
compares every file byte for byte. The build writes no timestamps, host names or absolute output
paths, projections are seeded and JSON keys are sorted, so there is nothing to normalise away.
"""

from __future__ import annotations

import shutil

from cards import DEFAULT_CARD
from robust_support import cli, run_cli_process, tree_bytes


def assert_same_files(first: dict[str, bytes], second: dict[str, bytes], what: str) -> None:
    assert sorted(first) == sorted(second), f"{what}: different files"
    differing = [name for name in first if first[name] != second[name]]
    assert not differing, f"{what}: files differ byte-wise: {differing[:10]}"


def rebuild_in_fresh_process(card, tmp_path):
    """Build `card` again in a new process, with an empty user cache: every map and figure is
    made again, none read back."""
    out, artifacts = tmp_path / "site", tmp_path / "artifacts"
    args = ("build", card, "--out", out, "--artifacts", artifacts, "--strict")
    result = run_cli_process(*args, env={"MODELATLAS_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    return out, artifacts


def test_tiny_card_builds_byte_identically(tiny_build, tmp_path):
    card, out, artifacts = tiny_build
    out2, artifacts2 = rebuild_in_fresh_process(card, tmp_path)
    assert_same_files(tree_bytes(out), tree_bytes(out2), "site")
    assert_same_files(tree_bytes(artifacts), tree_bytes(artifacts2), "artifacts")


def test_forced_rebuild_in_place_changes_no_byte(tiny_build, tmp_path, monkeypatch):
    card, out, artifacts = tiny_build
    out2, artifacts2 = tmp_path / "site", tmp_path / "artifacts"
    shutil.copytree(out, out2)
    shutil.copytree(artifacts, artifacts2)
    assert cli("build", card, "--out", out2, "--artifacts", artifacts2, "-q").exit_code == 0
    site, stored = tree_bytes(out2), tree_bytes(artifacts2)
    monkeypatch.setenv("MODELATLAS_CACHE", str(tmp_path / "cache"))  # maps and figures made again
    result = cli("build", card, "--out", out2, "--artifacts", artifacts2, "--force", "-q")
    assert result.exit_code == 0, result.output
    assert_same_files(site, tree_bytes(out2), "site")
    assert_same_files(stored, tree_bytes(artifacts2), "artifacts")


def test_default_card_builds_byte_identically(default_build, tmp_path):
    _, out, artifacts = default_build
    out2, artifacts2 = rebuild_in_fresh_process(DEFAULT_CARD, tmp_path)
    assert_same_files(tree_bytes(out), tree_bytes(out2), "site")
    assert_same_files(tree_bytes(artifacts), tree_bytes(artifacts2), "artifacts")
