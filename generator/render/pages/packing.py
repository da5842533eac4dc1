"""How the attention pages pack weights and label tokens (shared with their scripts)."""

from __future__ import annotations

import base64

import numpy as np

WEIGHT_SCALE = 1000  # attention weights travel as uint16 thousandths (3 decimals)


def encode_weights(weights: np.ndarray) -> str:
    """Pack attention weights in [0, 1] as base64 little-endian uint16 thousandths."""
    scaled = np.rint(np.clip(weights, 0.0, 1.0) * WEIGHT_SCALE).astype("<u2")
    return base64.b64encode(scaled.tobytes()).decode("ascii")


def decode_weights(packed: str) -> np.ndarray:
    """Unpack `encode_weights` output to float64 weights in [0, 1] (flat)."""
    return np.frombuffer(base64.b64decode(packed), dtype="<u2").astype(np.float64) / WEIGHT_SCALE


def token_label(index: int, token: str) -> str:
    """Return the axis label of a token: zero-padded position, space, token (as attention.js)."""
    return f"{index:04d} {token}"


def largest_map(examples: list[dict], sides: list[tuple[str, str]]) -> int:
    """Return the most query x key cells of one head's map among `examples`.

    `sides`: the (query side, key side) token lists of each attention kind, e.g. ("input",
    "input"); an example's tokens are `item["tokens"][side]`.
    """
    return max(
        (len(item["tokens"][q]) * len(item["tokens"][k]) for item in examples for q, k in sides),
        default=0,
    )
