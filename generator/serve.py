"""`modelatlas serve`: a local preview server that rebuilds the site when its inputs change.

The server is the standard library's `http.server`, bound to 127.0.0.1 by default, serving the
site folder. With watching on, a background thread compares the modification times of the
cards, their corpus files, every file of their local checkpoint folders, and every template and
asset whenever the OS reports a change in their folders (through `watchfiles`; also every
SAFETY_SECONDS, in case a notification was missed) or, with `notify=False`, once a second; on a
change it rebuilds through `generator.build.build_cards` (stages whose inputs are unchanged are
skipped, so a prose edit only re-renders), and open pages reload themselves
(generator/live_reload.py); benchmarks/watchers.py measures both ways of noticing. A failed
rebuild is logged as one line and the previous site keeps being served: builds write into
staging folders and swap them in only on success.
"""

from __future__ import annotations

import functools
import http.server
import logging
import os
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from generator import live_reload
from generator.errors import AtlasError
from generator.options import BuildOptions

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
SAFETY_SECONDS = 5.0  # with notifications: compare anyway after this long without one


class ServeError(AtlasError):
    """The preview server cannot start."""


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files, never cached (a rebuilt page shows on reload); requests logged at debug."""

    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".json": "application/json",
        ".svg": "image/svg+xml",
        ".md": "text/markdown; charset=utf-8",
    }

    def end_headers(self) -> None:
        """Disable caching."""
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        """Serve live-reload requests and HTML pages with the reload tag, when live; else files."""
        generations = getattr(self.server, "generations", None)
        if generations is None:
            return super().do_GET()
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith(live_reload.PREFIX):
            return self._send_live(url.path[len(live_reload.PREFIX) :], url.query, generations)
        page = Path(self.translate_path(self.path))
        if url.path.endswith("/"):
            page = page / "index.html"
        if page.suffix == ".html" and page.is_file():
            html = live_reload.inject(page.read_bytes(), generations.value)
            return self._send(html, "text/html; charset=utf-8")
        return super().do_GET()

    def _send_live(self, name: str, query: str, generations: live_reload.Generations) -> None:
        """Answer reload.js (the client) or wait.js (held until the next build)."""
        if name == live_reload.SCRIPT:
            return self._send(live_reload.client_script(), "text/javascript")
        since = live_reload.parse_since(query)
        if name != live_reload.WAIT or since is None:
            return self.send_error(404)
        return self._send(live_reload.wait_answer(generations.wait_past(since)), "text/javascript")

    def _send(self, body: bytes, content_type: str) -> None:
        """Send a 200 response with `body`."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # noqa: A002 - stdlib signature
        """Log requests at debug level instead of printing them."""
        log.debug("%s - %s", self.address_string(), format % args)


def watched_files(card_paths: list[Path], cards_dir: Path | None) -> list[Path]:
    """Return the files whose changes trigger a rebuild.

    Those are the cards (the given ones, else all of cards_dir's), the corpus file and every
    file of the local checkpoint folders each card names, and every template and asset.
    """
    from generator.card import find_cards
    from generator.render.environment import templates_dir

    files = list(card_paths)
    if not files and cards_dir is not None and cards_dir.is_dir():
        files += find_cards(cards_dir)
    for card in list(files):
        files += card_inputs(card)
    files += [p for p in templates_dir().rglob("*") if p.is_file()]
    return sorted(set(files))


def card_inputs(card_path: Path) -> list[Path]:
    """Return a card's corpus file and the files of its local checkpoint folders.

    A card that does not load (being edited) names none: its own file is watched anyway.
    """
    from generator.card import load_card

    try:
        card = load_card(card_path)
        corpus = card.corpus_path()
        folders = [card.model_path()]
        folders += [card.checkpoint_model_path(c) for c in card.checkpoints]
    except AtlasError:
        return []
    files = [corpus] if corpus is not None else []
    for folder in folders:
        if folder is not None and folder.is_dir():
            files += [p for p in folder.rglob("*") if p.is_file()]
    return files


def watched_folders(files: list[Path]) -> list[Path]:
    """Return the existing folders holding `files` (where notifications come from), sorted."""
    return sorted({path.parent for path in files if path.parent.is_dir()})


def snapshot(files: list[Path]) -> dict[Path, int]:
    """Return each file's modification time in ns (-1 when it is missing)."""
    stamps = {}
    for path in files:
        try:
            stamps[path] = path.stat().st_mtime_ns
        except OSError:
            stamps[path] = -1
    return stamps


