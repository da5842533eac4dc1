"""Compare two build roots byte for byte: every artifact array, analysis table and page.

Usage: python scripts/bytecheck.py BEFORE AFTER

Each root holds `site/` and `artifacts/` (as `build_cards(cards, ROOT/"site", ROOT/"artifacts")`
writes them). Compilation caches (`.jax-cache`, `.cache`) are skipped. Every file present in one
root only, or with other bytes, is listed; for JSON files the differing keys are named (dotted
paths), for other text files the first differing line is shown. Exits 1 when anything differs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SKIPPED = {".jax-cache", ".cache"}


def files(root: Path) -> set[str]:
    """Relative paths of every file under `root`, caches left out."""
    return {
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and not SKIPPED & set(path.relative_to(root).parts)
    }


def json_differences(a, b, where: str = "") -> list[str]:
    """Dotted paths at which two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            path = f"{where}.{key}" if where else str(key)
            if key not in a or key not in b:
                out.append(f"{path} (only in {'after' if key in b else 'before'})")
            else:
                out.extend(json_differences(a[key], b[key], path))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in json_differences(x, y, f"{where}[{i}]")
        ]
    return [] if a == b else [where or "(root)"]


def describe(before: Path, after: Path) -> str:
    """One line saying how two files differ."""
    if before.suffix == ".json":
        try:
            keys = json_differences(json.loads(before.read_text()), json.loads(after.read_text()))
            shown = ", ".join(keys[:12]) + (f", ... ({len(keys)} in all)" if len(keys) > 12 else "")
            return f"JSON keys differ: {shown}"
        except ValueError:
            pass
    try:
        lines_a = before.read_text(encoding="utf-8").splitlines()
        lines_b = after.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        return "binary content differs"
    for number, (x, y) in enumerate(zip(lines_a, lines_b, strict=False), 1):
        if x != y:
            return f"line {number}: {x[:160]!r} -> {y[:160]!r}"
    return f"{len(lines_a)} lines -> {len(lines_b)} lines"


def compare(before: Path, after: Path) -> list[str]:
    """Report lines for every differing file of two build roots (empty: identical)."""
    ours, theirs = files(before), files(after)
    report = [f"only in {before}: {p}" for p in sorted(ours - theirs)]
    report += [f"only in {after}: {p}" for p in sorted(theirs - ours)]
    for path in sorted(ours & theirs):
        a, b = before / path, after / path
        if a.read_bytes() != b.read_bytes():
            report.append(f"{path}: {describe(a, b)}")
    return report


def main(argv: list[str]) -> int:
    """Compare the two roots given on the command line; print the report."""
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    before, after = Path(argv[0]), Path(argv[1])
    report = compare(before, after)
    total = len(files(before) | files(after))
    print(f"{total} files compared, {len(report)} differ")
    print("\n".join(report))
    return 1 if report else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
