"""Building blocks shared by every family: dtypes, projections, norms, masks and attention.

Axes: batch, token (= query / key positions), head, d_model, d_head.
Parameters are always float32; `dtype` is the compute dtype. Softmax and norm statistics run in
float32, and with dtype "float32" every matmul runs at full float32 precision (no TF32 / bf16
passes on GPU or TPU), so results match PyTorch to ~1e-5.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
from flax import nnx

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
# Matmul precision per compute dtype: exact float32 where float32 is asked for.
PRECISIONS = {"float32": jax.lax.Precision.HIGHEST, "bfloat16": jax.lax.Precision.DEFAULT}

ACTIVATION_FNS = {
    "gelu": functools.partial(jax.nn.gelu, approximate=False),  # exact erf GELU
    "gelu_new": functools.partial(jax.nn.gelu, approximate=True),  # tanh approximation
    "gelu_pytorch_tanh": functools.partial(jax.nn.gelu, approximate=True),
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "tanh": jnp.tanh,
}

MASKED = float(jnp.finfo(jnp.float32).min)  # score added where a key is not visible


def check_dtype(dtype: str) -> None:
    """Raise ValueError unless `dtype` is a supported compute dtype."""
    if dtype not in COMPUTE_DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(COMPUTE_DTYPES)}")


def linear(d_in: int, d_out: int, dtype: str, rngs: nnx.Rngs, bias: bool = True) -> nnx.Linear:
    """Return a float32-parameter Linear computing in `dtype` (kernel [in, out])."""
    return nnx.Linear(
        d_in,
        d_out,
        use_bias=bias,
        dtype=COMPUTE_DTYPES[dtype],
        param_dtype=jnp.float32,
        precision=PRECISIONS[dtype],
        rngs=rngs,
    )


def embed(n: int, width: int, dtype: str, rngs: nnx.Rngs) -> nnx.Embed:
    """Return a float32-parameter embedding table [n, width] looked up in `dtype`."""
    return nnx.Embed(n, width, dtype=COMPUTE_DTYPES[dtype], param_dtype=jnp.float32, rngs=rngs)


def layer_norm(width: int, eps: float, dtype: str, rngs: nnx.Rngs) -> nnx.LayerNorm:
    """Return a LayerNorm with PyTorch's two-pass variance and the given epsilon."""
    return nnx.LayerNorm(
        width,
        epsilon=eps,
        use_fast_variance=False,
        dtype=COMPUTE_DTYPES[dtype],
        param_dtype=jnp.float32,
        rngs=rngs,
    )


class RMSNorm(nnx.Module):
    """Root-mean-square norm (Llama, T5): statistics in float32, then `weight * x` in `dtype`."""

    def __init__(self, width: int, eps: float, dtype: str, rngs: nnx.Rngs):
        del rngs  # initialised to ones, like PyTorch
        self.weight = nnx.Param(jnp.ones((width,), jnp.float32))
        self.eps = eps
        self.dtype = COMPUTE_DTYPES[dtype]

    def __call__(self, x: jax.Array) -> jax.Array:
        """Normalise [..., width] by its root mean square and scale."""
        x32 = x.astype(jnp.float32)
        variance = jnp.mean(x32 * x32, axis=-1, keepdims=True)
        normed = (x32 * jax.lax.rsqrt(variance + self.eps)).astype(x.dtype)
        return self.weight[...].astype(self.dtype) * normed.astype(self.dtype)


def split_heads(x: jax.Array, n_heads: int, d_head: int) -> jax.Array:
    """Split [batch, token, n_heads * d_head] into [batch, head, token, d_head]."""
    batch, token, _ = x.shape
    return x.reshape(batch, token, n_heads, d_head).transpose(0, 2, 1, 3)


def merge_heads(x: jax.Array) -> jax.Array:
    """Merge [batch, head, token, d_head] back into [batch, token, head * d_head]."""
    batch, heads, token, d_head = x.shape
    return x.transpose(0, 2, 1, 3).reshape(batch, token, heads * d_head)


