"""One pass of the jitted corpus step over every batch, streamed into open artifact arrays.

Used for the card's model and, with other weights but the same compiled step, for each of
its further checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from generator.artifacts import storable
from generator.errors import AtlasError
from generator.extract import sharding
from generator.extract.batching import Batch, pad_rows


class NonFiniteActivations(AtlasError):
    """Activations contain NaN or Inf."""


def non_finite_error(
    layer: int, text_index: int, text: str, where: str = ""
) -> NonFiniteActivations:
    """Describe the first layer whose hidden states are not finite, and the text that showed it."""
    place = "the embeddings" if layer == 0 else f"output of block {layer - 1}"
    shown = repr(text if len(text) <= 60 else text[:57] + "...")
    return NonFiniteActivations(
        f"{where}NaN or Inf in activations at layer {layer} ({place}; layer 0 = embeddings) for "
        f"text {text_index} {shown} (counting from 0); check the checkpoint's weights, or use "
        "dtype float32 if it is bfloat16"
    )


def special_mask(ids: np.ndarray, mask: np.ndarray, special_ids: list[int]) -> np.ndarray:
    """Return [batch, token] int32: 1 where a real (non-padding) token is a special token."""
    return (np.isin(ids, special_ids) & (mask > 0)).astype(np.int32)


def stream_corpus(
    step,
    params,
    batches: list[Batch],
    ids: tuple[np.ndarray, ...],
    pad_id: int,
    *,
    streamed: dict[str, np.ndarray],
    summed: dict[str, np.ndarray] | None = None,
    desc: str,
    progress: bool,
    mesh=None,
    special_ids: list[int] | None = None,
    texts: Sequence[str] | None = None,
    where: str = "",
    on_batch=None,
) -> None:
    """Run `step(params, input_ids, attention_mask, special_mask)` over `batches` into `streamed`.

    Args:
        step: the jitted corpus step; returns reducer name -> [batch, ...] (with `finite`).
        params: the weights passed to `step`.
        batches: the length-bucketed batches of the corpus.
        ids: per text, its [token] ids.
        pad_id: padding token id.
        streamed, summed: reducer name -> writable [text, ...] array (memory map) the rows go to,
            or [...] array the rows are added into (summed reducers).
        desc: progress-bar label.
        progress: show a progress bar on stderr.
        mesh: the device mesh batches are placed on (None: the default device).
        special_ids: token ids marked in the special-token mask (attention sinks).
        texts: the corpus texts, quoted in the non-finite error.
        where: prefix of the error message naming the weights (e.g. "checkpoint 'epoch-1': ").
        on_batch: on_batch(outputs, batch, attention_mask) after each batch (extract/neurons.py).

    Raises:
        NonFiniteActivations: some non-padding activation is NaN or Inf.
    """
    from tqdm import tqdm

    for batch in tqdm(batches, desc=desc, unit="batch", disable=not progress):
        input_ids, mask = pad_rows(
            [ids[r] for r in batch.rows], batch.bucket, batch.batch_size, pad_id
        )
        specials = special_mask(input_ids, mask, special_ids or [])
        out = sharding.fetch(step(params, *sharding.place_batch(mesh, input_ids, mask, specials)))
        rows = len(batch.rows)
        bad = np.argwhere(~out["finite"][:rows])
        if bad.size:
            row, layer = bad[0]
            index = int(batch.rows[row])
            raise non_finite_error(int(layer), index, texts[index] if texts else "", where)
        if on_batch is not None:
            on_batch(out, batch, mask)
        for name, array in streamed.items():
            array[batch.rows] = storable(np.asarray(out[name][:rows]))
        for name, array in (summed or {}).items():
            array += np.asarray(out[name][:rows], np.float64).sum(axis=0)
    for array in [*streamed.values(), *(summed or {}).values()]:
        array.flush()
