"""One pass of the jitted corpus step over every batch, streamed into open artifact arrays.

Used for the card's model and, with other weights but the same compiled step, for each of
its further checkpoints.
"""

from __future__ import annotations

import numpy as np

from generator.artifacts import storable
from generator.errors import AtlasError
from generator.extract.batching import Batch, pad_rows


class NonFiniteActivations(AtlasError):
    """Activations contain NaN or Inf."""


def stream_corpus(
    step,
    params,
    batches: list[Batch],
    ids: tuple[np.ndarray, ...],
    pad_id: int,
    streamed: dict[str, np.ndarray],
    desc: str,
    progress: bool,
    where: str = "",
) -> None:
    """Run `step(params, input_ids, attention_mask)` over `batches`; write rows into `streamed`.

    Args:
        step: the jitted corpus step; returns reducer name -> [batch, ...] (with `finite`).
        params: the weights passed to `step`.
        batches: the length-bucketed batches of the corpus.
        ids: per text, its [token] ids.
        pad_id: padding token id.
        streamed: reducer name -> writable [text, ...] array (memory map).
        desc: progress-bar label.
        progress: show a progress bar on stderr.
        where: prefix of the error message naming the weights (e.g. "checkpoint 'epoch-1': ").

    Raises:
        NonFiniteActivations: some non-padding activation is NaN or Inf.
    """
    import jax
    from tqdm import tqdm

    for batch in tqdm(batches, desc=desc, unit="batch", disable=not progress):
        input_ids, mask = pad_rows(
            [ids[r] for r in batch.rows], batch.bucket, batch.batch_size, pad_id
        )
        out = jax.device_get(step(params, input_ids, mask))
        rows = len(batch.rows)
        bad = np.argwhere(~out["finite"][:rows])
        if bad.size:
            row, layer = bad[0]
            raise NonFiniteActivations(
                f"{where}NaN or Inf in activations of layer {layer} for text {batch.rows[row]} "
                f"(of {len(bad)} bad layer-text pairs); check the checkpoint or use dtype float32"
            )
        for name, array in streamed.items():
            array[batch.rows] = storable(np.asarray(out[name][:rows]))
    for array in streamed.values():
        array.flush()
