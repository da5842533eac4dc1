"""Run a command and write its own CPU time and peak RSS to a JSON file: a small parent.

Usage: python -m benchmarks.launch REPORT.json -- COMMAND...

Linux counts the memory of the process that forked a child into that child's peak RSS (the
forked copy lives until exec), so a child forked by the large benchmark process would report
at least the benchmark's own size. Forked from this small launcher instead, the build's peak
RSS is its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def main(argv: list[str]) -> int:
    """Run argv[2:] (after REPORT and '--'); write its rusage to REPORT; return its exit code."""
    report, separator, *command = argv
    if separator != "--" or not command:
        raise SystemExit("usage: python -m benchmarks.launch REPORT.json -- COMMAND...")
    proc = subprocess.Popen(command)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    with open(report, "w", encoding="utf-8") as handle:
        json.dump(
            {"cpu_seconds": usage.ru_utime + usage.ru_stime, "max_rss_kb": usage.ru_maxrss},
            handle,
        )
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
