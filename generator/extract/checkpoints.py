"""Further checkpoints of a card (e.g. training epochs): the corpus pass again, other weights.

Every checkpoint must have the card model's architecture and parameter tree; its weights go
through the card model's compiled corpus step (weights are an argument of the step, so nothing
is recompiled). Texts are tokenised once, with the card model's tokenizer; a checkpoint that
ships a tokenizer with another vocabulary is refused.

Arrays (axes), per checkpoint NAME, in the card's artifact folder:
  checkpoints/NAME/corpus/pooled_*        [text, layer, d_model]  as corpus/pooled_*
  checkpoints/NAME/corpus/unit_token_sum  [text, layer, d_model]  as corpus/unit_token_sum
"""

from __future__ import annotations

import logging
from pathlib import Path

from generator.errors import ModelLoadError
from generator.extract.source import download_from_hub
from generator.extract.tokenize import load_tokenizer, tokenizer_files
from generator.hashing import FileHashCache, file_sha256, files_sha256
from generator.weight_files import weight_files

log = logging.getLogger(__name__)

PREFIX = "checkpoints"


def is_checkpoint_reducer(name: str) -> bool:
    """Return True for the reducers also computed per checkpoint (poolings, token geometry)."""
    return name.startswith("pooled_") or name == "unit_token_sum"


def array_name(checkpoint: str, reducer: str) -> str:
    """Return the artifact name of one checkpoint's reducer output."""
    return f"{PREFIX}/{checkpoint}/corpus/{reducer}"


def checkpoint_dir(card, checkpoint) -> Path:
    """Return the local folder of one of the card's checkpoints, downloading a hub id."""
    local = card.checkpoint_model_path(checkpoint)
    if local is None:
        return download_from_hub(checkpoint.model, None)
    if not local.is_dir():
        raise ModelLoadError(
            f"checkpoint '{checkpoint.name}' path {local} is not a folder; point it at a "
            "checkpoint folder"
        )
    return local


def weights_sha256(folder: Path, hashes: FileHashCache, allow_pickle: bool = False) -> str | None:
    """Return the hash of a checkpoint's weight files (an index and all its shards), or None.

    A single file hashes to its own SHA-256; several to one hash over their names and hashes.
    """
    files = weight_files(folder, allow_pickle)
    if not files:
        return None
    if len(files) == 1:
        return hashes.sha256(files[0])
    return files_sha256(files, folder, hasher=hashes.sha256)


def checkpoint_fingerprints(card, hashes: FileHashCache) -> list[dict]:
    """Return, per checkpoint, the hashes of its weights, config and tokenizer files."""
    rows = []
    for checkpoint in card.checkpoints:
        folder = checkpoint_dir(card, checkpoint)
        config = folder / "config.json"
        rows.append(
            {
                "name": checkpoint.name,
                "weights_sha256": weights_sha256(folder, hashes),
                "config_sha256": file_sha256(config) if config.is_file() else None,
                "tokenizer_sha256": files_sha256(tokenizer_files(folder), folder),
            }
        )
    return rows


def checkpoint_params(folder: Path, name: str, reference, dtype: str):
    """Load a checkpoint's weights as the parameter state of the reference model's graph."""
    import jax
    from flax import nnx

    from generator.models.loading import load_model

    loaded = load_model(folder, dtype=dtype)
    if loaded.config != reference.config:
        raise ModelLoadError(
            f"checkpoint '{name}' ({folder}) has another architecture than the card's model; "
            "list only checkpoints of the same model (same config.json shapes)"
        )
    _, params = nnx.split(loaded.model)
    _, expected = nnx.split(reference.model)
    if jax.tree.structure(params) != jax.tree.structure(expected):
        raise ModelLoadError(
            f"checkpoint '{name}' ({folder}) has other parameter tensors than the card's model "
            "(e.g. a pooler only one of them has); save both with the same architecture"
        )
    return params, loaded


def check_tokenizer(folder: Path, name: str, tokenizer) -> None:
    """Refuse a checkpoint whose own tokenizer has another vocabulary than the card model's."""
    if not tokenizer_files(folder):
        return
    if load_tokenizer(folder).get_vocab() != tokenizer.get_vocab():
        raise ModelLoadError(
            f"checkpoint '{name}' ({folder}) has a tokenizer with another vocabulary than the "
            "card's model; checkpoints must share the card model's tokenizer"
        )


def extract_checkpoints(run) -> list[dict]:
    """Run the corpus step with each checkpoint's weights; return manifest records per checkpoint.

    Args:
        run: the ExtractRun (extract/capture.py) after its corpus pass: its card lists the
            `checkpoints`; its model (the architecture every checkpoint must match), tokenizer
            (the vocabulary every checkpoint must share), compiled corpus step, reducers,
            batches and token ids serve every checkpoint.

    Returns:
        [{name, source, ignored_tensors}] in the card's order.
    """
    return [extract_checkpoint(run, checkpoint) for checkpoint in run.card.checkpoints]


def extract_checkpoint(run, checkpoint) -> dict:
    """Stream the corpus with one checkpoint's weights into `checkpoints/NAME/corpus/*`."""
    import jax.numpy as jnp

    from generator.extract.reducers import open_reducer_arrays

    card = run.card
    folder = checkpoint_dir(card, checkpoint)
    params, loaded = checkpoint_params(folder, checkpoint.name, run.loaded, card.dtype)
    check_tokenizer(folder, checkpoint.name, run.tokenizer)
    streamed = open_reducer_arrays(
        run.writer,
        [reducer for reducer in run.reducers if is_checkpoint_reducer(reducer.name)],
        run.config,
        len(run.tokens.ids),
        store=jnp.dtype(card.store_dtype),
        prefix=f"{PREFIX}/{checkpoint.name}/",
    )
    run.stream(
        params,
        streamed,
        desc=f"{card.name}: checkpoint {checkpoint.name}",
        where=f"checkpoint '{checkpoint.name}': ",
    )
    log.info("%s: checkpoint %s extracted", card.name, checkpoint.name)
    return {
        "name": checkpoint.name,
        "source": checkpoint.model,
        "ignored_tensors": list(loaded.ignored),
    }
