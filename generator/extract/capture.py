"""Forward passes over the corpus and the showcase, streamed into the artifact store.

Corpus-wide arrays (axes):
  corpus/pooled_mean                     [text, layer, d_model]  layer = L+1, embeddings first
  corpus/pooled_cls (encoders), corpus/pooled_last (decoders)  [text, layer, d_model]
  corpus/unit_token_sum                  [text, layer, d_model]  sum of unit-length token vectors
  corpus/token_lengths                   [text]  tokens kept (special tokens included)
  corpus/full_lengths                    [text]  tokens before truncation
  corpus/texts, corpus/labels, corpus/splits  [text]  fixed-width unicode
Showcase arrays (one row per showcase example, padded to a common length):
  showcase/index [example]; input_ids, attention_mask, tokens [example, token]
  hidden_states [example, layer, token, d_model]; attentions [example, layer, head, query, key]
  queries, keys, values [example, layer, head, token, d_head]
  special_mask [example, token]  1 on special tokens (attention sinks), 0 elsewhere and on padding
  with a head: top_logits, top_token_ids [example, token, rank] (masked / causal LM), or
  logits [example, label] / [example, token, label] / [example, token] (classifiers)
Per-head attention metrics (generator/extract/head_metrics.py; not for encoder-decoders):
  corpus/head_metrics  [text, layer, head, metric]  float32 whatever store_dtype
Encoder-decoder models (T5) keep input_ids, attention_mask and tokens for the encoder side and
store the rest under encoder_*, decoder_* and cross_* names: see extract/seq2seq.py.
Batches run on a device mesh (extract/sharding.py): rows over `data`, heads/MLP over `model`.
Per further checkpoint NAME of the card (see checkpoints.py):
  checkpoints/NAME/corpus/pooled_*, checkpoints/NAME/corpus/unit_token_sum
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from generator.artifacts import ArtifactWriter
from generator.card import DEFAULT_MAX_TARGET_LENGTH
from generator.corpus import load_corpus
from generator.errors import CardError, CorpusError, warn
from generator.extract import sharding
from generator.extract.batching import bucket_length, pad_rows, plan_batches
from generator.extract.corpus_pass import (  # noqa: F401 (NonFiniteActivations re-exported)
    NonFiniteActivations,
    non_finite_error,
    special_mask,
    stream_corpus,
)
from generator.extract.showcase import choose_showcase, showcase_batch
from generator.extract.stored_strings import strings_array, token_rows
from generator.extract.tokenize import (
    load_tokenizer,
    tokenize_corpus,
    tokenizer_files,
)

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


def special_token_ids(tokenizer) -> list[int]:
    """Return the tokenizer's special ids that can act as attention sinks.

    Every special id except the unknown token (it stands for content) and padding (never
    visible anyway): [CLS], [SEP], <s>, </s>, <|endoftext|>, [MASK], ...
    """
    skip = {tokenizer.unk_token_id, tokenizer.pad_token_id}
    return sorted({int(i) for i in tokenizer.all_special_ids} - skip)


# Named axes of the stored head outputs, per primary head.
LOGIT_AXES = {
    "classification": ("example", "label"),
    "token-classification": ("example", "token", "label"),
    "replaced-token-detection": ("example", "token"),
}


def check_pooling(card, config) -> None:
    """Refuse a headline pooling the architecture cannot give (cls on a decoder, last on an encoder)."""
    if card.pooling == "cls" and config.causal:
        raise CardError(
            f"{card.path}: pooling 'cls' needs an encoder, but {config.model_type} is a decoder "
            "whose first token sees only itself; use pooling mean or last"
        )
    if card.pooling == "last" and not config.causal:
        raise CardError(
            f"{card.path}: pooling 'last' is for decoders, but {config.model_type} is an "
            "encoder; use pooling mean or cls"
        )


def padding_id(tokenizer) -> int:
    """Return the id to pad with: the pad token, else end-of-sequence, else 0 (masked anyway)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if isinstance(candidate, int):
            return candidate
    return 0


def memory_summary(card, loaded, batches, showcase_shape: tuple[int, int]) -> str:
    """Return the one-line memory estimate of this extraction (largest corpus batch, showcase)."""
    from generator.models.memory import estimate_memory

    count = sum(row["count"] for row in parameter_inventory(loaded.model))
    estimates = [
        estimate_memory(
            loaded.config,
            batch.batch_size,
            batch.bucket,
            dtype=card.dtype,
            store_dtype=card.store_dtype,
            parameters=count,
            showcase=showcase_shape,
        )
        for batch in {(b.batch_size, b.bucket): b for b in batches}.values()
    ]
    return max(estimates, key=lambda e: e.corpus_batch_bytes).summary()


