"""`modelatlas serve`: serves the site, rebuilds on changes, reloads open pages, survives errors."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cards import TINY_BERT, small_corpus, write_card

from generator import live_reload
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
    base_url = "https://example.org/atlas"
    rebuild = card_rebuilder([card], None, out, artifacts, strict=True, base_url=base_url)
    server = PreviewServer(out, rebuild, lambda: watched_files([card], None), port=0)
    assert server.url.startswith("http://127.0.0.1:")
    assert server.build_once() and server.rebuilds == 1
    assert f"{base_url}/tiny-bert/" in (out / "tiny-bert" / "card-snippet.md").read_text()
    with server:
        overview = server.url + "tiny-bert/index.html"
        served = fetch(overview)
        assert "First prose." in served
        # the reload tag is added to what is served, never to the built page
        on_disk = (out / "tiny-bert" / "index.html").read_text(encoding="utf-8")
        assert live_reload.PREFIX not in on_disk
        assert served == live_reload.inject(on_disk.encode(), 1).decode()
        assert f'src="{live_reload.PREFIX}reload.js?g=1"' in fetch(server.url)  # the site index
        assert "Tiny BERT" in fetch(server.url)
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


@pytest.mark.parametrize("notify", [True, False], ids=["notify", "poll"])
def test_edit_right_after_start_is_seen(tmp_path, notify):
    """The watcher's baseline is taken before start() returns, so an immediate edit counts."""
    watched = tmp_path / "card.md"
    watched.write_text("one", encoding="utf-8")
    calls = []
    server = PreviewServer(
        tmp_path, lambda: calls.append(1), lambda: [watched], port=0, interval=0.05, notify=notify
    )
    with server:
        touch_later(watched, "two")
        assert wait_for(lambda: server.rebuilds == 1, timeout=30), "the edit was missed"
        assert calls == [1]
        touch_later(watched, "three")
        assert wait_for(lambda: server.rebuilds == 2, timeout=30), "the second edit was missed"
    assert calls == [1, 1]


def test_waiting_page_is_answered_on_rebuild(tmp_path):
    """wait.js is held until the next successful build, then names the new generation."""
    (tmp_path / "index.html").write_text("<html><body>x</body></html>", encoding="utf-8")
    server = PreviewServer(tmp_path, lambda: None, None, port=0)
    assert server.build_once()
    with server:
        assert fetch(server.url + "__modelatlas_live__/wait.js?since=0") == (
            "window.__modelatlasLive(1);\n"
        )
        answers = []
        waiting = threading.Thread(
            target=lambda: answers.append(fetch(server.url + "__modelatlas_live__/wait.js?since=1"))
        )
        waiting.start()
        time.sleep(0.5)
        assert not answers, "answered before any rebuild"
        assert server.build_once()
        waiting.join(30)
        assert answers == ["window.__modelatlasLive(2);\n"]
        assert "__modelatlasLive" in fetch(server.url + "__modelatlas_live__/reload.js")
        page = fetch(server.url)
        assert page.index("reload.js?g=2") < page.index("</body>")


def test_no_watch_serves_files_as_built(tmp_path):
    (tmp_path / "index.html").write_text("<html><body>x</body></html>", encoding="utf-8")
    with PreviewServer(tmp_path, port=0) as server:
        assert fetch(server.url) == "<html><body>x</body></html>"
        with pytest.raises(urllib.error.HTTPError):
            fetch(server.url + "__modelatlas_live__/reload.js")


def test_inject_places_the_tag_before_the_last_body_end():
    html = b"<body><pre>&lt;/body&gt;</pre></BODY >\n"
    assert live_reload.inject(html, 3) == (
        b'<body><pre>&lt;/body&gt;</pre><script src="/__modelatlas_live__/reload.js?g=3">'
        b"</script>\n</BODY >\n"
    )
    assert live_reload.inject(b"<p>x", 0).startswith(b"<p>x<script ")


