"""Head importance: ablation of every head (batched masks) and Michel et al. (2019) gradients.

`objective(head_mask [layer, head]) -> [example]` gives the per-example task objective with each
head's output scaled by its mask entry (1 = kept, 0 = removed); it closes over the batch. The
mask may also come as a list of per-layer [head] rows (`ablation_importance` does that), so the
objective should only index it by layer.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

MaskedObjective = Callable[[jax.Array], jax.Array]


def single_head_masks(n_layers: int, n_heads: int) -> jax.Array:
    """Return [layer*head, layer, head] masks, each removing exactly one head."""
    eye = jnp.eye(n_layers * n_heads, dtype=jnp.float32)
    return (1.0 - eye).reshape(n_layers * n_heads, n_layers, n_heads)


def mask_drops(objective: MaskedObjective, full: jax.Array, masks: jax.Array, chunk: int):
    """Per-example drop of the objective under each mask -> [example, mask].

    full: [example] the objective with every head. Masks are evaluated `chunk` at a time with
    `jax.lax.map(..., batch_size=chunk)`, i.e. vmapped in chunks, so memory stays bounded while
    no mask needs its own Python-level forward pass.
    """
    ablated = jax.lax.map(objective, masks, batch_size=min(chunk, len(masks)))  # [mask, example]
    return (full[None, :] - ablated).T


def ablation_drops(
    objective: MaskedObjective, n_layers: int, n_heads: int, chunk: int = 8
) -> jax.Array:
    """Per-example drop of the objective when each head alone is removed -> [example, layer, head].

    The whole model runs for every head (see `mask_drops`); `row_ablation_drops` runs only the
    layers from the head's own upward.
    """
    full = objective(jnp.ones((n_layers, n_heads), jnp.float32))  # [example]
    drops = mask_drops(objective, full, single_head_masks(n_layers, n_heads), chunk)
    return drops.reshape(-1, n_layers, n_heads)


def row_ablation_drops(objective: MaskedObjective, full: jax.Array, n_heads: int, chunk: int):
    """Per-example drop when each head of one layer alone is removed -> [example, head].

    `objective(row [head]) -> [example]` scales that layer's heads by `row` and keeps every
    other head; full: [example] the objective with every head.
    """
    return mask_drops(objective, full, 1.0 - jnp.eye(n_heads, dtype=jnp.float32), chunk)


def ablation_importance(
    objective: MaskedObjective, n_layers: int, n_heads: int, chunk: int = 8
) -> jax.Array:
    """Mean drop of the objective when each head alone is removed -> [layer, head]."""
    return jnp.mean(ablation_drops(objective, n_layers, n_heads, chunk), axis=0)


def gradient_importance(objective: MaskedObjective, n_layers: int, n_heads: int) -> jax.Array:
    """Michel et al. (2019): E_x |∂f(x)/∂ξ_h| at ξ = 1, per head -> [layer, head]."""
    ones = jnp.ones((n_layers, n_heads), jnp.float32)
    jacobian = jax.jacrev(objective)(ones)  # [example, layer, head]
    return jnp.mean(jnp.abs(jacobian), axis=0)


def per_example_gradients(objective: Callable, examples, n_layers: int, n_heads: int) -> jax.Array:
    """∂f(x)/∂ξ at ξ = 1 of every example, one example's gradient per vmap lane.

    `objective(*examples, head_mask) -> [example]` is the batched task objective and `examples`
    its batched leading arguments (e.g. (inputs, embeds)); each example is fed as a batch of
    one. `jax.jacrev` of the batched objective back-propagates the whole batch once per
    example; vmapping the per-example gradient costs one batched backward pass.

    Returns: [example, layer, head].
    """

    def one(head_mask, example):
        return objective(*jax.tree.map(lambda a: a[None], example), head_mask)[0]

    ones = jnp.ones((n_layers, n_heads), jnp.float32)
    return jax.vmap(jax.grad(one), in_axes=(None, 0))(ones, tuple(examples))


def per_example_gradient_importance(
    objective: Callable, examples, n_layers: int, n_heads: int
) -> jax.Array:
    """Michel et al. (2019) as `gradient_importance`, from `per_example_gradients`."""
    gradients = per_example_gradients(objective, examples, n_layers, n_heads)
    return jnp.mean(jnp.abs(gradients), axis=0)  # [layer, head]


def fidelity_taylor_drops(
    embed: Callable[[jax.Array], jax.Array], n_layers: int, n_heads: int, chunk: int = 8
) -> jax.Array:
    """Second-order Taylor estimate of 1 - cos(e(ξ - δ_h), e(ξ)) per example and head.

    `embed(head_mask) -> [example, d]` is the output embedding. The cosine of the ablated to the
    unablated embedding is 1 at ξ = 1 with zero gradient (a maximum), so the first-order
    (Michel et al.) term vanishes; to second order, removing head h costs
    ½ ‖P⊥ J_h‖² / ‖e‖², with J_h = ∂e/∂ξ_h (one forward-mode product per head, `chunk` heads
    vmapped at a time) and P⊥ the projection off e.

    Returns: [example, layer, head].
    """
    ones = jnp.ones((n_layers, n_heads), jnp.float32)

    def tangent_of(direction):
        return jax.jvp(embed, (ones,), (direction,))[1]  # [example, d]

    directions = 1.0 - single_head_masks(n_layers, n_heads)  # one-hot [layer*head, L, H]
    drops = taylor_drops(tangent_of, embed(ones), directions, chunk)
    return drops.reshape(-1, n_layers, n_heads)


def row_taylor_drops(embed_row: Callable, base: jax.Array, n_heads: int, chunk: int):
    """`fidelity_taylor_drops` for the heads of one layer -> [example, head].

    `embed_row(row [head]) -> [example, d]` scales that layer's heads by `row` (every other head
    kept); base: [example, d] the embedding with every head. One primal pass, one tangent
    pass per head: when every head fits one chunk, `jax.jvp` of the vmapped directions (the
    primal is not batched, so it runs once; tracing a jvp costs far less than linearising the
    layers' `lax.cond`s); else the map is linearised once (`jax.linearize`).
    """
    ones = jnp.ones((n_heads,), jnp.float32)
    directions = jnp.eye(n_heads, dtype=jnp.float32)
    if chunk >= n_heads:
        tangents = jax.vmap(lambda d: jax.jvp(embed_row, (ones,), (d,))[1])(directions)
        return drops_of_tangents(tangents, base).T
    _, tangent_of = jax.linearize(embed_row, ones)
    return taylor_drops(tangent_of, base, directions, chunk)


def taylor_drops(tangent_of: Callable, base: jax.Array, directions: jax.Array, chunk: int):
    """½ ‖P⊥ J d‖² / ‖e‖² for each direction d -> [example, direction].

    tangent_of(d) -> [example, d_model] is J d; base: [example, d_model] the embedding e.
    """

    def drop(direction):
        return drops_of_tangents(tangent_of(direction), base)

    return jax.lax.map(drop, directions, batch_size=min(chunk, len(directions))).T


def drops_of_tangents(tangent: jax.Array, base: jax.Array) -> jax.Array:
    """½ ‖P⊥ t‖² / ‖e‖² of tangents t [..., example, d_model], e = base [example, d_model].

    Returns [..., example].
    """
    unit = base / (jnp.linalg.norm(base, axis=-1, keepdims=True) + 1e-12)
    across = tangent - jnp.sum(tangent * unit, axis=-1, keepdims=True) * unit
    return 0.5 * jnp.sum(across**2, axis=-1) / (jnp.sum(base**2, axis=-1) + 1e-12)


def pruning_masks(
    order: np.ndarray, n_layers: int, n_heads: int, fractions: np.ndarray
) -> np.ndarray:
    """Masks [fraction, layer, head] removing the first `fraction` of heads in `order`.

    Args:
        order: flat head indices (layer * n_heads + head), the first removed first.
        fractions: shares of heads removed, in [0, 1).
    """
    total = n_layers * n_heads
    masks = np.ones((len(fractions), total), dtype=np.float32)
    for row, fraction in enumerate(fractions):
        masks[row, np.asarray(order)[: int(round(fraction * total))]] = 0.0
    return masks.reshape(len(fractions), n_layers, n_heads)


def mean_objectives(objective: MaskedObjective) -> Callable[[jax.Array], jax.Array]:
    """Return a jitted `masks [mask, layer, head] -> [mask]` of mean objectives (compiled once)."""
    return jax.jit(lambda masks: jax.lax.map(lambda mask: jnp.mean(objective(mask)), masks))


def pruning_curve(
    objective: MaskedObjective,
    order: np.ndarray,
    n_layers: int,
    n_heads: int,
    fractions: np.ndarray,
    *,
    evaluate=None,
) -> np.ndarray:
    """Mean objective after removing the first `fraction` of heads in `order` -> [fraction].

    Pass `evaluate = mean_objectives(objective)` to reuse one compiled program across orders.
    """
    evaluate = evaluate or mean_objectives(objective)
    return np.asarray(evaluate(jnp.asarray(pruning_masks(order, n_layers, n_heads, fractions))))


def pruning_curves(
    evaluate: Callable[[jax.Array], jax.Array],
    orders: list[np.ndarray],
    n_layers: int,
    n_heads: int,
    fractions: np.ndarray,
) -> np.ndarray:
    """Pruning curves of several orders in one call -> [order, fraction].

    `evaluate` maps masks [mask, layer, head] to mean objectives [mask] (e.g. a jitted
    `mean_objectives`); each distinct mask is evaluated once (every order's first masks, with
    no or few heads removed, often coincide).
    """
    masks = np.concatenate([pruning_masks(o, n_layers, n_heads, fractions) for o in orders])
    distinct, inverse = np.unique(masks.reshape(len(masks), -1), axis=0, return_inverse=True)
    values = np.asarray(evaluate(jnp.asarray(distinct.reshape(-1, n_layers, n_heads))))
    return values[np.ravel(inverse)].reshape(len(orders), len(fractions))


def collapsed(values: np.ndarray, full: float, floor: float, tolerance: float) -> bool:
    """True when every value lies within `tolerance` × |full − floor| of `floor`.

    full: the mean objective with every head; floor: with every head removed. The objective
    has then lost all but `tolerance` of what the heads contribute to it.
    """
    return bool(np.all(np.abs(np.asarray(values) - floor) <= tolerance * abs(full - floor)))


def pruning_curves_until_collapse(
    evaluate: Callable[[jax.Array], jax.Array],
    orders: list[np.ndarray],
    shape: tuple[int, int],
    fractions: np.ndarray,
    *,
    tolerance: float,
    batch: int | None = None,
) -> tuple[np.ndarray, float, float | None]:
    """Pruning curves evaluated fraction by fraction, stopped once every order has collapsed.

    `evaluate` maps masks [mask, layer, head] to mean objectives [mask]. The masks to evaluate
    are the floor (every head removed), then each fraction's distinct masks in turn. Without
    `batch`, each call takes one fraction's (the first call the floor too); with it, calls take
    `batch` masks of that sequence at a time, running on into the next fractions (the last
    call may take fewer), so a caller that pads every call to `batch` pads only the last. After
    the first fraction at which every order's objective is `collapsed` (within `tolerance` of
    the range from the floor), the later fractions are not evaluated (beyond the call that
    completed it): NaN.

    Returns:
        curves [order, fraction] (NaN past the stop), the floor, and the fraction at which the
        curves collapsed (None when they never did).
    """
    n_layers, n_heads = shape
    masks = np.stack([pruning_masks(o, n_layers, n_heads, fractions) for o in orders])
    columns = []  # per fraction: (distinct masks [mask, layer, head], each order's row in them)
    for column in range(len(fractions)):
        flat = masks[:, column].reshape(len(orders), -1)
        distinct, inverse = np.unique(flat, axis=0, return_inverse=True)
        columns.append((distinct.reshape(-1, n_layers, n_heads), np.ravel(inverse)))
    floor_mask = np.zeros((1, n_layers, n_heads), masks.dtype)
    sequence = np.concatenate([floor_mask] + [distinct for distinct, _ in columns])
    ends = 1 + np.cumsum([len(distinct) for distinct, _ in columns])  # each column's end in it
    values = np.empty(len(sequence))
    curves = np.full((len(orders), len(fractions)), np.nan)
    done = column = 0
    while column < len(fractions):
        size = batch or int(ends[column]) - done  # without a batch: the next column's masks
        part = sequence[done : done + size]
        values[done : done + len(part)] = np.asarray(evaluate(jnp.asarray(part)))
        done += len(part)
        while column < len(fractions) and ends[column] <= done:  # every column now complete
            distinct, inverse = columns[column]
            curves[:, column] = values[ends[column] - len(distinct) : ends[column]][inverse]
            if column and collapsed(curves[:, column], curves[0, 0], values[0], tolerance):
                return curves, float(values[0]), float(fractions[column])
            column += 1
    return curves, float(values[0]), None


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n along the last axis, tied values sharing their mean rank (scipy's rankdata)."""
    values = np.asarray(values)
    order = np.argsort(values, axis=-1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=-1)
    starts = np.ones(ordered.shape, bool)  # where a run of equal values starts
    starts[..., 1:] = ordered[..., 1:] != ordered[..., :-1]
    flat = starts.ravel()
    run = np.cumsum(flat) - 1  # each sorted value's run of ties, counted over every row
    first = np.flatnonzero(flat)
    lengths = np.diff(np.append(first, flat.size))
    mean_rank = first % values.shape[-1] + (lengths + 1) / 2
    ranks = np.empty(values.shape, np.float64)
    np.put_along_axis(ranks, order, mean_rank[run].reshape(values.shape), axis=-1)
    return ranks


def spearman_rows(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each row pair [..., item] -> [...] (NaN where undefined).

    The Pearson correlation of average ranks, as scipy's spearmanr, for many rows at once:
    NaN when a row holds NaN or all its values are tied.
    """
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    a, b = average_ranks(first), average_ranks(second)
    a -= a.mean(axis=-1, keepdims=True)
    b -= b.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.clip((a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1)), -1, 1)
    undefined = np.isnan(first).any(axis=-1) | np.isnan(second).any(axis=-1)
    return np.where(undefined, np.nan, value)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two flattened arrays (average ranks for ties)."""
    return float(spearman_rows(np.ravel(a), np.ravel(b)))
