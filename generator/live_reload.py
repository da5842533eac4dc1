"""Live reload for `modelatlas serve`: served pages reload themselves after a rebuild.

Built pages carry nothing of this. While serving with watching on, the server adds one tag,
`<script src="/__modelatlas_live__/reload.js?g=G">`, before `</body>` of every HTML page it
sends (G: the site's generation, the count of successful builds, when the page was read). That
same-origin script (generator/data/live-reload.js) loads `wait.js?since=G` as a script element;
the server holds that request until the generation moves past G (or WAIT_SECONDS pass) and
answers `window.__modelatlasLive(N);`, and the page reloads when N differs from G. Scripts from
'self' are all the pages' Content-Security-Policy allows (connect-src is 'none', so neither
fetch nor EventSource could ask), and it is left unchanged: the preview runs under the policy
the published site has.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

PREFIX = "/__modelatlas_live__/"
SCRIPT = "reload.js"
WAIT = "wait.js"
WAIT_SECONDS = 20.0  # a held request is answered after this long even without a rebuild
_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)


class Generations:
    """The site's generation (successful builds so far), which waiting pages block on."""

    def __init__(self) -> None:
        self._value = 0
        self._closed = False
        self._changed = threading.Condition()

    @property
    def value(self) -> int:
        """Return the current generation."""
        with self._changed:
            return self._value

    def advance(self) -> None:
        """Count one more successful build and wake every waiting request."""
        with self._changed:
            self._value += 1
            self._changed.notify_all()

    def close(self) -> None:
        """Wake every waiting request for good (the server is stopping)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait_past(self, seen: int, timeout: float = WAIT_SECONDS) -> int:
        """Block until the generation differs from `seen` (or timeout, or close); return it."""
        with self._changed:
            self._changed.wait_for(lambda: self._value != seen or self._closed, timeout)
            return self._value


def inject(html: bytes, generation: int) -> bytes:
    """Return `html` with the live-reload script tag before its last `</body>` (else at the end)."""
    tag = f'<script src="{PREFIX}{SCRIPT}?g={generation}"></script>\n'.encode("ascii")
    matches = list(_BODY_END.finditer(html))
    if not matches:
        return html + tag
    at = matches[-1].start()
    return html[:at] + tag + html[at:]


def client_script() -> bytes:
    """Return the source of the live-reload script served at PREFIX + SCRIPT."""
    return (Path(__file__).resolve().parent / "data" / "live-reload.js").read_bytes()


def wait_answer(generation: int) -> bytes:
    """Return the body of a wait.js answer: a call naming the current generation."""
    return f"window.__modelatlasLive({generation});\n".encode("ascii")


def parse_since(query: str) -> int | None:
    """Return the `since` generation of a wait.js query string, or None when absent or bad."""
    match = re.search(r"(?:^|&)since=(-?\d+)(?:&|$)", query)
    return int(match.group(1)) if match else None
