"""Rotary position embeddings (RoPE) and their scaling variants, as `transformers` 5 computes them.

Supported `rope_type`s: default, linear, dynamic (NTK), llama3, yarn; read from either the
current `rope_parameters` dict or the older `rope_scaling` dict plus top-level `rope_theta`
(`type` is accepted for `rope_type`). The inverse frequencies follow
`transformers/modeling_rope_utils.py` step by step (float32, same order of operations).

Axes: token, d_rot (= d_head: every dimension rotates), batch, head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from generator.errors import ModelLoadError

ROPE_TYPES = ("default", "linear", "dynamic", "llama3", "yarn")


@dataclass(frozen=True)
class RopeConfig:
    """Everything that decides the rotary frequencies.

    Attributes:
        rope_type: one of `ROPE_TYPES`.
        theta: base wavelength.
        d_rot: rotated width (the head width).
        max_positions: `max_position_embeddings` of the config.
        factor: scaling factor (all types but default).
        original_max_positions: pre-training context (llama3, yarn).
        low_freq_factor, high_freq_factor: llama3 band edges.
        beta_fast, beta_slow, attention_factor, mscale, mscale_all_dim, truncate: yarn settings.
    """

    rope_type: str
    theta: float
    d_rot: int
    max_positions: int
    factor: float = 1.0
    original_max_positions: int | None = None
    low_freq_factor: float | None = None
    high_freq_factor: float | None = None
    beta_fast: float | None = None
    beta_slow: float | None = None
    attention_factor: float | None = None
    mscale: float | None = None
    mscale_all_dim: float | None = None
    truncate: bool = True


def parse_rope(cfg: dict[str, Any], d_head: int, max_positions: int) -> RopeConfig:
    """Read the RoPE settings of a config.json dict (`rope_parameters` or `rope_scaling`).

    Raises:
        ModelLoadError: an unsupported rope type, partial rotation, or a missing setting.
    """
    params = dict(cfg.get("rope_parameters") or cfg.get("rope_scaling") or {})
    if params and not isinstance(params.get("rope_type", params.get("type", "default")), str):
        raise ModelLoadError("rope_parameters is nested per layer type, which is not supported")
    rope_type = params.get("rope_type", params.get("type", "default"))
    if rope_type not in ROPE_TYPES:
        raise ModelLoadError(
            f"rope type {rope_type!r} is not supported; supported: {', '.join(ROPE_TYPES)}"
        )
    partial = params.get("partial_rotary_factor", cfg.get("partial_rotary_factor", 1.0))
    if partial not in (None, 1, 1.0):
        raise ModelLoadError(f"partial_rotary_factor {partial} is not supported; only 1.0 is")
    theta = float(params.get("rope_theta", cfg.get("rope_theta", 10000.0)))

    def need(key: str) -> Any:
        if params.get(key) is None:
            raise ModelLoadError(f"rope type {rope_type!r} needs {key!r} in rope_parameters")
        return params[key]

    original = None
    if rope_type in ("llama3", "yarn"):
        # transformers prefers a top-level original_max_position_embeddings, then the rope dict,
        # then max_position_embeddings.
        original = cfg.get("original_max_position_embeddings") or params.get(
            "original_max_position_embeddings", max_positions
        )
    rope = RopeConfig(
        rope_type=rope_type,
        theta=theta,
        d_rot=d_head,
        max_positions=max_positions,
        factor=float(need("factor")) if rope_type != "default" else 1.0,
        original_max_positions=int(original) if original is not None else None,
    )
    if rope_type == "llama3":
        rope = _replace(
            rope,
            low_freq_factor=float(need("low_freq_factor")),
            high_freq_factor=float(need("high_freq_factor")),
        )
    if rope_type == "yarn":
        rope = _replace(
            rope,
            beta_fast=float(params.get("beta_fast") or 32),
            beta_slow=float(params.get("beta_slow") or 1),
            attention_factor=_optional_float(params.get("attention_factor")),
            mscale=_optional_float(params.get("mscale")),
            mscale_all_dim=_optional_float(params.get("mscale_all_dim")),
            truncate=bool(params.get("truncate", True)),
        )
    return rope


def _replace(rope: RopeConfig, **changes) -> RopeConfig:
    import dataclasses

    return dataclasses.replace(rope, **changes)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _base_inv_freq(theta: float, dim: int) -> np.ndarray:
    """Return 1 / theta ** (2i / dim) for i < dim / 2, in float32 like transformers."""
    exponents = np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)
    return (np.float32(1.0) / (np.float32(theta) ** exponents)).astype(np.float32)


def inverse_frequencies(rope: RopeConfig, seq_len: int) -> tuple[np.ndarray, float]:
    """Return the [d_rot / 2] float32 inverse frequencies and the cos/sin scaling factor.

    Args:
        rope: the rotary settings.
        seq_len: padded sequence length of the batch (dynamic NTK rescales beyond
            max_positions, as transformers does from the largest position id).
    """
    dim = rope.d_rot
    if rope.rope_type == "default":
        return _base_inv_freq(rope.theta, dim), 1.0
    if rope.rope_type == "linear":
        return (_base_inv_freq(rope.theta, dim) / np.float32(rope.factor)).astype(np.float32), 1.0
    if rope.rope_type == "dynamic":
        if seq_len <= rope.max_positions:
            return _base_inv_freq(rope.theta, dim), 1.0
        base = rope.theta * ((rope.factor * seq_len / rope.max_positions) - (rope.factor - 1)) ** (
            dim / (dim - 2)
        )
        return _base_inv_freq(base, dim), 1.0
    if rope.rope_type == "llama3":
        return _llama3(rope), 1.0
    return _yarn(rope)


def _llama3(rope: RopeConfig) -> np.ndarray:
    """Llama 3.1 frequency bands: keep high, divide low by factor, blend the middle."""
    inv_freq = _base_inv_freq(rope.theta, rope.d_rot)
    factor, old_len = rope.factor, rope.original_max_positions
    low_wavelen = old_len / rope.low_freq_factor
    high_wavelen = old_len / rope.high_freq_factor
    wavelen = (2 * math.pi / inv_freq).astype(np.float32)
    scaled = np.where(wavelen > low_wavelen, inv_freq / np.float32(factor), inv_freq)
    smooth = (old_len / wavelen - rope.low_freq_factor) / (
        rope.high_freq_factor - rope.low_freq_factor
    )
    smoothed = (1 - smooth) * scaled / np.float32(factor) + smooth * scaled
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return np.where(medium, smoothed, scaled).astype(np.float32)


def _yarn(rope: RopeConfig) -> tuple[np.ndarray, float]:
    """YaRN: blend interpolated and extrapolated frequencies; scale cos/sin by mscale."""
    dim, base, factor = rope.d_rot, rope.theta, rope.factor

    def get_mscale(scale: float, mscale: float = 1.0) -> float:
        return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0

    attention_factor = rope.attention_factor
    if attention_factor is None:
        if rope.mscale and rope.mscale_all_dim:
            attention_factor = float(
                get_mscale(factor, rope.mscale) / get_mscale(factor, rope.mscale_all_dim)
            )
        else:
            attention_factor = get_mscale(factor)

    def correction_dim(rotations: float) -> float:
        return (dim * math.log(rope.original_max_positions / (rotations * 2 * math.pi))) / (
            2 * math.log(base)
        )

    low, high = correction_dim(rope.beta_fast), correction_dim(rope.beta_slow)
    if rope.truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001  # prevent a singularity, as transformers does
    ramp = np.clip((np.arange(dim // 2, dtype=np.float32) - low) / (high - low), 0, 1)
    extrapolation_factor = (1 - ramp).astype(np.float32)
    pos_freqs = np.float32(base) ** (np.arange(0, dim, 2).astype(np.float32) / np.float32(dim))
    extrapolation = np.float32(1.0) / pos_freqs
    interpolation = np.float32(1.0) / (np.float32(factor) * pos_freqs)
    inv_freq = interpolation * (1 - extrapolation_factor) + extrapolation * extrapolation_factor
    return inv_freq.astype(np.float32), float(attention_factor)


def rotary_tables(rope: RopeConfig, seq_len: int, dtype) -> tuple[jax.Array, jax.Array]:
    """Return cos and sin [token, d_rot] for positions 0..seq_len-1, cast to `dtype`."""
    inv_freq, scaling = inverse_frequencies(rope, seq_len)
    positions = jnp.arange(seq_len, dtype=jnp.float32)
    freqs = positions[:, None] * jnp.asarray(inv_freq)[None, :]  # [token, d_rot / 2]
    emb = jnp.concatenate([freqs, freqs], axis=-1)
    return (jnp.cos(emb) * scaling).astype(dtype), (jnp.sin(emb) * scaling).astype(dtype)


def rotate_half(x: jax.Array) -> jax.Array:
    """Map the halves (x1, x2) of the last axis to (-x2, x1)."""
    half = x.shape[-1] // 2
    return jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rotary(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """Rotate [batch, head, token, d_head] by the position tables [token, d_head] (shared by
    every row) or [batch, token, d_head] (each row's own positions, as a cached step has)."""
    if cos.ndim == 3:
        return x * cos[:, None] + rotate_half(x) * sin[:, None]
    return x * cos[None, None] + rotate_half(x) * sin[None, None]
