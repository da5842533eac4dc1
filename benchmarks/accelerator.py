"""Forward pass on an accelerator (GPU): our jitted steps against PyTorch eager on the same device.

`python -m benchmarks.accelerator --model DIR [--shapes 64x64,32x128] [--reps N] [--out FILE]`
`python -m benchmarks.accelerator --llama-7b [--size tiny] [--timeout S]`: a 7B-size Llama built
end to end on the GPU (benchmarks/large_build.py), appended to benchmarks/results-gpu.md.

The same comparison as `benchmarks/forward.py`, placed on JAX's default device and on CUDA for
PyTorch: inputs live on the device before timing, every call waits for its results
(`block_until_ready`, `torch.cuda.synchronize`), outputs stay on the device. Contenders:

- ours, capture step: the showcase step (hidden states, attentions, queries, keys, values);
- ours, corpus step: what the build runs over the whole corpus (pooled summaries, reducers);
- ours, capture step in bfloat16 (the card's `dtype: bfloat16`);
- PyTorch eager: `BertModel` with `output_hidden_states` and `output_attentions`, float32,
  TF32 off (PyTorch's default), like our float32 matmuls at `Precision.HIGHEST`.

Model FLOP utilisation divides achieved model FLOP/s (formula in `benchmarks/forward.py`) by the
float32 GEMM rate measured in the same run (n x n, `Precision.HIGHEST`); the bfloat16 row by the
bfloat16 GEMM rate. Timings are alternated (A B, B A, ...) and reported as median (min-max).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.forward import forward_flops, token_ids
from benchmarks.stats import Samples, alternate

OURS = "ours, capture step"
CORPUS = "ours, corpus step"
OURS_BF16 = "ours, capture step (bfloat16)"
TORCH = "PyTorch eager"


def jax_contenders(model_dir: Path) -> tuple[object, dict, dict]:
    """Return (config, {name: fn(ids, mask, specials)}, {name: dtype}) of our jitted steps."""
    import jax
    import jax.numpy as jnp

    from generator.extract.reducers import active_reducers
    from generator.extract.steps import make_steps
    from generator.models.loading import load_model

    contenders, dtypes = {}, {}
    config = None
    for name, dtype in ((OURS, "float32"), (OURS_BF16, "bfloat16")):
        loaded = load_model(model_dir, dtype=dtype)
        config = config or loaded.config
        store = jnp.float32 if dtype == "float32" else jnp.bfloat16
        corpus_step, showcase_step, params = make_steps(
            loaded.model, active_reducers(loaded.config), store
        )
        params = jax.device_put(params)
        contenders[name] = lambda i, m, s, f=showcase_step, p=params: jax.block_until_ready(
            f(p, i, m)
        )
        dtypes[name] = dtype
        if dtype == "float32":
            contenders[CORPUS] = lambda i, m, s, f=corpus_step, p=params: jax.block_until_ready(
                f(p, i, m, s)
            )
            dtypes[CORPUS] = dtype
    return config, contenders, dtypes


def torch_contender(model_dir: Path):
    """Return fn(ids, mask) running transformers' BertModel eagerly on CUDA, or None."""
    try:
        import torch
        from transformers import BertModel
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = BertModel.from_pretrained(str(model_dir), attn_implementation="eager")
    model = model.eval().to("cuda")

    def run(ids, mask):
        with torch.inference_mode():
            out = model(
                input_ids=ids,
                attention_mask=mask,
                output_hidden_states=True,
                output_attentions=True,
            )
        torch.cuda.synchronize()
        return out

    return run


def max_abs_diff(ours: dict, theirs) -> dict[str, float]:
    """Max |difference| of hidden states and attentions: our step against PyTorch's outputs."""
    result = {}
    for name in ("hidden_states", "attentions"):
        reference = np.stack([t.float().cpu().numpy() for t in getattr(theirs, name)], axis=1)
        result[name] = float(np.max(np.abs(np.asarray(ours[name], np.float32) - reference)))
    return result


