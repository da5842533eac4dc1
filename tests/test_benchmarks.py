"""The benchmark harness: FLOP formula, timing helpers, compile timer, and a smoke run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.forward import forward_flops  # noqa: E402
from benchmarks.scaling import LONG_JOIN, scaled_rows  # noqa: E402
from benchmarks.stats import Samples, alternate  # noqa: E402


def test_forward_flops_counts_every_matmul_by_hand():
    config = SimpleNamespace(d_model=384, d_mlp=1536, n_layers=6)
    batch, tokens, d, f = 2, 8, 384, 1536
    per_layer = (
        3 * 2 * tokens * d * d  # Q, K, V projections
        + 2 * tokens * d * d  # attention output projection
        + 2 * tokens * d * f  # MLP up
        + 2 * tokens * f * d  # MLP down
        + 2 * tokens * tokens * d  # Q K^T over all heads
        + 2 * tokens * tokens * d  # weights x V
    )
    assert forward_flops(config, batch, tokens) == batch * 6 * per_layer


def dot_flops(jaxpr) -> float:
    """Sum 2 * output size * contracted size over every dot_general of a jaxpr (recursively).

    A `scan` body counts once per iteration (its `length`): scanned layers run it per layer.
    """
    total = 0.0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            (lhs_contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            contracted = np.prod([lhs[i] for i in lhs_contract])
            total += 2.0 * np.prod(eqn.outvars[0].aval.shape) * contracted
        repeats = eqn.params.get("length", 1) if eqn.primitive.name == "scan" else 1
        for sub in jax_core_subjaxprs(eqn):
            total += repeats * dot_flops(sub)
    return total


def jax_core_subjaxprs(eqn):
    """Yield the jaxprs nested in an equation (pjit, custom_jvp, ...)."""
    for value in eqn.params.values():
        inner = getattr(value, "jaxpr", None)
        if inner is not None:
            yield getattr(inner, "jaxpr", inner)


def test_forward_flops_matches_the_model_s_traced_matmuls():
    """The formula equals the dot_general FLOPs of the real (tiny) model's traced forward pass."""
    import jax
    from flax import nnx

    from generator.models.loading import load_model

    loaded = load_model(ROOT / "tests" / "fixtures" / "tiny-bert")
    graphdef, params = nnx.split(loaded.model)
    batch, tokens = 3, 16
    ids = np.ones((batch, tokens), np.int32)

    def forward(params, ids, mask):
        out = nnx.merge(graphdef, params)(ids, mask)
        return out["hidden_states"], out["attentions"]

    traced = jax.make_jaxpr(forward)(params, ids, ids).jaxpr
    pooler = 2.0 * batch * loaded.config.d_model**2  # traced but unused by the capture steps
    assert dot_flops(traced) - pooler == forward_flops(loaded.config, batch, tokens)