def mask_bias(
    attention_mask: jax.Array, causal: bool = False, window: int | None = None
) -> jax.Array:
    """Return the additive attention bias [batch, 1, query, key] (0 visible, float32 min hidden).

    Args:
        attention_mask: [batch, token] 1 for real tokens, 0 for padding (keys that are hidden).
        causal: hide keys after the query (decoders).
        window: sliding window: a query sees only the `window` most recent keys (itself included).
    """
    keys = jnp.asarray(attention_mask)[:, None, None, :] > 0  # [batch, 1, 1, key]
    token = keys.shape[-1]
    query_pos = jnp.arange(token)[:, None]  # [query, 1]
    key_pos = jnp.arange(token)[None, :]  # [1, key]
    visible = keys
    if causal:
        visible = visible & (key_pos <= query_pos)[None, None]
    if window is not None:
        visible = visible & (key_pos > query_pos - window)[None, None]
    return jnp.where(visible, 0.0, MASKED).astype(jnp.float32)


def attend(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    bias: jax.Array,
    scale: float,
    *,
    precision,
    head_scale: jax.Array | None = None,
    position_bias: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Scaled dot-product attention with the softmax in float32.

    Args:
        q, k, v: [batch, head, token, d_head] (keys and values already one per query head).
        bias: additive [batch, 1 or head, query, key] float32 mask bias from `mask_bias`.
        scale: multiplier of the raw scores (usually d_head ** -0.5).
        precision: matmul precision.
        head_scale: optional [head] multipliers of each head's context (a head mask: 1 keeps a
            head, 0 removes it); the returned probabilities are not scaled.
        position_bias: optional additive [batch or 1, head or 1, query, key] float32 term the
            family adds to the scaled scores (relative positions), part of the returned scores.

    Returns:
        context [batch, head, query, d_head] in the dtype of `v`; probs [batch, head, query, key]
        float32, post-softmax (hidden keys get exactly 0 weight; a query with no visible key
        gets an all-zero row); scores [batch, head, query, key] float32: `q·k * scale` plus
        `position_bias`, before the mask (probs = softmax over the visible keys of scores).
    """
    scores = jnp.einsum("bhqd,bhkd->bhqk", q, k, precision=precision).astype(jnp.float32)
    scores = scores * scale
    if position_bias is not None:
        scores = scores + position_bias
    probs = jax.nn.softmax(scores + bias, axis=-1)
    # A query that sees no key at all (a padding row outside every window) attends to nothing.
    sees_any = jnp.any(bias > MASKED / 2, axis=-1, keepdims=True)
    probs = jnp.where(sees_any, probs, 0.0)
    context = jnp.einsum("bhqk,bhkd->bhqd", probs.astype(v.dtype), v, precision=precision)
    if head_scale is not None:
        context = context * head_scale.astype(context.dtype)[None, :, None, None]
    return context, probs, scores


PROBE_NAMES = ("attentions", "queries", "keys", "values")
OPTIONAL_PROBES = ("attention_scores", "mlp_activations")


def ordered_probes(probes: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Return stacked probes in the models' output order (what `stack_probes` returns)."""
    names = [*PROBE_NAMES, *(name for name in OPTIONAL_PROBES if name in probes)]
    return {name: probes[name] for name in names}


def stack_probes(probes: list[dict[str, jax.Array]]) -> dict[str, jax.Array]:
    """Stack per-layer probes into [batch, layer, ...] arrays.

    attentions, queries, keys, values always; attention_scores [batch, layer, head, query, key]
    (before the softmax and the mask) and mlp_activations [batch, layer, token, d_mlp] (the MLP
    hidden activation after its non-linearity) when every layer reports them. Inside a jitted
    step, XLA drops whatever the step does not return or use.
    """
    names = list(PROBE_NAMES)
    for optional in OPTIONAL_PROBES:
        if probes and all(optional in p for p in probes):
            names.append(optional)
    return {name: jnp.stack([p[name] for p in probes], axis=1) for name in names}


def pre_norm_block(
    x: jax.Array,
    *,
    attention: Callable[[jax.Array], dict[str, jax.Array]],
    norms: tuple[Callable, Callable],
    mlp_hidden: Callable[[jax.Array], jax.Array],
    mlp_out: Callable[[jax.Array], jax.Array],
) -> dict[str, jax.Array]:
    """One pre-norm decoder block (GPT-2, Llama): x + attn(norm_1 x), then + MLP(norm_2 x).

    `attention` returns its probes with `context` [batch, token, d_model]; the result holds the
    same probes, `mlp_activations` [batch, token, d_mlp] (the MLP hidden activation after its
    non-linearity) and `context` = the block output.
    """
    probes = attention(norms[0](x))
    x = x + probes["context"]
    hidden = mlp_hidden(norms[1](x))
    probes["mlp_activations"] = hidden
    probes["context"] = x + mlp_out(hidden)
    return probes