def capture(
    card,
    model_dir: Path,
    artifacts_root: Path,
    *,
    writer: ArtifactWriter,
    strict: bool,
    progress: bool,
    allow_pickle: bool = False,
    notify=None,
) -> tuple[dict, list[str]]:
    """Run the model over the corpus and showcase; return (manifest details, warnings).

    `allow_pickle` lets the loader read a pytorch_model.bin (without running its code);
    `notify` receives the one-line memory estimate before the forward passes start.
    """
    from generator.extract.processes import is_primary_process

    if is_primary_process():  # other processes of a distributed run write nothing
        enable_compilation_cache(artifacts_root)
    import jax
    import jax.numpy as jnp

    from generator.extract import neurons
    from generator.extract.activation_stats import write_corpus_tokens
    from generator.extract.checkpoints import extract_checkpoints
    from generator.extract.embedding_geometry import token_embedding, write_embedding_geometry
    from generator.extract.head_metrics import METRICS as HEAD_METRICS
    from generator.extract.head_metrics import SPARSITY_THRESHOLD, is_causal
    from generator.extract.reducers import Reducer, active_reducers
    from generator.extract.steps import make_steps
    from generator.extract.weights import parameter_arrays, write_weight_artifacts
    from generator.models.loading import load_model
    from generator.models.t5_config import is_seq2seq

    warnings: list[str] = []
    loaded = load_model(model_dir, dtype=card.dtype, allow_pickle=allow_pickle)
    config = loaded.config
    check_pooling(card, config)
    mesh = sharding.make_mesh(card.mesh)
    sharding.check_model_axis(config, int(mesh.shape["model"]))
    seq2seq = is_seq2seq(config)
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
        "mesh": sharding.describe(mesh),
    }
    targets_set = card.max_target_length != DEFAULT_MAX_TARGET_LENGTH
    if not seq2seq and (card.target_field or card.target or targets_set):
        warn(
            "target, target_field and max_target_length apply to encoder-decoder models only;"
            f" this {config.family} model ignores them",
            warnings,
            strict,
        )
    weights = parameter_arrays(loaded.model)
    details["weights"] = write_weight_artifacts(weights, config, writer)
    embedding = token_embedding(weights)
    del weights
    if card.corpus_path() is None:
        details["corpus"] = None
        tokenizer = load_tokenizer(model_dir) if tokenizer_files(model_dir) else None
        details["weights"]["embeddings"] = write_embedding_geometry(embedding, tokenizer, writer)
        return details, warnings

    corpus = load_corpus(card.corpus_path(), card.text_field, card.label_field, card.split_field)
    tokenizer = load_tokenizer(model_dir)
    max_length = card.max_length
    if config.max_positions is not None and max_length > config.max_positions:
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
    details["weights"]["embeddings"] = write_embedding_geometry(
        embedding, tokenizer, writer, tokens.ids
    )
    write_corpus_tokens(writer, tokenizer, tokens.ids)

    store = jnp.dtype(card.store_dtype)
    reducers = active_reducers(config)
    neuron_stats = neurons.start(card, config)  # None: not asked for
    if neuron_stats is not None:
        reducers.append(Reducer(**neurons.REDUCER_SPEC))
    corpus_step, showcase_step, params = make_steps(loaded.model, reducers, store, mesh=mesh)
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
    pad_id = padding_id(tokenizer)
    specials = special_token_ids(tokenizer)
    batches = plan_batches(tokens.lengths, max_length, multiple=sharding.data_size(mesh))
    showcase = choose_showcase(n_texts, card.showcase, corpus.labels, corpus.splits)
    width = bucket_length(int(max(tokens.lengths[showcase])), max_length)
    summary = memory_summary(card, loaded, batches, (len(showcase), width))
    log.info("%s: %s", card.name, summary)
    if notify is not None:
        notify(f"{card.name}: {summary}")
    stream_corpus(
        corpus_step,
        params,
        batches,
        tokens.ids,
        pad_id,
        streamed=streamed,
        desc=f"{card.name}: corpus",
        progress=progress,
        mesh=mesh,
        special_ids=specials,
        texts=corpus.texts,
        on_batch=neuron_stats.add if neuron_stats else None,
    )
    neuron_ids = neuron_stats.write(writer) if neuron_stats else None
    details["neurons"] = neuron_stats.details() if neuron_stats else neurons.skipped(card)
    details["checkpoints"] = extract_checkpoints(
        card,
        loaded,
        tokenizer,
        corpus_step=corpus_step,
        reducers=reducers,
        batches=batches,
        ids=tokens.ids,
        pad_id=pad_id,
        writer=writer,
        progress=progress,
        mesh=mesh,
        special_ids=specials,
        texts=corpus.texts,
    )

    writer.write_array("corpus/token_lengths", tokens.lengths, ("text",))
    writer.write_array("corpus/full_lengths", tokens.full_lengths, ("text",))
    writer.write_array("corpus/texts", strings_array(corpus.texts), ("text",))
    if corpus.labels is not None:
        writer.write_array("corpus/labels", strings_array(corpus.labels), ("text",))
    if corpus.splits is not None:
        writer.write_array("corpus/splits", strings_array(corpus.splits), ("text",))

    if seq2seq:
        from generator.extract.seq2seq import capture_seq2seq_showcase

        width, details["seq2seq"], decoder = capture_seq2seq_showcase(
            card,
            loaded.model,
            params,
            mesh=mesh,
            tokenizer=tokenizer,
            tokens=tokens,
            showcase=showcase,
            writer=writer,
            warnings=warnings,
            strict=strict,
            progress=progress,
        )
    else:
        decoder = ()
        width = _capture_showcase(
            card,
            showcase_step,
            params,
            mesh,
            tokenizer,
            tokens,
            showcase,
            writer,
            progress,
            pad_id,
            config,
            specials,
            neuron_ids,
        )

    if card.analyses is None or "attributions" in card.analyses:
        from generator.artifacts import widen_bfloat16
        from generator.extract.attribution_capture import capture_attributions

        pooled_last = np.asarray(streamed["pooled_mean"][:, -1])
        if card.store_dtype == "bfloat16":
            pooled_last = widen_bfloat16(pooled_last)
        ids, mask = pad_rows([tokens.ids[r] for r in showcase], width, len(showcase), pad_id)
        details["attribution"] = capture_attributions(
            card,
            loaded,
            tokenizer=tokenizer,
            tokens=tokens,
            corpus=corpus,
            pooled_last=pooled_last,
            writer=writer,
            pad_id=pad_id,
            showcase=(showcase, ids, mask, *decoder),
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
    details["attention"] = {
        "causal": is_causal(config),
        "special_token_ids": specials,
        "head_metrics": list(HEAD_METRICS) if "head_metrics" in streamed else [],
        "sparsity_threshold": SPARSITY_THRESHOLD,
    }
    details["extraction"] = {
        "buckets": sorted({(b.bucket, b.batch_size) for b in batches}),
        "batches": len(batches),
        "showcase_length": width,
    }
    return details, warnings


def _capture_showcase(
    card,
    showcase_step,
    params,
    mesh,
    tokenizer,
    tokens,
    showcase,
    writer,
    progress,
    pad_id,
    config,
    specials,
    neuron_ids=None,
) -> int:
    """Capture and store the full probes of the showcase of an encoder-only or decoder model."""
    from tqdm import tqdm

    max_length = tokens.max_length
    width = bucket_length(int(max(tokens.lengths[showcase])), max_length)
    ids, mask = showcase_batch(tokens, showcase, width, pad_id, mesh)
    with tqdm(total=1, desc=f"{card.name}: showcase", disable=not progress) as bar:
        placed = sharding.place_batch(mesh, ids, mask)
        captured = sharding.fetch(showcase_step(params, *placed, neuron_ids))
        bar.update()
    n = len(showcase)
    ids, mask = ids[:n], mask[:n]
    writer.write_array("showcase/index", showcase, ("example",))
    writer.write_array("showcase/input_ids", ids, ("example", "token"))
    writer.write_array("showcase/attention_mask", mask, ("example", "token"))
    writer.write_array(
        "showcase/special_mask", special_mask(ids, mask, specials), ("example", "token")
    )
    writer.write_array("showcase/tokens", token_rows(tokenizer, ids, mask), ("example", "token"))
    writer.write_array(
        "showcase/hidden_states",
        captured["hidden_states"][:n],
        ("example", "layer", "token", "d_model"),
    )
    writer.write_array(
        "showcase/attentions",
        captured["attentions"][:n],
        ("example", "layer", "head", "query", "key"),
    )
    for name in ("queries", "keys", "values"):
        writer.write_array(
            f"showcase/{name}", captured[name][:n], ("example", "layer", "head", "token", "d_head")
        )
    for name in ("top_logits", "top_token_ids"):
        if name in captured:
            writer.write_array(f"showcase/{name}", captured[name][:n], ("example", "token", "rank"))
    if "logits" in captured:
        writer.write_array(
            "showcase/logits", captured["logits"][:n], LOGIT_AXES[config.primary_head]
        )
    if "mlp_top" in captured:
        writer.write_array(
            "showcase/mlp_top", captured["mlp_top"][:n], ("example", "layer", "token", "neuron")
        )
        writer.write_array("showcase/mlp_top_neurons", neuron_ids, ("layer", "neuron"))
    return width
