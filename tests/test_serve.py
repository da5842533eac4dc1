"""`modelatlas serve`: serves the site, rebuilds on card changes, survives build errors."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cards import write_card

from generator.errors import AtlasError
from generator.serve import PreviewServer, ServeError, card_rebuilder, watched_files

ROOT = Path(__file__).resolve().parents[1]


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode("utf-8")


def wait_for(predicate, timeout=90.0, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def touch_later(path: Path, text: str) -> None:
    """Rewrite a file and make sure its mtime moves even on coarse-grained file systems."""
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


@pytest.fixture
def served_card(tiny_build, tmp_path):
    """A copy of the tiny card and its artifacts (extraction stays cached), and a site folder."""
    _, _, artifacts_root = tiny_build
    artifacts = tmp_path / "artifacts"
    shutil.copytree(artifacts_root, artifacts)
    card = write_card(tmp_path / "cards", prose="First prose.")
    return card, tmp_path / "site", artifacts


def test_serve_rebuilds_on_card_change_and_survives_errors(served_card, caplog):
    card, out, artifacts = served_card
    rebuild = card_rebuilder([card], None, out, artifacts)
    server = PreviewServer(out, rebuild, lambda: watched_files([card], None), port=0, interval=0.2)
    assert server.url.startswith("http://127.0.0.1:")
    assert server.build_once() and server.rebuilds == 1
    with server:
        overview = server.url + "tiny-bert/index.html"
        assert "First prose." in fetch(overview)
        assert "Tiny BERT" in fetch(server.url)  # the site index
        touch_later(card, card.read_text().replace("First prose.", "Second prose."))
        assert wait_for(lambda: "Second prose." in fetch(overview)), "no rebuild after the edit"
        # the page is swapped in before the rebuild counter moves: wait for both
        assert wait_for(lambda: server.rebuilds == 2) and server.failures == 0
        touch_later(card, card.read_text().replace("max_length: 64", "max_length: lots"))
        assert wait_for(lambda: server.failures == 1), "the broken card was not noticed"
        assert "max_length" in server.last_error and "\n" not in server.last_error
        assert "Second prose." in fetch(overview)  # the previous site is still served
        assert any("rebuild failed" in r.message for r in caplog.records)
        touch_later(card, card.read_text().replace("max_length: lots", "max_length: 64"))
        assert wait_for(lambda: server.rebuilds == 3 and server.last_error is None)
    with pytest.raises(OSError):
        fetch(overview)  # stopped


def test_edit_right_after_start_is_seen(tmp_path):
    """The watcher's baseline is taken before start() returns, so an immediate edit counts."""
    watched = tmp_path / "card.md"
    watched.write_text("one", encoding="utf-8")
    calls = []
    server = PreviewServer(
        tmp_path, lambda: calls.append(1), lambda: [watched], port=0, interval=0.05
    )
    with server:
        touch_later(watched, "two")
        assert wait_for(lambda: server.rebuilds == 1, timeout=10), "the edit was missed"
    assert calls == [1]


def test_serve_watches_templates_and_new_cards(tmp_path):
    cards = tmp_path / "cards"
    first = write_card(cards)
    files = watched_files([], cards)
    assert first in files and any(p.name == "base.html" for p in files)
    second = write_card(cards, name="other")
    assert second in watched_files([], cards)


def test_busy_port_is_one_line_error(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ServeError) as error:
            PreviewServer(tmp_path, port=port)
    assert (
        f"127.0.0.1:{port}" in error.value.format_message()
        and "--port" in error.value.format_message()
    )


def test_rebuilder_with_no_cards_is_an_atlas_error(tmp_path):
    (tmp_path / "cards").mkdir()
    with pytest.raises(AtlasError, match="no model cards"):
        card_rebuilder([], tmp_path / "cards", tmp_path / "site", tmp_path / "a")()


def test_serve_command_serves_until_interrupted(tiny_build):
    _, out, _ = tiny_build
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "generator.cli",
        "serve",
        "--out",
        str(out),
        "--port",
        str(port),
        "--no-watch",
    ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line, line
        assert "Tiny BERT" in fetch(f"http://127.0.0.1:{port}/tiny-bert/index.html")
    finally:
        process.send_signal(2)  # SIGINT, as Ctrl-C
        assert process.wait(timeout=20) == 0