class PreviewServer:
    """Serve `out_dir` over HTTP and, when `rebuild` is given, rebuild on changes.

    Args:
        out_dir: the site folder to serve.
        rebuild: called (no arguments) to rebuild the site; None: serve only.
        watch: returns the files to watch (called on every poll, so new cards count).
        host, port: where to listen; port 0 picks a free port.
        interval: seconds between polls without notifications.
        live: make served pages reload after each successful build (default: when rebuilding).
        notify: wake on the OS's file notifications (watchfiles) instead of polling.
    """

    def __init__(
        self,
        out_dir: Path,
        rebuild: Callable[[], object] | None = None,
        watch: Callable[[], list[Path]] | None = None,
        host: str = "127.0.0.1",
        port: int = 8000,
        interval: float = POLL_SECONDS,
        *,
        live: bool | None = None,
        notify: bool = True,
    ):
        self.out_dir = Path(out_dir)
        self.rebuild = rebuild
        self.watch = watch
        self.interval = interval
        self.notify = notify
        self._folders: list[Path] = []  # with notify: the folders of the files last compared
        self.rebuilds = 0  # successful rebuilds since start
        self.failures = 0  # failed rebuilds since start
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.out_dir.mkdir(parents=True, exist_ok=True)
        handler = functools.partial(_Handler, directory=os.fspath(self.out_dir))
        try:
            self.httpd = http.server.ThreadingHTTPServer((host, port), handler)
        except OSError as error:
            raise ServeError(
                f"cannot listen on {host}:{port} ({error.strerror or error}); "
                "pass another --port or stop the program using it"
            ) from None
        self.httpd.daemon_threads = True
        live = rebuild is not None if live is None else live
        self.generations = live_reload.Generations()
        self.httpd.generations = self.generations if live else None

    @property
    def url(self) -> str:
        """Return the base URL, ending in '/'."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def build_once(self) -> bool:
        """Run one rebuild; log and count a failure instead of raising. Return success."""
        if self.rebuild is None:
            return True
        started = time.perf_counter()
        try:
            self.rebuild()
        except Exception as error:  # never let a build error stop the server
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            if isinstance(error, AtlasError):
                message = error.format_message().splitlines()[0]
            self.failures += 1
            self.last_error = message
            log.error("rebuild failed, still serving the previous site: %s", message)
            return False
        self.rebuilds += 1
        self.last_error = None
        self.generations.advance()
        log.info("rebuilt in %.1f s", time.perf_counter() - started)
        return True

    def _poll(self, before: dict[Path, int]) -> None:
        """Rebuild whenever a watched file's modification time differs from `before`."""
        for _ in self._wakeups():
            try:
                files = self.watch() if self.watch else []
            except Exception as error:  # e.g. a cards folder removed while watching
                log.error("cannot list watched files: %s", error)
                continue
            self._folders = watched_folders(files)
            now = snapshot(files)
            changed = sorted(str(p) for p in set(now) | set(before) if now.get(p) != before.get(p))
            if changed:
                shown = ", ".join(changed[:3]) + (" ..." if len(changed) > 3 else "")
                log.info("changed: %s; rebuilding", shown)
                self.build_once()  # edits made meanwhile differ from `now`: seen next time
            before = now

    def _wakeups(self):
        """Yield whenever watched files may have changed, until stopped."""
        if not self.notify:
            while not self._stop.wait(self.interval):
                yield
            return
        import watchfiles

        while not self._stop.is_set():
            folders = self._folders
            changes = watchfiles.watch(
                *folders,
                stop_event=self._stop,
                recursive=False,
                rust_timeout=int(SAFETY_SECONDS * 1000),
                yield_on_timeout=True,
                raise_interrupt=False,
            )
            for _ in changes:
                yield
                if self._folders != folders:  # a card now names another corpus or checkpoint
                    break

    def start(self) -> PreviewServer:
        """Serve (and watch, when rebuild and watch are set) in background threads."""
        serve = threading.Thread(target=self.httpd.serve_forever, name="atlas-serve", daemon=True)
        serve.start()
        self._threads.append(serve)
        if self.rebuild is not None and self.watch is not None:
            # The baseline is taken before start() returns: an edit made right after it is a change.
            files = self.watch()
            self._folders = watched_folders(files)
            baseline = snapshot(files)
            poll = threading.Thread(
                target=self._poll, args=(baseline,), name="atlas-watch", daemon=True
            )
            poll.start()
            self._threads.append(poll)
        return self

    def stop(self) -> None:
        """Stop watching and serving; wait for the threads."""
        self._stop.set()
        self.generations.close()
        if self._threads:  # shutdown() waits for serve_forever, which start() runs
            self.httpd.shutdown()
        self.httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=10)

    def __enter__(self) -> PreviewServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def card_rebuilder(
    card_paths: list[Path],
    cards_dir: Path | None,
    out_dir: Path,
    artifacts: Path,
    options: BuildOptions | None = None,
    *,
    prepare: Callable[[list], list] | None = None,
    **flags,
) -> Callable[[], object]:
    """Return a function that reloads the cards (the given ones, or all in cards_dir) and builds them.

    Args:
        card_paths: the cards to build; empty: every card in `cards_dir`, listed anew each time.
        cards_dir: the folder of cards used when `card_paths` is empty.
        out_dir: the site folder.
        artifacts: the artifact store.
        options: the build's flags (`BuildOptions`), with keyword `flags` set on top; progress
            bars are always off (rebuilds are logged), and `force` holds for the first
            successful build only (later edits rebuild what they change).
        prepare: applied to the loaded cards before each build (e.g. the --mesh setting).

    Returns:
        A function of no arguments that rebuilds and returns the build reports.
    """
    options = BuildOptions.of(options, progress=False, **flags)
    pending_force = [options.force]

    def rebuild():
        from generator.build import build_cards
        from generator.card import find_cards, load_card

        paths = list(card_paths) or (find_cards(cards_dir) if cards_dir else [])
        if not paths:
            raise AtlasError(f"no model cards in {cards_dir}/; add a NAME.md card")
        cards = [load_card(path) for path in paths]
        if prepare is not None:
            cards = prepare(cards)
        reports = build_cards(
            cards, out_dir, artifacts, BuildOptions.of(options, force=pending_force[0])
        )
        pending_force[0] = False
        return reports

    return rebuild