def test_serve_watches_templates_and_new_cards(tmp_path):
    cards = tmp_path / "cards"
    first = write_card(cards)
    files = watched_files([], cards)
    assert first in files and any(p.name == "base.html" for p in files)
    second = write_card(cards, name="other")
    assert second in watched_files([], cards)


def test_serve_watches_the_corpus_and_checkpoint_folders(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(TINY_BERT, model)
    (model / "epoch-1").mkdir()
    shutil.copy(TINY_BERT / "config.json", model / "epoch-1" / "config.json")
    corpus = small_corpus(tmp_path / "data", ["one text", "another text"])
    card = write_card(
        tmp_path / "cards",
        model=str(model),
        corpus=str(corpus),
        label_field=None,
        split_field=None,
        checkpoints=[{"name": "epoch-1", "model": str(model / "epoch-1")}],
    )
    files = watched_files([card], None)
    assert card in files and corpus.resolve() in {p.resolve() for p in files}
    resolved = {p.resolve() for p in files}
    assert (model / "model.safetensors").resolve() in resolved
    assert (model / "epoch-1" / "config.json").resolve() in resolved
    card.write_text("---\nname: [broken\n---\n", encoding="utf-8")  # being edited
    assert card in watched_files([card], None)


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
    # faulthandler: a SIGABRT makes the server print every thread's stack (see below)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1"}
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
    # The server starts with Ctrl-C's default action, as a command typed in a terminal does,
    # even when this run ignores SIGINT (a background job of a shell without job control, e.g.
    # `make test &` in a script): an ignored SIGINT is inherited, and Python then never raises
    # KeyboardInterrupt (which made this test hang there). A handler is not inherited: exec
    # resets it to the default.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line, line
        assert "Tiny BERT" in fetch(f"http://127.0.0.1:{port}/tiny-bert/index.html")
    finally:
        process.send_signal(signal.SIGINT)  # as Ctrl-C
        try:
            status = process.wait(timeout=20)
        except subprocess.TimeoutExpired:  # show where it hangs
            process.send_signal(signal.SIGABRT)
            stacks = process.communicate(timeout=20)[0]
            pytest.fail(f"serve did not stop within 20 s of Ctrl-C; its threads:\n{stacks}")
    assert status == 130


def test_serve_takes_the_build_options():
    """Every option of `build` works with `serve`, except joining a multi-host run."""
    from generator.cli import main

    def options(name):
        return {o for p in main.commands[name].params for o in p.opts if o.startswith("--")}

    # a multi-host run and a card-less checkpoint build are for `build`, not for a preview
    assert options("build") - options("serve") == {"--distributed", "--model", "--corpus"}


@pytest.mark.browser
def test_open_page_reloads_after_a_card_edit(served_card, page):
    """Edit the card's prose: the open page shows the new prose with no manual reload."""
    from browser_support import open_page
    from playwright.sync_api import expect

    card, out, artifacts = served_card
    rebuild = card_rebuilder([card], None, out, artifacts)
    server = PreviewServer(out, rebuild, lambda: watched_files([card], None), port=0)
    assert server.build_once()
    with server:
        overview = server.url + "tiny-bert/index.html#example=1"
        open_page(page, overview, timeout_ms=120_000).assert_clean()  # the CSP allows the script
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "response",
            lambda r: (
                errors.append(f"HTTP {r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico")  # Chromium's own probe
                else None
            ),
        )
        page.on(
            "console",
            lambda m: (
                errors.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource")  # above
                else None
            ),
        )
        touch_later(card, card.read_text().replace("First prose.", "Second prose."))
        expect(page.get_by_text("Second prose.")).to_be_visible(timeout=300_000)
        page.wait_for_load_state("load", timeout=120_000)
        navigation = page.evaluate("performance.getEntriesByType('navigation')[0].type")
        assert navigation == "reload" and page.url == overview  # by itself, fragment kept
        assert server.rebuilds == 2
        expect(page.locator(".vega-embed svg, .vega-embed canvas").first).to_be_visible(
            timeout=120_000
        )
        assert not errors, errors