def run_blocks(
    x: jax.Array, blocks: list[Callable[[jax.Array], dict[str, jax.Array]]]
) -> tuple[jax.Array, list[jax.Array], list[dict[str, jax.Array]]]:
    """Apply blocks in order; return (last output, [input, each block's output], probes)."""
    hidden, probes = [x], []
    for block in blocks:
        p = block(x)
        x = p.pop("context")
        hidden.append(x)
        probes.append(p)
    return x, hidden, probes


# While set (see `unrolled_layers`), `scan_blocks` applies the blocks one by one.
_UNROLLED = contextvars.ContextVar("unrolled_layers", default=False)


@contextlib.contextmanager
def unrolled_layers() -> Iterator[None]:
    """Trace the blocks one by one instead of scanning them, while the context is open.

    For steps that reduce each layer's probes as the model makes them: a scan stacks every
    layer's probes before anything reads them, an unrolled stack lets XLA read each layer's
    maps in place (the corpus step's temporaries stay ~2.7x smaller at MiniLM, 64 x 128).
    """
    token = _UNROLLED.set(True)
    try:
        yield
    finally:
        _UNROLLED.reset(token)


LAYERS_ENV = "MODELATLAS_LAYERS"  # "scan" or "unroll": overrides the platform's default


def extraction_layers(platform: str) -> contextlib.AbstractContextManager:
    """Return the context the extraction traces its programs under on `platform`.

    On the CPU the blocks are applied one by one (each distinct block traced once:
    `_traced_once`): measured there (benchmarks/compile_cost.py), scanning saved no XLA time
    and grew the showcase and gradient programs' temporaries 1.3-1.9x (the layer parameters
    are stacked at each call), so CPU outputs stay exactly those of an unrolled trace. On
    accelerators, where compilation dominates a cold extract, runs of identical layers
    compile once (`scan_blocks`). `MODELATLAS_LAYERS=scan|unroll`
    overrides either default.
    """
    choice = os.environ.get(LAYERS_ENV, "").strip().lower()
    if choice not in ("", "scan", "unroll"):
        raise ValueError(f"{LAYERS_ENV} must be 'scan' or 'unroll', not {choice!r}")
    unroll = choice == "unroll" or (not choice and platform == "cpu")
    return unrolled_layers() if unroll else contextlib.nullcontext()


def layer_runs(blocks: list, keys: list | None = None) -> list[tuple[int, int]]:
    """Split block indices into runs [start, stop) of consecutive structurally identical blocks.

    Blocks share a run when their `nnx.split` graph definitions (structure and static
    attributes) are equal and so are their `keys` (a per-layer static choice such as the
    sliding window); one run compiles to one program whatever its length.
    """
    keys = [None] * len(blocks) if keys is None else list(keys)
    shapes = [(nnx.graphdef(block), key) for block, key in zip(blocks, keys, strict=True)]
    runs: list[tuple[int, int]] = []
    for index, shape in enumerate(shapes):
        if runs and shapes[runs[-1][0]] == shape:
            runs[-1] = (runs[-1][0], index + 1)
        else:
            runs.append((index, index + 1))
    return runs


def _run_scan(carry, blocks: list, step: Callable, xs, key):
    """Scan `step` over one run of identical blocks; return (carry, outputs [layer, ...])."""
    graphdef = nnx.graphdef(blocks[0])
    unique = list({id(block): block for block in blocks}.values())
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *(nnx.state(b) for b in unique))
    if len(unique) == len(blocks):  # one state per layer: scan over the stacked states

        def body(carry, inputs):
            state, x = inputs
            return step(nnx.merge(graphdef, state), carry, x, key)

        return jax.lax.scan(body, carry, (stacked, xs))
    # The same modules applied repeatedly (ALBERT): scan over an index into the unique ones.
    where = {id(block): i for i, block in enumerate(unique)}
    index = jnp.asarray([where[id(block)] for block in blocks], jnp.int32)

    def indexed(carry, inputs):
        i, x = inputs
        state = jax.tree.map(lambda a: a[i], stacked)
        return step(nnx.merge(graphdef, state), carry, x, key)

    return jax.lax.scan(indexed, carry, (index, xs))


