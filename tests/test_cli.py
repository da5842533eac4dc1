"""The command line through Click's CliRunner: builds, stage commands, one-line errors."""

import re
import shutil
from pathlib import Path

import pytest
from cards import TINY_SHOWCASE_TEXTS, write_card
from click.testing import CliRunner

import generator
from generator.cli import main


def run(*args, cwd=None):
    runner = CliRunner()
    return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


def site_bytes(folder):
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and generator.__version__ in result.output


def test_strict_build_of_fixture_card_then_cached_rebuild(tmp_path):
    card = write_card(tmp_path / "cards")
    out, artifacts = tmp_path / "site", tmp_path / "artifacts"
    first = run("build", card, "--out", out, "--artifacts", artifacts, "--strict", "-q")
    assert first.exit_code == 0, first.output
    for page in (
        "index.html",
        "tiny-bert/index.html",
        "tiny-bert/attention.html",
        "tiny-bert/assets/vega-bundle.js",
        "tiny-bert/assets/atlas.js",
    ):
        assert (out / page).is_file(), page
    before = site_bytes(out)
    second = run("build", card, "--out", out, "--artifacts", artifacts)
    assert second.exit_code == 0
    assert "artifacts cached, site cached" in second.output
    for stage in ("extract", "analyze", "render"):  # where the time went, stage by stage
        assert re.search(rf"^  {stage}: cached \(\d+\.\d s to check\)$", second.output, re.M)
    assert site_bytes(out) == before


def test_extract_then_render_commands(tmp_path):
    card = write_card(tmp_path / "cards")
    artifacts, out = tmp_path / "artifacts", tmp_path / "site"
    extracted = run("extract", card, "--artifacts", artifacts)
    assert extracted.exit_code == 0 and "artifacts written" in extracted.output
    assert (artifacts / "tiny-bert" / "manifest.json").is_file()
    rendered = run("render", card, "--artifacts", artifacts, "--out", out)
    assert rendered.exit_code == 0 and "site written" in rendered.output
    assert (out / "tiny-bert" / "attention.html").is_file()
    assert (out / "index.html").is_file()


def test_render_without_artifacts_is_one_clear_line(tmp_path):
    card = write_card(tmp_path / "cards")
    result = run("render", card, "--artifacts", tmp_path / "none", "--out", tmp_path / "site")
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "modelatlas extract" in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_length": "long"}, r"max_length"),
        ({"poolng": "mean"}, r"unknown key 'poolng' \(did you mean 'pooling'\?\)"),
        ({"model": "./no-such-folder"}, r"no-such-folder"),
    ],
)
def test_bad_card_exits_non_zero_with_one_line(tmp_path, settings, message):
    card = write_card(tmp_path / "cards", **settings)
    out = tmp_path / "site"
    result = run("build", card, "--out", out, "--artifacts", tmp_path / "artifacts")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and re.search(message, lines[0]), result.output
    assert not out.exists()


def test_missing_card_file(tmp_path):
    result = run("build", tmp_path / "nope.md", "--out", tmp_path / "site")
    assert result.exit_code != 0 and "nope.md" in result.output


def test_strict_failure_keeps_previous_site(tiny_build, tmp_path):
    _, built_out, built_artifacts = tiny_build  # the shared build: copied, then built over
    out = Path(shutil.copytree(built_out, tmp_path / "site"))
    artifacts = Path(shutil.copytree(built_artifacts, tmp_path / "artifacts"))
    before = site_bytes(out)
    card = write_card(tmp_path / "cards", showcase_texts=TINY_SHOWCASE_TEXTS, max_length=8)
    failed = run("build", card, "--out", out, "--artifacts", artifacts, "--strict", "-q")
    assert failed.exit_code == 2 and "truncated" in failed.output
    assert site_bytes(out) == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_short_help_option():
    for args in (("-h",), ("build", "-h"), ("new-card", "-h")):
        result = run(*args)
        assert result.exit_code == 0 and "Usage: " in result.output, args
        assert "Options:" in result.output, args
