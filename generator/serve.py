"""`modelatlas serve`: a local preview server that rebuilds the site when a card or template changes.

The server is the standard library's `http.server`, bound to 127.0.0.1 by default, serving the
site folder. With watching on, a background thread polls the modification times of the cards
and of every template and asset once a second; on a change it rebuilds through
`generator.build.build_cards` (stages whose inputs are unchanged are skipped, so a prose edit
only re-renders). A failed rebuild is logged as one line and the previous site keeps being
served: builds write into staging folders and swap them in only on success.
"""

from __future__ import annotations

import functools
import http.server
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from generator.errors import AtlasError
from generator.options import BuildOptions

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0


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

    def log_message(self, format, *args) -> None:  # noqa: A002 - stdlib signature
        """Log requests at debug level instead of printing them."""
        log.debug("%s - %s", self.address_string(), format % args)


def watched_files(card_paths: list[Path], cards_dir: Path | None) -> list[Path]:
    """Return the files whose changes trigger a rebuild: cards (all of cards_dir's) and templates."""
    from generator.card import find_cards
    from generator.render.environment import templates_dir

    files = list(card_paths)
    if cards_dir is not None and cards_dir.is_dir():
        files += find_cards(cards_dir)
    files += [p for p in templates_dir().rglob("*") if p.is_file()]
    return sorted(set(files))


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
        interval: seconds between polls.
    """

    def __init__(
        self,
        out_dir: Path,
        rebuild: Callable[[], object] | None = None,
        watch: Callable[[], list[Path]] | None = None,
        host: str = "127.0.0.1",
        port: int = 8000,
        interval: float = POLL_SECONDS,
    ):
        self.out_dir = Path(out_dir)
        self.rebuild = rebuild
        self.watch = watch
        self.interval = interval
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
        log.info("rebuilt in %.1f s", time.perf_counter() - started)
        return True

    def _poll(self, before: dict[Path, int]) -> None:
        """Rebuild whenever a watched file's modification time differs from `before`."""
        while not self._stop.wait(self.interval):
            try:
                now = snapshot(self.watch()) if self.watch else {}
            except Exception as error:  # e.g. a cards folder removed while watching
                log.error("cannot list watched files: %s", error)
                continue
            changed = sorted(str(p) for p in set(now) | set(before) if now.get(p) != before.get(p))
            if changed:
                shown = ", ".join(changed[:3]) + (" ..." if len(changed) > 3 else "")
                log.info("changed: %s; rebuilding", shown)
                self.build_once()  # edits made meanwhile differ from `now`: seen next poll
            before = now

    def start(self) -> PreviewServer:
        """Serve (and watch, when rebuild and watch are set) in background threads."""
        serve = threading.Thread(target=self.httpd.serve_forever, name="atlas-serve", daemon=True)
        serve.start()
        self._threads.append(serve)
        if self.rebuild is not None and self.watch is not None:
            # The baseline is taken before start() returns: an edit made right after it is a change.
            baseline = snapshot(self.watch())
            poll = threading.Thread(
                target=self._poll, args=(baseline,), name="atlas-watch", daemon=True
            )
            poll.start()
            self._threads.append(poll)
        return self

    def stop(self) -> None:
        """Stop watching and serving; wait for the threads."""
        self._stop.set()
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
) -> Callable[[], object]:
    """Return a function that reloads the cards (the given ones, or all in cards_dir) and builds them.

    `options` are the build's flags; progress bars are always off (rebuilds are logged).
    """
    options = BuildOptions.of(options, progress=False)

    def rebuild():
        from generator.build import build_cards
        from generator.card import find_cards, load_card

        paths = list(card_paths) or (find_cards(cards_dir) if cards_dir else [])
        if not paths:
            raise AtlasError(f"no model cards in {cards_dir}/; add a NAME.md card")
        cards = [load_card(path) for path in paths]
        return build_cards(cards, out_dir, artifacts, options)

    return rebuild