def gemm_rates(n: int, reps: int) -> dict[str, Samples]:
    """Return GFLOP/s samples of n x n products on the JAX device: float32 HIGHEST and bfloat16."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    fns = {}
    for name, dtype, precision in (
        ("float32", jnp.float32, jax.lax.Precision.HIGHEST),
        ("bfloat16", jnp.bfloat16, jax.lax.Precision.DEFAULT),
    ):
        x, y = jnp.asarray(a, dtype), jnp.asarray(b, dtype)
        product = jax.jit(lambda p, q, precision=precision: jnp.matmul(p, q, precision=precision))
        fns[name] = lambda f=product, p=x, q=y: f(p, q).block_until_ready()
        for _ in range(3):
            fns[name]()
    # Ten products per timing: one product is a fraction of a millisecond on a GPU.
    timed = {name: (lambda fn=fn: [fn() for _ in range(10)]) for name, fn in fns.items()}
    flop = 10 * 2.0 * n**3 / 1e9
    return {name: s.inverse(flop) for name, s in alternate(timed, reps).items()}


def run(model_dir: Path, shapes: list[tuple[int, int]], reps: int, gemm_n: int) -> dict:
    """Time every contender on every shape; return a JSON-able report."""
    import jax

    config, ours, dtypes = jax_contenders(model_dir)
    theirs = torch_contender(model_dir)
    rows = []
    for batch, tokens in shapes:
        ids = token_ids(config.vocab_size, batch, tokens)
        mask = np.ones_like(ids)
        specials = np.zeros_like(ids)
        specials[:, [0, -1]] = 1
        j_ids, j_mask, j_specials = (jax.device_put(x) for x in (ids, mask, specials))
        contenders = {
            name: (lambda fn=fn, i=j_ids, m=j_mask, s=j_specials: fn(i, m, s))
            for name, fn in ours.items()
        }
        diff = {}
        if theirs is not None:
            import torch

            t_ids = torch.from_numpy(ids.astype(np.int64)).to("cuda")
            t_mask = torch.from_numpy(mask.astype(np.int64)).to("cuda")
            contenders[TORCH] = lambda i=t_ids, m=t_mask: theirs(i, m)
            diff = max_abs_diff(ours[OURS](j_ids, j_mask, j_specials), theirs(t_ids, t_mask))
        for fn in contenders.values():  # warm-up: compile once per shape
            fn()
            fn()
        seconds = alternate(contenders, reps)
        flops = forward_flops(config, batch, tokens)
        rows.append(
            {
                "batch": batch,
                "tokens": tokens,
                "flops": flops,
                "max_abs_diff_vs_pytorch": diff,
                "seconds": {name: list(s.values) for name, s in seconds.items()},
            }
        )
        print(
            f"{batch}x{tokens}: "
            + ", ".join(f"{k} {v.median * 1e3:.2f} ms" for k, v in seconds.items())
        )
    gemm = gemm_rates(gemm_n, reps)
    return {
        "model": str(model_dir),
        "dtypes": {**dtypes, TORCH: "float32"},
        "device": str(jax.devices()[0].device_kind),
        "platform": jax.devices()[0].platform,
        "packages": {p: _version(p) for p in ("jax", "jaxlib", "flax", "torch", "transformers")},
        "gemm_n": gemm_n,
        "gemm_gflops": {name: list(s.values) for name, s in gemm.items()},
        "shapes": rows,
        "torch_skipped": None if theirs is not None else "PyTorch with CUDA not available",
    }


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def markdown(report: dict) -> str:
    """Render the report as the Markdown section of benchmarks/results.md."""
    gemm = {name: Samples(tuple(v)) for name, v in report["gemm_gflops"].items()}
    lines = [
        f"Device: {report['device']} ({report['platform']}); "
        + ", ".join(f"{k} {v}" for k, v in report["packages"].items()),
        "",
        f"GEMM peak ({report['gemm_n']}³, same run): float32 HIGHEST "
        f"{gemm['float32'].median / 1e3:.1f} TFLOP/s, bfloat16 {gemm['bfloat16'].median / 1e3:.1f} TFLOP/s.",
        "",
        "| shape | contender | ms per batch | tokens/s | vs PyTorch | model TFLOP/s | share of GEMM peak |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["shapes"]:
        seconds = {name: Samples(tuple(v)) for name, v in row["seconds"].items()}
        tokens = row["batch"] * row["tokens"]
        torch_median = seconds[TORCH].median if TORCH in seconds else None
        for name, s in seconds.items():
            peak = gemm["bfloat16" if report["dtypes"][name] == "bfloat16" else "float32"].median
            rate = s.inverse(tokens)
            ratio = f"{torch_median / s.median:.2f}×" if torch_median else "—"
            tflops = row["flops"] / s.median / 1e12
            lines.append(
                f"| {row['batch']}×{row['tokens']} | {name} | {s.scaled(1e3).fmt(2)} "
                f"| {rate.median:,.0f} | {ratio} | {tflops:.1f} | {tflops * 1e3 / peak:.2f} |"
            )
        if row["max_abs_diff_vs_pytorch"]:
            d = row["max_abs_diff_vs_pytorch"]
            lines.append(
                f"| {row['batch']}×{row['tokens']} | max abs diff vs PyTorch | hidden "
                f"{d['hidden_states']:.2g}, attentions {d['attentions']:.2g} | | | | |"
            )
    return "\n".join(lines) + "\n"


def large_build(args) -> int:
    """Run the 7B-size (or tiny) Llama build and save its report; return the exit status."""
    import tempfile

    from benchmarks import large_build

    with tempfile.TemporaryDirectory(prefix="modelatlas-7b-", dir=args.work) as scratch:
        report = large_build.run_large_build(args.size, Path(scratch), args.timeout)
    results = args.results
    if results is None and args.size == "7b":
        results = large_build.ROOT / "benchmarks" / "results-gpu.md"
    path = large_build.save(report, args.out_dir or large_build.default_out_dir(), results)
    print(large_build.markdown(report))
    print(f"wrote {path}" + (f", appended to {results}" if results else ""))
    return 1 if report["build"]["timed_out"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.accelerator", description=__doc__)
    parser.add_argument("--model", type=Path, help="HF model folder (BERT)")
    parser.add_argument(
        "--llama-7b", action="store_true", help="build a random-init 7B-size Llama end to end"
    )
    parser.add_argument(
        "--size", choices=("7b", "tiny"), default="7b", help="tiny: the same run at test size"
    )
    parser.add_argument(
        "--timeout", type=float, default=540.0, help="limit of checkpoint + build, s"
    )
    parser.add_argument("--work", type=Path, help="scratch folder's parent (default: temp)")
    parser.add_argument("--out-dir", type=Path, help="JSON + Markdown (default: $OUT)")
    parser.add_argument(
        "--results", type=Path, help="append here (default for 7b: benchmarks/results-gpu.md)"
    )
    parser.add_argument("--shapes", default="64x64,32x128", help="batch x tokens, comma-separated")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--gemm-n", type=int, default=8192)
    parser.add_argument("--out", type=Path, help="write the JSON report here")
    args = parser.parse_args(argv)
    if args.llama_7b:
        return large_build(args)
    if args.model is None:
        parser.error("--model is required (or --llama-7b)")
    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
    started = time.perf_counter()
    report = run(args.model, shapes, args.reps, args.gemm_n)
    report["wall_seconds"] = time.perf_counter() - started
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
