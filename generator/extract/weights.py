"""Weight statistics computed where the weights are: right after the checkpoint is loaded.

The analyze stage never loads checkpoints, so everything the weights page shows is computed
here (numpy only) and stored in the artifact folder:

  manifest["weights"]                 settings, per-tensor statistics, spectra, heatmap index
  weights/histograms                  [tensor, bin] float32 counts, bins shared per group
  weights/singular_values             [matrix, rank] float32, descending, NaN-padded
  weights/head_singular_values        [head_block, rank] float32, per attention head
  weights/heatmaps                    [matrix, row, col] float32 max-abs pooled, NaN-padded
  weights/head_gram_ROLE              [head_vector, head_vector] float64 Gram matrix of the
                                      flattened per-head slices of W_Q / W_K / W_V / W_O

Tensor order is the parameter inventory's (sorted dotted names). Matrices use our [in, out]
kernel orientation; embeddings are [vocab, d_model]. The tensors are read one at a time from a
lazy mapping (ParameterSource), so the step holds the model plus one tensor's working copies
and small accumulators. Matrices above the exact-SVD cap get their top singular values with
stated error bounds (truncated_spectra.py).
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from generator.extract.downsample import HEATMAP_LIMIT, block_shape, max_abs_pool
from generator.extract.param_roles import classify
from generator.extract.spectra import (
    MIN_EIGENVALUES,
    MIN_TAIL,
    head_blocks,
    singular_values,
    spectrum_summary,
    split_fused_qkv,
)
from generator.extract.truncated_spectra import (
    OVERSAMPLE,
    POWER_ITERATIONS,
    TRUNCATED_RANK,
    truncated_summary,
)

log = logging.getLogger(__name__)

NEAR_ZERO = 1e-3  # |w| < NEAR_ZERO · max|w| of the tensor counts as near zero
HISTOGRAM_BINS = 64
HISTOGRAM_RANGE = (0.0005, 0.9995)  # per-group bin range: extreme quantiles over its tensors
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
QUANTILE_SAMPLE = 1 << 22  # quantiles of larger tensors use a seeded sample of this many entries
# Exact SVD (LAPACK, ~entries x shorter side operations) up to the cost of a 4096 x 4096 matrix,
# the largest exact one before truncated spectra existed; costlier matrices get a truncated SVD.
SPECTRUM_MAX_COST = (1 << 24) * 4096  # entries x shorter side (see docs/artifacts.md)
SPECTRUM_MAX_SIDE = 4096  # matrices whose shorter side exceeds this are truncated too
HEAD_GRAM_MAX_ELEMENTS = 1 << 26  # all heads of one role, flattened, at most this many values
SEED = 0
HEAD_ROLES = ("query", "key", "value", "attn_out")


class ParameterSource(Mapping):
    """The parameters of an nnx module as a read-only mapping name -> float32 numpy array.

    Keyed like the inventory (sorted dotted names). Each lookup converts one tensor (a view of a
    float32 host array, a copy otherwise), so iterating holds one tensor at a time, never a
    second copy of every weight.
    """

    def __init__(self, model) -> None:
        from flax import nnx

        flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
        variables = {".".join(str(p) for p in path): variable for path, variable in flat}
        self._variables = dict(sorted(variables.items()))

    def __getitem__(self, name: str) -> np.ndarray:
        variable = self._variables[name]
        value = variable.get_value() if hasattr(variable, "get_value") else variable.value
        return np.asarray(value, dtype=np.float32)

    def __iter__(self) -> Iterator[str]:
        return iter(self._variables)

    def __len__(self) -> int:
        return len(self._variables)


def parameter_arrays(model) -> Mapping[str, np.ndarray]:
    """Return every parameter of an nnx module as float32 numpy, keyed like the inventory.

    A lazy mapping (ParameterSource): each tensor is converted when it is read.
    """
    return ParameterSource(model)


def _sample(values: np.ndarray) -> np.ndarray:
    """Return the flattened values, or QUANTILE_SAMPLE of them drawn with a seeded generator."""
    flat = values.ravel()
    if flat.size <= QUANTILE_SAMPLE:
        return flat
    rng = np.random.default_rng(SEED)
    return flat[rng.integers(0, flat.size, QUANTILE_SAMPLE)]  # with replacement: fast, unbiased


def tensor_statistics(values: np.ndarray) -> dict:
    """Return Frobenius norm, mean, std, max |w|, near-zero fraction and quantiles of a tensor."""
    wide = np.asarray(values, dtype=np.float64).ravel()
    max_abs = float(np.max(np.abs(wide))) if wide.size else 0.0
    sample = _sample(wide)
    quantiles = np.quantile(sample, (*HISTOGRAM_RANGE, *QUANTILES))
    return {
        "frobenius": float(np.sqrt(np.sum(wide**2))),
        "mean": float(wide.mean()),
        "std": float(wide.std()),
        "max_abs": max_abs,
        "near_zero": float(np.mean(np.abs(wide) < NEAR_ZERO * max_abs)) if max_abs > 0 else 1.0,
        "quantiles": [float(q) for q in quantiles[2:]],
        "range": [float(quantiles[0]), float(quantiles[1])],
    }


def histogram_group(role: dict) -> str:
    """Return the histogram group of a tensor: its role and leaf kind, e.g. `query:weight`."""
    return f"{role['role']}:{role['leaf']}"


def group_ranges(rows: list[dict]) -> dict[str, list[float]]:
    """Return per group [lo, hi]: the widest extreme-quantile range among its tensors.

    A group whose values are all equal (e.g. untrained LayerNorm gains) gets a unit-wide range
    around that value, so its spike sits in the middle bin.
    """
    ranges: dict[str, list[float]] = {}
    for row in rows:
        lo, hi = row.pop("range")
        group = ranges.setdefault(row["group"], [lo, hi])
        group[0], group[1] = min(group[0], lo), max(group[1], hi)
    for group in ranges.values():
        if group[1] - group[0] <= 1e-12 * max(1.0, abs(group[1])):
            group[0], group[1] = group[0] - 0.5, group[1] + 0.5
    return ranges


def histogram_counts(values: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, int]:
    """Return (counts over HISTOGRAM_BINS equal bins of [lo, hi], entries clipped into the ends)."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    beyond = int(np.sum((flat < lo) | (flat > hi)))
    counts, _ = np.histogram(np.clip(flat, lo, hi), bins=HISTOGRAM_BINS, range=(lo, hi))
    return counts.astype(np.float32), beyond


