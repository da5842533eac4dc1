"""Where a build's time went: `ARTIFACTS/NAME/timings.json`, one section per stage.

Sections (seconds are wall-clock; `compile_seconds` is JAX tracing + compilation within them):
  extract   {seconds, compile_seconds,
             steps: [{step, seconds, compile_seconds, peak_rss_bytes, parts?}
                     or, for a step run in a background thread, {step, seconds,
                     compile_seconds, cpu_seconds, background: true}],
             throughput_flops, estimates: [{step, budget, seconds}]}  or {skipped, seconds}
  analyze   {seconds, analyses: [{analysis, seconds}]}                  or {skipped, seconds}
  render    {seconds, parts: [{part, seconds}], figures}                or {skipped, seconds}
A stage that ran also records `peak_rss_bytes`: the process's resident high-water mark (VmHWM)
when it ended, monotone over the stages of one process; a step's is its own peak
(generator/peak_memory.py).
Each stage rewrites its own section when it runs; a stage whose inputs were unchanged records
{skipped, seconds, last_run}, `last_run` being its section from the last time it ran. Times
differ from build to build, so they live beside the manifest, not in it: the artifacts stay
byte-identical for the same inputs.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

from generator.peak_memory import high_water_mark

TIMINGS = "timings.json"
STAGES = ("extract", "analyze", "render")


def read_timings(folder: Path) -> dict:
    """Return the recorded sections of an artifact folder ({} when none or unreadable)."""
    try:
        return json.loads((folder / TIMINGS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def record_stage(folder: Path, stage: str, record: dict) -> None:
    """Replace `stage`'s section of `folder/timings.json` (written atomically)."""
    if not folder.is_dir():
        return
    timings = read_timings(folder)
    if not record.get("skipped"):
        record = {**record, "peak_rss_bytes": high_water_mark()}
    if record.get("skipped") and stage in timings:  # keep where the time went when it last ran
        previous = timings[stage]
        last = previous.get("last_run") if previous.get("skipped") else previous
        if last:
            record = {**record, "last_run": last}
    timings[stage] = record
    staging = folder / f".{TIMINGS}.{os.getpid()}.tmp"
    staging.write_text(json.dumps(timings, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(staging, folder / TIMINGS)


class PartTimer:
    """Times named parts of a stage: `with timer.part("figures"): ...`."""

    def __init__(self, key: str = "part"):
        self.key = key
        self.parts: list[dict] = []
        self.started = time.perf_counter()

    @contextmanager
    def part(self, name: str):
        """Time the block as part `name`."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.parts.append({self.key: name, "seconds": round(time.perf_counter() - started, 3)})

    def elapsed(self) -> float:
        """Seconds since the timer was made."""
        return round(time.perf_counter() - self.started, 3)


def _note_list(record: dict, compiled: str = "") -> list[str]:
    """Return ["compile X", "peak Y GB"] from a record's compile seconds and peak RSS."""
    notes = [compiled] if compiled else []
    if record.get("background"):
        notes.append("in the background")
    if not compiled and record.get("compile_seconds", 0) >= 0.05:
        notes.append(f"compile {record['compile_seconds']:.1f}")
    if record.get("peak_rss_bytes"):
        notes.append(f"peak {record['peak_rss_bytes'] / 1e9:.2f} GB")
    return notes


def _notes(record: dict, compiled: str = "") -> str:
    """Return " (compile X, peak Y GB)" from a record's compile seconds and peak RSS, or ""."""
    notes = _note_list(record, compiled)
    return f" ({', '.join(notes)})" if notes else ""


def _items(record: dict, key: str, name: str) -> str:
    return ", ".join(f"{item[name]} {item['seconds']:.1f}" for item in record.get(key, []))


def _timed(item: dict, name: str) -> str:
    """`NAME seconds (compile c, peak p GB; part seconds (compile c), ...)` of a step or part."""
    inside = ", ".join(_note_list(item))
    if item.get("parts"):
        parts = ", ".join(_timed(part, "part") for part in item["parts"])
        inside = f"{inside}; {parts}" if inside else parts
    return f"{item[name]} {item['seconds']:.1f}" + (f" ({inside})" if inside else "")


def format_stage(stage: str, record: dict) -> str:
    """Return one line saying where `stage`'s time and peak memory went."""
    if record.get("skipped"):
        return f"{stage}: cached ({record.get('seconds', 0.0):.1f} s to check)"
    head = f"{stage} {record.get('seconds', 0.0):.1f} s"
    if stage == "extract":
        compiled = f"JAX compile {record.get('compile_seconds', 0.0):.1f} s"
        steps = ", ".join(_timed(s, "step") for s in record.get("steps", []))
        return f"{head}{_notes(record, compiled)}: {steps}"
    items = (
        _items(record, "analyses", "analysis")
        if stage == "analyze"
        else _items(record, "parts", "part")
    )
    return f"{head}{_notes(record)}: {items}"


def format_timings(timings: dict) -> list[str]:
    """Return one line per recorded stage, in pipeline order."""
    return [format_stage(stage, timings[stage]) for stage in STAGES if stage in timings]
