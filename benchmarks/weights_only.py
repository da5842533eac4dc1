"""A 7B bfloat16 checkpoint's weights analysed on the CPU: `python -m benchmarks.weights_only`.

The checkpoint is Llama-2-7B's shapes (benchmarks/checkpoints.py `llama-7b`: 6.6B parameters
with MiniLM's vocabulary), random-init in bfloat16, written as safetensors shards of at most
2 GB (about 13.3 GB of disk); `--layers N` keeps the width at fewer layers. A card without a
corpus is then built cold (`modelatlas build` as a child process, so its peak RSS comes from
os.wait4): such a build never loads the model, it streams the parameters tensor by tensor from
the memory-mapped shards (`generator.models.loading.open_checkpoint`). The target is the issue's:
the whole analysis within this machine's memory (24 GB), never killed mid-way. The checkpoint
is deleted afterwards unless `--keep`.

    python -m benchmarks.weights_only --work /tmp/weights-only            # 7B, ~40 min, 2 cores
    python -m benchmarks.weights_only --layers 2 --work /tmp/weights-only  # same width, 2 layers
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.runner import copy_repo, run_build
from benchmarks.sizes import read_build_timings, write_checkpoint, write_size_card

KIND = "llama-7b"
GIB = 2**30
MACHINE_LIMIT_GB = 24  # the target: the analysis fits this machine's 24 GB


def run(
    work: Path, layers: int | None, keep: bool, timeout: float | None, kind: str = KIND
) -> dict:
    """Write the checkpoint, build its weights-only card cold; return the report."""
    model = work / "checkpoints" / kind
    written, parameters = write_checkpoint(kind, model, dtype="bfloat16", layers=layers)
    checkpoint_bytes = sum(p.stat().st_size for p in model.glob("*.safetensors"))
    name = f"weights-{kind}" + (f"-{layers}l" if layers else "")
    settings = {"dtype": "bfloat16", "pooling": "last"}
    card = write_size_card(work / "cards", name, model, settings)
    repo = copy_repo(work / "repo")
    folder = work / name
    build = run_build(repo, card, folder / "site", folder / "artifacts", timeout=timeout)
    timings = read_build_timings(folder / "artifacts", name)
    if not keep:
        shutil.rmtree(model)
    return {
        "kind": kind,
        "layers": layers,
        "parameters": parameters,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "checkpoint": {
            "seconds": round(written.seconds, 1),
            "bytes": checkpoint_bytes,
            "shards": len(list(model.glob("*.safetensors"))) if keep else None,
        },
        "build": {
            "seconds": round(build.seconds, 1),
            "cpu_seconds": round(build.cpu_seconds, 1),
            "max_rss_gib": round(build.max_rss_mb / 1024, 3),
        },
        "timings": timings,
    }


def markdown(report: dict) -> str:
    """Render the report as a Markdown section."""
    from generator.timings import format_timings

    build, checkpoint = report["build"], report["checkpoint"]
    size = report["parameters"]
    count = f"{size / 1e9:.2f}B" if size >= 1e9 else f"{size / 1e6:.2f}M"
    rss_gb = build["max_rss_gib"] * GIB / 1e9
    depth = f", {report['layers']} layers" if report["layers"] else ""
    lines = [
        f"## Weights-only build of a {report['kind']}-shaped checkpoint{depth} (CPU)",
        "",
        f"Measured {report['date']} (`python -m benchmarks.weights_only"
        + (f" --kind {report['kind']}" if report["kind"] != KIND else "")
        + (f" --layers {report['layers']}" if report["layers"] else "")
        + f"`): {count} random-init bfloat16 parameters, "
        f"{checkpoint['bytes'] / 1e9:.2f} GB of safetensors written in "
        f"{checkpoint['seconds']:.1f} s; one cold `modelatlas build` of a card without a corpus "
        "(the parameters streamed from the memory-mapped shards, never loaded).",
        "",
        "| figure | measured | target | met |",
        "| --- | --- | --- | --- |",
        f"| peak RSS, GB | {rss_gb:.2f} | within {MACHINE_LIMIT_GB} | "
        + ("yes" if rss_gb < MACHINE_LIMIT_GB else "**no**")
        + " |",
        f"| peak RSS per parameter, bytes | {build['max_rss_gib'] * GIB / size:.2f} | – | – |",
        f"| cold build wall, s | {build['seconds']:.1f} | – | – |",
        f"| cold build CPU, s | {build['cpu_seconds']:.1f} | – | – |",
        "",
        "Where the time went (the build's timings.json, seconds):",
        "",
    ]
    lines += [f"- {line}" for line in format_timings(report["timings"])] or ["- (none recorded)"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the Markdown and write the JSON report beside the work folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default=KIND, help="a benchmarks/checkpoints.py config")
    parser.add_argument("--layers", type=int, default=None, help="keep the width, fewer layers")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the checkpoint")
    parser.add_argument("--timeout", type=float, default=None, help="kill the build after s")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="atlas-weights-only-"))
    report = run(work, args.layers, args.keep, args.timeout, args.kind)
    (work / "weights-only.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    sys.stdout.write(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
