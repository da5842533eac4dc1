"""`serve`'s change detection: modification-time polling vs watchfiles (run by hand).

`python -m benchmarks.watchers [--card CARD] [--trials 20] [--idle 30]` copies CARD (default:
model_cards/all-minilm-l6-v2.md) into a scratch folder and watches what `modelatlas serve`
watches for it (the card, its corpus, its checkpoint folder, every template and asset). For each
method it reports the latency from a card edit to its detection (median, min and max over the
trials) and the CPU time the watcher uses while nothing changes (per minute of wall time). Both
are `PreviewServer`'s own loop: `notify=False` compares modification times every second (the
file list refreshed each time); `notify=True` (the default) waits for watchfiles' notifications
from the folders of those files, comparing also every 5 s in case one was missed.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.runner import ROOT
from generator.serve import PreviewServer, watched_files

DEFAULT_CARD = ROOT / "model_cards" / "all-minilm-l6-v2.md"


def edit(card: Path, trial: int) -> float:
    """Append a line to the card's prose; return the time of the write."""
    with card.open("a", encoding="utf-8") as handle:
        handle.write(f"\nEdit {trial}.\n")
    return time.perf_counter()


def idle_cpu(seconds: float) -> float:
    """Return this process's CPU seconds per minute over `seconds` of doing nothing itself."""
    start = time.process_time()
    time.sleep(seconds)
    return (time.process_time() - start) * 60.0 / seconds


def measure(card: Path, trials: int, idle: float, *, notify: bool) -> dict:
    """Latency and idle CPU of PreviewServer's watcher, on a server that serves nothing."""
    noticed = threading.Event()
    seen: list[float] = []

    def rebuild() -> None:
        seen.append(time.perf_counter())
        noticed.set()

    server = PreviewServer(
        card.parent / "site", rebuild, lambda: watched_files([card], None), port=0, notify=notify
    )
    server.httpd.server_close()  # only the watcher is measured
    server.httpd.serve_forever = lambda: None
    server.start()
    time.sleep(1.0)  # let a notifying watcher register its folders
    try:
        cpu = idle_cpu(idle)
        latencies = []
        for trial in range(trials):
            noticed.clear()
            written = edit(card, trial)
            if not noticed.wait(10):
                raise RuntimeError("an edit was not noticed within 10 s")
            latencies.append(seen[-1] - written)
            time.sleep(random.uniform(0.2, 1.2))  # edits fall at random phases of a poll
    finally:
        server._stop.set()
        for thread in server._threads:
            thread.join(10)
    return {"latencies": latencies, "cpu": cpu}


def report(name: str, result: dict, files: int) -> str:
    """Format one method's numbers as one line."""
    latencies = sorted(result["latencies"])
    return (
        f"{name}: {files} files; edit-to-detection median {statistics.median(latencies) * 1e3:.0f} ms,"
        f" min {latencies[0] * 1e3:.0f} ms, max {latencies[-1] * 1e3:.0f} ms"
        f" ({len(latencies)} edits); idle CPU {result['cpu'] * 1e3:.1f} ms per minute"
    )


def main() -> None:
    """Run both measurements and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--card", type=Path, default=DEFAULT_CARD)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--idle", type=float, default=30.0, help="idle seconds measured")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        card = Path(scratch) / args.card.name
        shutil.copy(args.card, card)
        files = len(watched_files([card], None))
        polled = measure(card, args.trials, args.idle, notify=False)
        print(report("polling every 1 s", polled, files))
        notified = measure(card, args.trials, args.idle, notify=True)
        print(report("watchfiles notifications (+ 5 s safety poll)", notified, files))


if __name__ == "__main__":
    main()