def spectrum_allowed(shape: tuple[int, ...]) -> bool:
    """Tell whether a matrix is cheap enough for an exact SVD (else it gets a truncated one).

    A tall matrix such as a 30522 x 768 embedding takes ~1.5 s exactly on this project's CPU,
    against ~4.6 s for the randomized top 256: the cost, not the size, decides.
    """
    return int(np.prod(shape)) * min(shape) <= SPECTRUM_MAX_COST and min(shape) <= SPECTRUM_MAX_SIDE


def _padded(rows: list[np.ndarray], width: int) -> np.ndarray:
    """Stack 1-D arrays into [row, width] float32, NaN-padded."""
    out = np.full((len(rows), max(width, 1)), np.nan, dtype=np.float32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _head_matrices(name: str, role: str, matrix: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Return (role, matrix) pairs to split into heads: one, or the thirds of a fused q|k|v."""
    if role in HEAD_ROLES:
        return [(role, matrix)]
    if role == "qkv":
        parts = split_fused_qkv(matrix)
        if parts is None:
            log.info("%s: fused projection does not split in thirds; no per-head spectra", name)
            return []
        return list(parts.items())
    return []


@dataclass
class _Collected:
    """What the pass over the tensors gathers: rows and the arrays they point into."""

    rows: list = field(default_factory=list)
    matrices: list = field(default_factory=list)
    heads: list = field(default_factory=list)
    spectra_sv: list = field(default_factory=list)
    head_sv: list = field(default_factory=list)
    heatmaps: list = field(default_factory=list)
    head_vectors: dict = field(default_factory=lambda: {role: [] for role in HEAD_ROLES})


def weight_statistics(
    arrays: Mapping[str, np.ndarray],
    d_head: int,
    threads: int | None = None,
    progress: str | None = None,
) -> tuple[dict, dict]:
    """Compute every weight statistic of a model, reading one tensor at a time per thread.

    Three passes over `arrays`: statistics, spectra and heatmaps; histograms in the group
    ranges the first pass found; the per-head vectors of each role for its Gram matrix. The
    first two spread the tensors over threads (`in_threads`: at most one tensor per thread is
    held); the results are gathered in tensor order, so they are the same whatever the threads.

    Args:
        arrays: parameter name -> float32 array (matrices [in, out], embeddings [vocab, d]),
            e.g. a lazy ParameterSource.
        d_head: width of one attention head.
        threads: threads to spread the tensors over (None: one per CPU, `in_threads`).
        progress: the label of a progress bar over the tensors (None: no bar).

    Returns:
        (manifest section, arrays by artifact name with their axes): see the module docstring.
    """
    from tqdm import tqdm

    out = _Collected()
    tensor_parts = functools.partial(_tensor_parts, d_head=d_head)
    computed = in_threads(tensor_parts, arrays, list(arrays), threads)
    bar = dict(total=len(arrays), desc=progress, unit="tensor", disable=progress is None)
    for parts in tqdm(computed, **bar):
        _collect(out, parts)
    ranges = group_ranges(out.rows)
    bins = {row["name"]: ranges[row["group"]] for row in out.rows}

    def histogram(name: str, values: np.ndarray) -> tuple[np.ndarray, int]:
        return histogram_counts(values, *bins[name])

    histograms = []
    for row, (counts, beyond) in zip(
        out.rows, in_threads(histogram, arrays, list(bins), threads), strict=True
    ):
        row["beyond_range"] = beyond
        histograms.append(counts)
    out_arrays, head_index = _weight_arrays(out, histograms, arrays, d_head)
    section = {
        "settings": weight_settings(d_head),
        "tensors": out.rows,
        "histogram_ranges": ranges,
        "matrices": out.matrices,
        "heads": out.heads,
        "head_vectors": head_index,
    }
    return section, out_arrays


def in_threads(
    function, arrays: Mapping[str, np.ndarray], names: list[str], threads: int | None = None
) -> Iterator:
    """Yield `function(name, arrays[name])` for each name in order, computed in threads.

    `threads` of them (None: one per CPU, `worker_count`: MODELATLAS_WORKERS=1 computes them
    here, one by one). A tensor is read from `arrays` when a thread is free for it, so at most
    one tensor per thread is held at a time.
    """
    from generator.analyze.workers import worker_count

    threads = worker_count(len(names)) if threads is None else max(1, min(threads, len(names)))
    if threads == 1:
        for name in names:
            yield function(name, arrays[name])
        return
    with ThreadPoolExecutor(threads) as pool:
        pending: deque = deque()
        for name in names:
            if len(pending) == threads:
                yield pending.popleft().result()
            pending.append(pool.submit(function, name, arrays[name]))
        while pending:
            yield pending.popleft().result()


@dataclass
class _TensorParts:
    """What one tensor adds: its statistics row and, for a matrix, its spectrum, heatmap and
    heads (rows whose `spectrum` / `heatmap` numbers `_collect` fills in)."""

    row: dict
    matrix: dict | None = None
    sigma: np.ndarray | None = None
    pooled: np.ndarray | None = None
    heads: list = field(default_factory=list)  # (head row, sigma, head-vector item or None)


def _tensor_parts(name: str, values: np.ndarray, d_head: int) -> _TensorParts:
    """Compute one tensor's statistics row, and its spectra, heatmap and heads when a matrix."""
    role = classify(name).to_dict()
    row = {
        "name": name,
        "shape": [int(s) for s in values.shape],
        "count": int(values.size),
        **role,
        "group": histogram_group(role),
        **tensor_statistics(values),
    }
    parts = _TensorParts(row)
    if values.ndim != 2 or role["leaf"] != "weight":
        return parts
    parts.matrix, parts.sigma, parts.pooled = _matrix_parts(name, values, row=row, role=role)
    for part_role, part in _head_matrices(name, role["role"], values):
        blocks = head_blocks(part, part_role, d_head)
        parts.heads += _head_parts(name, blocks, role=role, part_role=part_role)
    return parts


def _collect(out: _Collected, parts: _TensorParts) -> None:
    """Append one tensor's parts to `out`, numbering its spectra and heatmap."""
    out.rows.append(parts.row)
    if parts.matrix is not None:
        parts.matrix["spectrum"] = len(out.spectra_sv)
        parts.matrix["heatmap"] = len(out.heatmaps)
        out.spectra_sv.append(parts.sigma)
        out.heatmaps.append(parts.pooled)
        out.matrices.append(parts.matrix)
    for head, sigma, item in parts.heads:
        head["spectrum"] = len(out.head_sv)
        out.heads.append(head)
        out.head_sv.append(sigma)
        if item is not None:
            out.head_vectors[head["role"]].append(item)


def _weight_arrays(out: _Collected, histograms: list, arrays, d_head: int) -> tuple[dict, dict]:
    """Return (arrays by artifact name with their axes, head-vector index by role)."""
    out_arrays = {
        "weights/histograms": (np.stack(histograms), ("tensor", "bin")),
        "weights/singular_values": (
            _padded(out.spectra_sv, max((len(s) for s in out.spectra_sv), default=0)),
            ("matrix", "rank"),
        ),
        "weights/head_singular_values": (
            _padded(out.head_sv, max((len(s) for s in out.head_sv), default=0)),
            ("head_block", "rank"),
        ),
        "weights/heatmaps": (_stack_heatmaps(out.heatmaps), ("matrix", "row", "col")),
    }
    head_index = {}
    for role_name, items in out.head_vectors.items():
        gram = head_gram(arrays, items, role_name, d_head)
        if gram is not None:
            out_arrays[f"weights/head_gram_{role_name}"] = (gram, ("head_vector", "head_vector"))
            head_index[role_name] = [where for where, _, _ in items]
    return out_arrays, head_index


def weight_settings(d_head: int) -> dict:
    """Return the constants the weight statistics were computed with (manifest settings)."""
    return {
        "near_zero_relative": NEAR_ZERO,
        "histogram_bins": HISTOGRAM_BINS,
        "histogram_range_quantiles": list(HISTOGRAM_RANGE),
        "quantiles": list(QUANTILES),
        "quantile_sample": QUANTILE_SAMPLE,
        "spectrum_max_cost": SPECTRUM_MAX_COST,
        "spectrum_max_side": SPECTRUM_MAX_SIDE,
        "truncated_rank": TRUNCATED_RANK,
        "truncated_oversample": OVERSAMPLE,
        "truncated_power_iterations": POWER_ITERATIONS,
        "heatmap_limit": HEATMAP_LIMIT,
        "min_eigenvalues": MIN_EIGENVALUES,
        "min_tail": MIN_TAIL,
        "d_head": d_head,
        "seed": SEED,
    }


def _where(role: dict) -> dict:
    """Return where a weight sits: layer, stack, cross, and `shared` for a shared block."""
    return {k: role[k] for k in ("layer", "stack", "cross", "shared") if k in role}


def _matrix_parts(name: str, values: np.ndarray, *, row: dict, role: dict) -> tuple:
    """Return one 2-D weight's (matrix row, spectrum, pooled heatmap); the spectrum is exact
    below the SVD cap, else truncated. The row's `spectrum` and `heatmap` are placeholders."""
    matrix = {
        "name": name,
        "component": role["component"],
        "role": role["role"],
        **_where(role),
        "shape": row["shape"],
    }
    if spectrum_allowed(values.shape):
        sigma = singular_values(values)
        matrix.update(spectrum_summary(sigma), spectrum=None)
        matrix["spectrum_method"] = "exact"
    else:
        log.info("%s: %s elements, above the exact-SVD cap; top singular values", name, values.size)
        sigma, fields = truncated_summary(values, SEED, total=row["frobenius"] ** 2)
        matrix.update(spectrum_summary(sigma), spectrum=None, **fields)
    pooled = max_abs_pool(values)
    matrix.update(
        heatmap=None,
        heatmap_shape=list(pooled.shape),
        block=list(block_shape(*values.shape)),
        max_abs=row["max_abs"],
    )
    return matrix, sigma, pooled


def _head_parts(name: str, blocks, *, role: dict, part_role: str) -> list[tuple]:
    """Return (head row, spectrum, head-vector item; None for cross-attention) per head block."""
    parts = []
    for h, block in enumerate(blocks or []):
        sigma = singular_values(block)
        where = _where(role)
        head = {
            "name": name,
            "role": part_role,
            **where,
            "head": h,
            "frobenius": float(np.sqrt(np.sum(sigma**2))),
            **{k: v for k, v in spectrum_summary(sigma).items() if "alpha" not in k},
            "spectrum": None,
        }
        item = None if role["cross"] else ({**where, "head": h}, name, block.size)
        parts.append((head, sigma, item))
    return parts


def _stack_heatmaps(heatmaps: list[np.ndarray]) -> np.ndarray:
    """Stack pooled matrices into [matrix, limit, limit] float32, NaN-padded."""
    out = np.full((len(heatmaps), HEATMAP_LIMIT, HEATMAP_LIMIT), np.nan, dtype=np.float32)
    for i, pooled in enumerate(heatmaps):
        out[i, : pooled.shape[0], : pooled.shape[1]] = pooled
    return out


def head_gram(arrays, items: list, role: str, d_head: int) -> np.ndarray | None:
    """Return the float64 Gram matrix V Vᵀ of one role's per-head vectors, or None.

    Args:
        arrays: the parameter mapping, read again one tensor at a time.
        items: (where, tensor name, vector size) per head vector, in row order.
        role: query, key, value or attn_out.
        d_head: width of one attention head.

    Returns:
        [head_vector, head_vector], or None when there are fewer than two vectors or more than
        HEAD_GRAM_MAX_ELEMENTS values in all (decided from the sizes, before anything is read).
    """
    if len(items) < 2 or len(items) * items[0][2] > HEAD_GRAM_MAX_ELEMENTS:
        return None
    stacked = np.empty((len(items), items[0][2]), dtype=np.float64)
    row = 0
    for name in dict.fromkeys(name for _, name, _ in items):
        row = _fill_head_rows(stacked, row, arrays[name], name=name, role=role, d_head=d_head)
    assert row == len(items), f"{role}: {row} head vectors read, {len(items)} indexed"
    return stacked @ stacked.T


def _fill_head_rows(
    stacked: np.ndarray, row: int, values: np.ndarray, *, name: str, role: str, d_head: int
) -> int:
    """Write the flattened heads of `role` in one tensor into `stacked` from `row`; return the next."""
    parts = dict(_head_matrices(name, classify(name).role, values))
    for block in head_blocks(parts[role], role, d_head):
        stacked[row] = block.ravel()
        row += 1
    return row


def weight_artifacts(
    arrays: Mapping[str, np.ndarray],
    config,
    threads: int | None = None,
    progress: str | None = None,
):
    """Compute the weight statistics of a loaded model -> (manifest section, arrays with axes).

    Args:
        arrays: `parameter_arrays(model)` of the loaded model (or the streamed parameters).
        config: its ModelConfig (for d_head).
        threads: threads to spread the tensors over (None: one per CPU).
        progress: the label of a progress bar over the tensors (None: no bar).
    """
    from threadpoolctl import threadpool_limits

    # One BLAS thread: many small SVDs gain nothing from threads, and on a shared machine
    # oversubscribed threads made them ~10× slower.
    with threadpool_limits(limits=1):
        return weight_statistics(arrays, int(config.d_head), threads, progress)


def store_weight_artifacts(computed: tuple[dict, dict], writer) -> dict:
    """Write what `weight_artifacts` computed with `writer`; return the manifest section."""
    section, out_arrays = computed
    for name, (array, axes) in out_arrays.items():
        writer.write_array(name, array, axes)
    return section