def _concat_runs(outputs: list):
    """Concatenate run outputs along the layer axis (1); probe names missing from a run are dropped."""
    if len(outputs) == 1:
        return outputs[0]
    hidden = jnp.concatenate([h for h, _ in outputs], axis=1)
    names = [name for name in outputs[0][1] if all(name in p for _, p in outputs)]
    probes = {
        name: jax.tree.map(lambda *a: jnp.concatenate(a, axis=1), *(p[name] for _, p in outputs))
        for name in names
    }
    return hidden, probes


def _is_traced(tree) -> bool:
    """True when any leaf of `tree` is a tracer (the blocks are being traced, not run)."""
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


def _traced_once(step: Callable) -> Callable:
    """`step` with each distinct block (graph definition and key) traced once per program.

    Each block runs as a call of one jitted `step` per (graphdef, key): the layers of a
    structurally identical run share one traced (and transformed: vmap, jvp, grad) jaxpr
    instead of tracing the same layer again per layer; XLA inlines the calls, so the
    compiled program is that of the blocks traced one by one.
    """
    calls: list[tuple] = []

    def apply(block, carry, x, key):
        graphdef, state = nnx.split(block)
        call = next((c for g, k, c in calls if g == graphdef and k == key), None)
        if call is None:

            def run(state, carry, x):
                return step(nnx.merge(graphdef, state), carry, x, key)

            call = jax.jit(run)
            calls.append((graphdef, key, call))
        return call(state, carry, x)

    return apply


def scan_blocks(carry, blocks: list, step: Callable, *, xs=None, keys: list | None = None):
    """Apply `step` block after block, compiling each run of identical blocks once.

    Consecutive blocks with equal graph definitions (and equal `keys`) run under one
    `jax.lax.scan` over their stacked states, so XLA traces and compiles one layer per run
    instead of one per layer; a run of one block is called directly.

    Args:
        carry: pytree threaded through the blocks (the residual stream).
        blocks: the module applied at each layer, in order (a module may repeat: ALBERT).
        step: `(block, carry, x, key) -> (carry, (hidden [batch, ...], probes dict))`, with x
            the block's slice of `xs` and key its entry of `keys`.
        xs: pytree of per-layer arrays with a leading layer axis of len(blocks), or None.
        keys: one hashable static value per block (None: all equal).

    Returns:
        (last carry, (hidden [batch, layer, ...], probes {name: [batch, layer, ...]})).
    """
    keys = [None] * len(blocks) if keys is None else list(keys)
    outputs = []
    one_by_one = [(index, index + 1) for index in range(len(blocks))]
    apply_block = _traced_once(step) if _is_traced(carry) else step
    for start, stop in one_by_one if _UNROLLED.get() else layer_runs(blocks, keys):
        run_xs = jax.tree.map(lambda a, s=start, e=stop: a[s:e], xs)
        if stop - start == 1:
            x = jax.tree.map(lambda a: a[0], run_xs)
            carry, out = apply_block(blocks[start], carry, x, keys[start])
            out = jax.tree.map(lambda a: a[:, None], out)
        else:
            carry, out = _run_scan(carry, blocks[start:stop], step, run_xs, keys[start])
            out = jax.tree.map(lambda a: jnp.moveaxis(a, 0, 1), out)
        outputs.append(out)
    return carry, _concat_runs(outputs)


def with_input(x: jax.Array, hidden: jax.Array) -> jax.Array:
    """Prepend the first block's input x [batch, token, d] to hidden [batch, layer, token, d]."""
    return jnp.concatenate([x[:, None], hidden], axis=1)


def last_real_index(attention_mask: jax.Array) -> jax.Array:
    """Return [batch] the index of the last real token, padding on either side (0 if none)."""
    real = jnp.asarray(attention_mask) > 0
    token = real.shape[1]
    last = token - 1 - jnp.argmax(real[:, ::-1], axis=1)
    return jnp.where(jnp.any(real, axis=1), last, 0)


def last_token(x: jax.Array, attention_mask: jax.Array, axis: int = 1) -> jax.Array:
    """Take the last non-padding position along `axis` (the token axis) of x -> x without it."""
    last = last_real_index(attention_mask)
    shape = [1] * x.ndim
    shape[0] = -1
    picked = jnp.take_along_axis(x, last.reshape(shape), axis=axis)
    return jnp.squeeze(picked, axis=axis)
