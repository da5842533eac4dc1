"""Forward passes over the corpus and the showcase, streamed into the artifact store.

Corpus-wide arrays (axes):
  corpus/pooled_mean, corpus/pooled_cls  [text, layer, d_model]  layer = L+1, embeddings first
  corpus/unit_token_sum                  [text, layer, d_model]  sum of unit-length token vectors
  corpus/token_lengths                   [text]  tokens kept (special tokens included)
  corpus/full_lengths                    [text]  tokens before truncation
  corpus/texts, corpus/labels, corpus/splits  [text]  fixed-width unicode
Showcase arrays (one row per showcase example, padded to a common length):
  showcase/index [example]; input_ids, attention_mask, tokens [example, token]
  hidden_states [example, layer, token, d_model]; attentions [example, layer, head, query, key]
  queries, keys, values [example, layer, head, token, d_head]
Per further checkpoint NAME of the card (see checkpoints.py):
  checkpoints/NAME/corpus/pooled_*, checkpoints/NAME/corpus/unit_token_sum
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from generator.artifacts import ArtifactWriter
from generator.corpus import load_corpus
from generator.errors import CorpusError, StrictModeError
from generator.extract.batching import bucket_length, pad_rows, plan_batches
from generator.extract.corpus_pass import NonFiniteActivations, stream_corpus  # noqa: F401 (re-exported)
from generator.extract.showcase import choose_showcase
from generator.extract.tokenize import load_tokenizer, token_strings, tokenize_corpus

log = logging.getLogger(__name__)


def enable_compilation_cache(artifacts_root: Path) -> None:
    """Keep compiled XLA programs in the artifact folder so later builds skip compilation."""
    import jax

    cache = artifacts_root / ".jax-cache"
    cache.mkdir(parents=True, exist_ok=True)
    if jax.config.jax_compilation_cache_dir not in (None, str(cache)):
        # JAX opens its cache once per process; a second artifact root in the same process
        # (the Python API, tests) needs it reopened at the new place.
        from jax._src import compilation_cache

        compilation_cache.reset_cache()
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def strings_array(values) -> np.ndarray:
    """Return a fixed-width unicode array (readable by numpy without pickle)."""
    values = [str(v) for v in values]
    width = max([1, *(len(v) for v in values)])
    return np.array(values, dtype=f"<U{width}")


def parameter_inventory(model) -> list[dict]:
    """List every parameter tensor of an nnx module: dotted name, shape, element count."""
    from flax import nnx

    flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
    rows = []
    for path, variable in flat:
        value = variable.get_value() if hasattr(variable, "get_value") else variable.value
        shape = [int(s) for s in value.shape]
        rows.append(
            {"name": ".".join(str(p) for p in path), "shape": shape, "count": int(np.prod(shape))}
        )
    return sorted(rows, key=lambda row: row["name"])


def warn(message: str, warnings: list[str], strict: bool) -> None:
    """Record a warning, or fail at once under --strict."""
    if strict:
        raise StrictModeError(f"--strict: {message}")
    warnings.append(message)


def capture(
    card,
    model_dir: Path,
    artifacts_root: Path,
    writer: ArtifactWriter,
    strict: bool,
    progress: bool,
) -> tuple[dict, list[str]]:
    """Run the model over the corpus and showcase; return (manifest details, warnings)."""
    enable_compilation_cache(artifacts_root)
    import jax
    import jax.numpy as jnp
    from tqdm import tqdm

    from generator.extract.checkpoints import extract_checkpoints
    from generator.extract.reducers import active_reducers
    from generator.extract.steps import make_steps
    from generator.models.loading import load_model

    warnings: list[str] = []
    loaded = load_model(model_dir, dtype=card.dtype)
    config = loaded.config
    details = {
        "model": {
            "source": card.model,
            "revision": card.revision,
            "family": config.family,
            "model_type": config.model_type,
            "config": config.to_dict(),
            "hf_config": loaded.hf_config,
            "ignored_tensors": list(loaded.ignored),
        },
        "parameters": parameter_inventory(loaded.model),
        "dtype": card.dtype,
        "store_dtype": card.store_dtype,
        "devices": [str(jax.devices()[0].platform)],
    }
    if card.corpus_path() is None:
        details["corpus"] = None
        return details, warnings

    corpus = load_corpus(card.corpus_path(), card.text_field, card.label_field, card.split_field)
    tokenizer = load_tokenizer(model_dir)
    max_length = card.max_length
    if max_length > config.max_positions:
        warn(
            f"max_length {max_length} exceeds the model's {config.max_positions} positions; "
            f"using {config.max_positions}",
            warnings,
            strict,
        )
        max_length = config.max_positions
    tokens = tokenize_corpus(tokenizer, list(corpus.texts), max_length)
    if tokens.truncated:
        warn(
            f"{tokens.truncated} of {len(corpus)} texts are longer than max_length {max_length} "
            "tokens and were truncated",
            warnings,
            strict,
        )
    if min(tokens.lengths) == 0:
        raise CorpusError(f"{corpus.source}: a text produced no tokens; remove empty texts")

    store = jnp.dtype(card.store_dtype)
    reducers = active_reducers(config)
    corpus_step, showcase_step, params = make_steps(loaded.model, reducers, store)
    n_texts = len(corpus)
    streamed = {
        reducer.name: writer.open_array(
            f"corpus/{reducer.name}",
            (n_texts, *reducer.shape(config)),
            store if reducer.in_store_dtype else np.float32,
            ("text", *reducer.axes),
        )
        for reducer in reducers
        if reducer.stored
    }
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batches = plan_batches(tokens.lengths, max_length)
    stream_corpus(
        corpus_step, params, batches, tokens.ids, pad_id, streamed, f"{card.name}: corpus", progress
    )
    details["checkpoints"] = extract_checkpoints(
        card,
        loaded,
        tokenizer,
        corpus_step,
        reducers,
        batches,
        tokens.ids,
        pad_id,
        writer,
        progress,
    )

    writer.write_array("corpus/token_lengths", tokens.lengths, ("text",))
    writer.write_array("corpus/full_lengths", tokens.full_lengths, ("text",))
    writer.write_array("corpus/texts", strings_array(corpus.texts), ("text",))
    if corpus.labels is not None:
        writer.write_array("corpus/labels", strings_array(corpus.labels), ("text",))
    if corpus.splits is not None:
        writer.write_array("corpus/splits", strings_array(corpus.splits), ("text",))

    showcase = choose_showcase(n_texts, card.showcase, corpus.labels, corpus.splits)
    width = bucket_length(int(max(tokens.lengths[showcase])), max_length)
    ids, mask = pad_rows([tokens.ids[r] for r in showcase], width, len(showcase), pad_id)
    with tqdm(total=1, desc=f"{card.name}: showcase", disable=not progress) as bar:
        captured = jax.device_get(showcase_step(params, ids, mask))
        bar.update()
    token_text = [
        token_strings(tokenizer, row[: int(m.sum())]) + [""] * int((m == 0).sum())
        for row, m in zip(ids, mask, strict=True)
    ]
    writer.write_array("showcase/index", showcase, ("example",))
    writer.write_array("showcase/input_ids", ids, ("example", "token"))
    writer.write_array("showcase/attention_mask", mask, ("example", "token"))
    writer.write_array(
        "showcase/tokens",
        strings_array(sum(token_text, [])).reshape(ids.shape),
        ("example", "token"),
    )
    writer.write_array(
        "showcase/hidden_states",
        captured["hidden_states"],
        ("example", "layer", "token", "d_model"),
    )
    writer.write_array(
        "showcase/attentions", captured["attentions"], ("example", "layer", "head", "query", "key")
    )
    for name in ("queries", "keys", "values"):
        writer.write_array(
            f"showcase/{name}", captured[name], ("example", "layer", "head", "token", "d_head")
        )

    details["corpus"] = {
        "source": card.corpus,
        "sha256": corpus.sha256,
        "n_texts": n_texts,
        "text_field": card.text_field,
        "label_field": card.label_field,
        "split_field": card.split_field,
        "label_counts": corpus.label_counts(),
        "max_length": max_length,
        "n_truncated": tokens.truncated,
    }
    details["tokenizer"] = {
        "class": type(tokenizer).__name__,
        "vocab_size": int(len(tokenizer)),
        "pad_token_id": int(pad_id),
    }
    details["extraction"] = {
        "buckets": sorted({(b.bucket, b.batch_size) for b in batches}),
        "batches": len(batches),
        "showcase_length": width,
    }
    return details, warnings