def test_alternate_interleaves_and_summarises():
    calls = []
    samples = alternate({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert set(samples) == {"a", "b"} and all(len(s.values) == 3 for s in samples.values())
    s = Samples((3.0, 1.0, 2.0))
    assert (s.median, s.low, s.high) == (2.0, 1.0, 3.0)
    assert s.inverse(6.0).values == (2.0, 6.0, 3.0)
    assert s.fmt(1, "s") == "2.0 (1.0–3.0) s"


def test_scaled_corpus_is_deterministic_and_distinct():
    rows = scaled_rows(1200)
    assert len({r["text"] for r in rows}) == 1200  # every text differs (index appended)
    assert rows == scaled_rows(1200)
    assert rows[0]["label"] == rows[500]["label"]  # labels follow the demo row
    long = scaled_rows(3, join=LONG_JOIN)
    assert all(len(r["text"].split()) > 256 for r in long)


def test_compile_timer_counts_new_shapes_only():
    import jax
    import jax.numpy as jnp

    from generator.extract.compile_time import CompileTimer

    fn = jax.jit(lambda x: jnp.tanh(x) * 3.0 + 1.0)
    with CompileTimer() as first:
        fn(jnp.ones((7, 5))).block_until_ready()
    with CompileTimer() as again:
        fn(jnp.ones((7, 5))).block_until_ready()
    assert first.seconds > 0.0
    assert "/jax/core/compile/backend_compile_duration" in first.by_event
    assert again.seconds == 0.0


def test_smoke_benchmark_writes_a_complete_report(tmp_path):
    """`python -m benchmarks --smoke` runs every benchmark on the tiny model and reports."""
    out = tmp_path / "results.md"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--smoke",
            "--out",
            str(out),
            "--work",
            str(tmp_path / "w"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text(encoding="utf-8")
    for section in (
        "## Targets",
        "## Machine",
        "## Forward pass",
        "## End to end",
        "## Scaling",
        "## Real sizes",
        "## Pages",
    ):
        assert section in text
    assert "| tiny-llama JAX compile, s | ≤ 10 |" in text  # the sizes section's targets
    assert "- **tiny-llama**:" in text and "  - extract " in text  # its timings.json
    assert "warm rebuild (nothing changed)" in text
    assert "JAX compile time inside the cold builds" in text
    assert "nan" not in text.lower().replace("nanosecond", "")


def test_build_compile_time_is_counted_once_per_card():
    """Run.compile_seconds reads each card's summary line, not the timings line repeating it."""
    from benchmarks.runner import Run
    from generator.timings import format_stage

    timing = format_stage("extract", {"seconds": 9.0, "compile_seconds": 4.2, "steps": []})
    stdout = "".join(
        f"{name}: extracted, rendered in 12.0 s (JAX compile {seconds} s) -> site/{name}/\n"
        f"  {timing}\n"
        for name, seconds in (("a", 4.2), ("b", 1.5))
    )
    assert "JAX compile 4.2 s" in timing  # the figure the parser must not count twice
    assert Run(1.0, 1.0, 1.0, stdout).compile_seconds == 4.2 + 1.5


def test_run_measured_reports_the_child_s_own_peak_memory():
    """A child's peak RSS is its own, not inflated by the (large) benchmark process."""
    from benchmarks.runner import run_measured

    ballast = np.ones(400 * 2**20 // 8)  # 400 MiB held by this process while the child runs
    child = "import numpy as np; a = np.ones(100 * 2**20 // 8); print(float(a.sum()))"
    run = run_measured([sys.executable, "-c", child], cwd=ROOT)
    assert 100 <= run.max_rss_mb < 300, run.max_rss_mb
    assert run.stdout.strip() == str(float(100 * 2**20 // 8))
    assert run.cpu_seconds > 0 and run.seconds >= run.cpu_seconds * 0.1
    assert ballast.sum() > 0


def test_measured_commands_never_inherit_a_shared_compile_cache(monkeypatch):
    """A cold build compiles cold even when the caller shares a JAX cache (as the tests do)."""
    from benchmarks.runner import run_measured

    monkeypatch.setenv("MODELATLAS_JAX_CACHE", "/shared/cache")
    child = "import os; print(os.environ.get('MODELATLAS_JAX_CACHE'))"
    assert run_measured([sys.executable, "-c", child], cwd=ROOT).stdout.strip() == "None"
    asked = run_measured([sys.executable, "-c", child], ROOT, {"MODELATLAS_JAX_CACHE": "/mine"})
    assert asked.stdout.strip() == "/mine"  # unless the benchmark itself names one


def test_run_measured_kills_a_command_and_its_children_past_the_timeout(tmp_path):
    """A timed-out build is killed with its children (the 7B GPU run's time limit)."""
    import time

    import pytest

    from benchmarks.runner import CommandTimedOut, run_measured

    pid_file = tmp_path / "grandchild.pid"
    child = (
        "import subprocess, sys, time; "
        "p = subprocess.Popen(['sleep', '60']); "
        f"open({str(pid_file)!r}, 'w').write(str(p.pid)); "
        "print('started', flush=True); time.sleep(60)"
    )
    started = time.perf_counter()
    with pytest.raises(CommandTimedOut) as stopped:
        run_measured([sys.executable, "-c", child], cwd=ROOT, timeout=3)
    assert time.perf_counter() - started < 30
    assert "started" in stopped.value.stdout and stopped.value.seconds >= 3
    status = Path(f"/proc/{pid_file.read_text()}/status")
    time.sleep(0.5)
    assert not status.exists() or "zombie" in status.read_text()  # killed, not left running


def test_watcher_benchmark_notices_every_edit(tmp_path):
    """benchmarks/watchers.py: both ways of noticing see each edit within the safety period."""
    from cards import write_card

    from benchmarks.watchers import measure

    card = write_card(tmp_path / "cards")
    for notify in (True, False):
        result = measure(card, trials=2, idle=0.5, notify=notify)
        assert len(result["latencies"]) == 2 and result["cpu"] >= 0
        # polling: within its 1 s interval (+ load); notifications: within the 5 s safety poll
        assert all(0 < latency < 6.0 for latency in result["latencies"])


def tiny_llama_parameters() -> int:
    """Count tiny-llama's parameters from its config by hand (untied embeddings, no biases)."""
    from benchmarks.checkpoints import CONFIGS

    c = CONFIGS["tiny-llama"]
    d, f, v, hd = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["head_dim"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    layer = d * q + 2 * d * kv + q * d + 3 * d * f + 2 * d  # q, k, v, o, MLP, two norms
    return 2 * v * d + c["num_hidden_layers"] * layer + d  # embeddings, lm_head, final norm


def test_random_checkpoint_is_drawn_in_its_dtype_in_shards_and_loads(tmp_path):
    """benchmarks/checkpoints.py: bfloat16 shards under the size budget that load_model reads."""
    import ml_dtypes
    from safetensors import safe_open

    from benchmarks.checkpoints import CONFIGS, parameter_count, write_random_checkpoint
    from generator.models.loading import load_model
    from generator.weight_files import INDEX_NAME, read_index

    budget = 600_000
    folder = write_random_checkpoint(
        dict(CONFIGS["tiny-llama"]), tmp_path / "ck", dtype="bfloat16", shard_bytes=budget
    )
    shards = sorted(set(read_index(folder / INDEX_NAME).values()))
    assert len(shards) > 1
    assert parameter_count(folder) == tiny_llama_parameters()
    for shard in shards:
        with safe_open(str(folder / shard), framework="numpy") as handle:
            arrays = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        assert sum(a.nbytes for a in arrays.values()) <= budget or len(arrays) == 1
        for name, a in arrays.items():
            assert a.dtype == ml_dtypes.bfloat16, name
            values = a.astype(np.float32)
            if a.ndim == 2:
                assert abs(float(values.std()) - 0.02) < 0.002, name  # N(0, 0.02²)
            else:
                assert np.all(values == 1.0), name  # Llama's 1-D parameters are norm weights
    loaded = load_model(folder)
    assert loaded.config.n_layers == CONFIGS["tiny-llama"]["num_hidden_layers"]


def test_llama_7b_gpu_run_works_at_tiny_size_on_the_cpu(tmp_path):
    """`python -m benchmarks.accelerator --llama-7b --size tiny`: the GPU run's code, on the CPU."""
    out, results = tmp_path / "out", tmp_path / "results-gpu.md"
    results.write_text("# earlier results\n", encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "benchmarks.accelerator", "--llama-7b", "--size", "tiny"]
    command += ["--out-dir", str(out), "--results", str(results), "--work", str(tmp_path)]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "tiny-llama-build.json").read_text(encoding="utf-8"))
    parameters = tiny_llama_parameters()
    assert report["parameters"] == parameters
    # bfloat16 on disk: 2 bytes per parameter plus the safetensors header
    assert 2 * parameters < report["checkpoint"]["bytes"] < 2 * parameters + 2**16
    assert report["card"]["dtype"] == "bfloat16" and not report["build"]["timed_out"]
    fraction = os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.92")  # JAX's default: 0.75
    assert report["environment"] == {"XLA_PYTHON_CLIENT_MEM_FRACTION": fraction}
    timings = report["timings"]
    assert all(timings[stage]["seconds"] > 0 for stage in ("extract", "analyze", "render"))
    steps = {step["step"] for step in timings["extract"]["steps"]}
    assert {"corpus_pass", "showcase_pass", "attributions"} <= steps
    text = results.read_text(encoding="utf-8")
    assert text.startswith("# earlier results\n")  # appended, not replaced
    assert "## tiny-llama end to end" in text and "\n- extract " in text
    assert f"XLA_PYTHON_CLIENT_MEM_FRACTION={fraction}" in text
    assert not list(tmp_path.glob("modelatlas-7b-*"))  # the scratch checkpoint is removed


def test_weights_only_benchmark_works_at_tiny_size(tmp_path):
    """`python -m benchmarks.weights_only --kind tiny-llama`: the 7B CPU run's code, tiny."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "benchmarks.weights_only", "--kind", "tiny-llama"]
    command += ["--layers", "3", "--work", str(tmp_path)]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "weights-only.json").read_text(encoding="utf-8"))
    assert report["layers"] == 3 and report["parameters"] > tiny_llama_parameters()
    steps = [step["step"] for step in report["timings"]["extract"]["steps"]]
    assert steps == [
        "describe_model",
        "write_weights",
        "write_weights_only_geometry",
        "collect_weights",
    ]
    assert report["build"]["max_rss_gib"] > 0 and report["checkpoint"]["bytes"] > 0
    assert "| peak RSS, GB |" in proc.stdout and "--layers 3" in proc.stdout
    assert not (tmp_path / "checkpoints" / "tiny-llama").exists()  # removed without --keep
