"""A 7B-size Llama built end to end on one GPU: `python -m benchmarks.accelerator --llama-7b`.

The checkpoint is made on the GPU machine itself: Llama-2-7B's shapes (d_model 4096, 32 layers,
32 heads, d_mlp 11008) with MiniLM's 30,522-token vocabulary so the demo corpus tokenizes; the
parameter shapes come from `nnx.eval_shape` and every tensor is drawn on the GPU in bfloat16 and
written as safetensors shards of at most 2 GB (about 13.5 GB on the machine's disk; the host holds one
shard at a time; nothing is ever float32 on the CPU). Writing the checkpoint rather than handing
the build an in-memory model needs no hook in the build, and times what a user with a 7B
bfloat16 checkpoint runs: hashing, memory-mapped sharded loading, every stage. Then one cold
`modelatlas build` (a child process, default card settings on the demo corpus, `dtype:
bfloat16`) runs under a time limit for the whole command; its `timings.json` (every stage and extract step), wall
time, peak RSS and JAX compile time go to a JSON file and a Markdown section appended to
benchmarks/results-gpu.md. `--size tiny` runs the same code on a 2-layer Llama over 24 texts
(the test suite runs it on the CPU).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from benchmarks.runner import ROOT, CommandTimedOut, copy_repo, run_build
from benchmarks.sizes import (
    card_settings,
    read_build_timings,
    smoke_settings,
    write_checkpoint,
    write_size_card,
)

KINDS = {"7b": "llama-7b", "tiny": "tiny-llama"}
TARGET_SECONDS = 15 * 60  # the target: 7B-size end to end on one 80 GB GPU
# JAX takes 75 % of a GPU's memory by default; the build has the GPU to itself, and a 7B model's
# float32 parameters (27 GB) and parameter-gradient step (28 GB more) want most of 80 GB.
MEMORY_FRACTION = {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.92"}


def drawn_on(stdout: str) -> str:
    """Return the device the checkpoint writer drew the weights on (its `drawn on:` line)."""
    for line in stdout.splitlines():
        if line.startswith("drawn on: "):
            return line.removeprefix("drawn on: ").strip()
    return "unknown"


def count_lines(path: Path) -> int:
    """Return the number of non-empty lines of a JSONL corpus."""
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def folder_bytes(folder: Path) -> int:
    """Return the bytes of the safetensors files in `folder`."""
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def run_large_build(size: str, work: Path, timeout: float) -> dict:
    """Write the bfloat16 checkpoint and build it cold; return the report.

    The build is killed when checkpoint and build together pass `timeout` seconds.
    """
    kind = KINDS[size]
    model = work / "checkpoints" / kind
    started = time.perf_counter()
    written, parameters = write_checkpoint(kind, model, dtype="bfloat16")
    settings = smoke_settings(work / "cards") if size == "tiny" else card_settings()
    name = f"gpu-{kind}"
    card = write_size_card(work / "cards", name, model, {**settings, "dtype": "bfloat16"})
    repo = copy_repo(work / "repo")
    site, artifacts = work / name / "site", work / name / "artifacts"
    report = {
        "kind": kind,
        "parameters": parameters,
        "device": drawn_on(written.stdout),
        "host": platform.node(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "versions": versions(),
        "checkpoint": {
            "seconds": round(written.seconds, 1),
            "bytes": folder_bytes(model),
            "shards": len(list(model.glob("*.safetensors"))),
        },
        "card": {**settings, "dtype": "bfloat16", "texts": count_lines(Path(settings["corpus"]))},
        "timeout_seconds": timeout,
        "environment": memory_fraction(),
    }
    try:
        left = max(timeout - (time.perf_counter() - started), 1.0)  # `timeout` bounds it all
        build = run_build(repo, card, site, artifacts, timeout=left, extra_env=memory_fraction())
    except CommandTimedOut as stopped:
        report["build"] = {"timed_out": True, "seconds": round(stopped.seconds, 1)}
        report["build_log_tail"] = stopped.stderr[-4000:]
    else:
        report["build"] = {
            "timed_out": False,
            "seconds": round(build.seconds, 1),
            "cpu_seconds": round(build.cpu_seconds, 1),
            "max_rss_gib": round(build.max_rss_mb / 1024, 2),
        }
    report["timings"] = read_build_timings(artifacts, name)
    extract = report["timings"].get("extract", {})
    report["build"]["compile_seconds"] = extract.get("compile_seconds")
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    return report


def memory_fraction() -> dict[str, str]:
    """The build's JAX GPU memory fraction: the caller's setting, else `MEMORY_FRACTION`."""
    name = next(iter(MEMORY_FRACTION))
    return {name: os.environ.get(name, MEMORY_FRACTION[name])}


def versions() -> dict:
    """Return the versions of the packages that run the build."""
    import importlib.metadata

    found = {}
    for package in ("jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda13-plugin", "flax"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def markdown(report: dict) -> str:
    """Render the report as a section of benchmarks/results-gpu.md."""
    from generator.timings import format_timings

    build, checkpoint, card = report["build"], report["checkpoint"], report["card"]
    total = report["total_seconds"]
    size = report["parameters"]
    size = f"{size / 1e9:.2f}B" if size >= 1e9 else f"{size / 1e6:.1f}M"
    met = "yes" if not build["timed_out"] and total <= TARGET_SECONDS else "**no**"
    lines = [
        f"## {report['kind']} end to end (`python -m benchmarks.accelerator --llama-7b`)",
        "",
        f"Measured {report['date']} on {report['device']}; "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items())
        + f". Random-init Llama-style decoder, {size} parameters, bfloat16 weights drawn on the "
        f"device and written as {checkpoint['shards']} safetensors file(s), "
        f"{checkpoint['bytes'] / 1e9:.2f} GB, in {checkpoint['seconds']:.1f} s; one cold "
        f"`modelatlas build` (the default card's settings, {card['texts']} demo texts, max_length "
        f"{card['max_length']}, `dtype: bfloat16`"
        + "".join(f", {k}={v}" for k, v in report.get("environment", {}).items())
        + ").",
        "",
        "| figure | measured | target | met |",
        "| --- | --- | --- | --- |",
        f"| checkpoint written + cold build, s | {total:.1f} | ≤ {TARGET_SECONDS} | {met} |",
    ]
    if build["timed_out"]:
        lines.append(f"| cold build | killed after {build['seconds']:.0f} s (limit) | | |")
    else:
        lines += [
            f"| cold build wall, s | {build['seconds']:.1f} | | |",
            f"| JAX compile inside the extract stage, s | {build['compile_seconds'] or 0:.1f} | | |",
            f"| peak host RSS, GiB | {build['max_rss_gib']:.2f} | | |",
        ]
    lines += ["", "Where the time went (the build's timings.json, seconds):", ""]
    lines += [f"- {line}" for line in format_timings(report["timings"])] or ["- (none recorded)"]
    return "\n".join(lines) + "\n"


def save(report: dict, out_dir: Path, results: Path | None) -> Path:
    """Write the JSON and Markdown under `out_dir`, append the Markdown to `results`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{report['kind']}-build.json"
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    text = markdown(report)
    (out_dir / f"{report['kind']}-build.md").write_text(text, encoding="utf-8")
    if results is not None:
        with results.open("a", encoding="utf-8") as handle:
            handle.write("\n" + text)
    return path


def default_out_dir() -> Path:
    """Return $OUT (the lent GPU machine's folder that comes back) or benchmarks/gpu."""
    return Path(os.environ["OUT"]) if os.environ.get("OUT") else ROOT / "benchmarks" / "gpu"
