"""Showcase capture of encoder-decoder models (T5): decoder targets, forward pass, artifacts.

The decoder reads a target text, either from the corpus (`target_field`) or the model's own
greedy output (`target: greedy`, up to `max_target_length` tokens). Targets end with </s>
and are at most `max_target_length` tokens; the decoder input is the target shifted right
behind the decoder start token (what transformers feeds for `labels`), so decoder position t
reads target token t - 1 and predicts target token t.

Showcase arrays (one row per example; `token` = encoder token, `target` = decoder token):
  input_ids, attention_mask, tokens                 [example, token]        encoder side
  decoder_input_ids, decoder_attention_mask, decoder_tokens  [example, target]
  target_ids                                        [example, target]  what each position predicts
  target_texts                                      [example]  the target, decoded
  encoder_hidden_states  [example, layer(L+1), token, d_model]
  encoder_attentions     [example, layer, head, query(token), key(token)]
  encoder_queries, encoder_keys, encoder_values     [example, layer, head, token, d_head]
  decoder_hidden_states  [example, layer(Ld+1), target, d_model]
  decoder_attentions     [example, layer, head, query(target), key(target)]  causal
  decoder_queries, decoder_keys, decoder_values     [example, layer, head, target, d_head]
  cross_attentions       [example, layer, head, query(target), key(token)]
  encoder_attention_scores, decoder_attention_scores, cross_attention_scores: the scores
                         before the softmax and the mask, float32 whatever store_dtype, same axes
  cross_queries [example, layer, head, target, d_head]; cross_keys, cross_values [.., token, d_head]
  logits                 [example, target, vocab]
  decoder_head_metrics, cross_head_metrics  [example, layer, head, metric]  float32: per-head
                         metrics (extract/head_metrics.py) of the decoder self-attention and of
                         the cross-attention (distance, previous, next, self: NaN, undefined)
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from generator.artifacts import ArtifactWriter
from generator.corpus import load_corpus
from generator.extract import sharding
from generator.extract.batching import bucket_length, pad_rows
from generator.extract.corpus_pass import special_mask
from generator.extract.head_metrics import seq2seq_metrics
from generator.models.t5 import generate_greedy

ENCODER_AXES = ("example", "layer", "head", "token", "d_head")
DECODER_AXES = ("example", "layer", "head", "target", "d_head")
ATTENTION_AXES = {
    f"{kind}_{probe}": ("example", "layer", "head", "query", "key")
    for probe in ("attentions", "attention_scores")
    for kind in ("encoder", "decoder", "cross")
}
# Per-head metrics of the showcase (extract/head_metrics.py), float32: the decoder has targets
# only for the showcase, so decoder and cross-attention metrics cover the showcase examples.
METRIC_ARRAYS = {
    "decoder_head_metrics": ("example", "layer", "head", "metric"),
    "cross_head_metrics": ("example", "layer", "head", "metric"),
}
# Kept in float32 whatever store_dtype: scores can be large (T5 does not scale them), and the
# softmax of a rounded score would no longer give the stored weights.
FLOAT32_PROBES = ("encoder_attention_scores", "decoder_attention_scores", "cross_attention_scores")
PROBE_AXES = {
    "encoder_hidden_states": ("example", "layer", "token", "d_model"),
    "decoder_hidden_states": ("example", "layer", "target", "d_model"),
    **ATTENTION_AXES,
    "encoder_queries": ENCODER_AXES,
    "encoder_keys": ENCODER_AXES,
    "encoder_values": ENCODER_AXES,
    "decoder_queries": DECODER_AXES,
    "decoder_keys": DECODER_AXES,
    "decoder_values": DECODER_AXES,
    "cross_queries": DECODER_AXES,
    "cross_keys": ENCODER_AXES,
    "cross_values": ENCODER_AXES,
    "logits": ("example", "target", "vocab"),
}


def field_targets(
    card, tokenizer, rows: np.ndarray, max_target_length: int
) -> tuple[list[np.ndarray], int]:
    """Tokenise the `target_field` texts of `rows`; return (ids per row, how many were cut).

    Each target ends with the tokenizer's </s> and has at most `max_target_length` tokens.
    """
    targets = load_corpus(card.corpus_path(), card.target_field).texts
    texts = [targets[int(r)] for r in rows]
    full = tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
    cut = tokenizer(texts, add_special_tokens=True, truncation=True, max_length=max_target_length)[
        "input_ids"
    ]
    truncated = sum(len(f) > max_target_length for f in full)
    return [np.asarray(ids, np.int32) for ids in cut], int(truncated)


def split_generated(ids: np.ndarray, eos_id: int) -> list[np.ndarray]:
    """Cut [example, 1 + new] greedy output into targets: tokens up to and including </s>."""
    targets = []
    for row in np.asarray(ids)[:, 1:]:
        ends = np.flatnonzero(row == eos_id)
        targets.append(row[: ends[0] + 1] if ends.size else row)
    return [t.astype(np.int32) for t in targets]


def decoder_batch(
    targets: list[np.ndarray], start_id: int, pad_id: int, rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return decoder_input_ids, decoder_attention_mask and target_ids [rows, target].

    The decoder input is the target shifted right behind `start_id`; padded positions hold
    `pad_id` and mask 0 (rows beyond len(targets) are all padding).
    """
    width = max(len(t) for t in targets)
    shifted = [np.concatenate([[start_id], t[:-1]]).astype(np.int32) for t in targets]
    decoder_ids, decoder_mask = pad_rows(shifted, width, rows, pad_id)
    target_ids, _ = pad_rows(targets, width, rows, pad_id)
    return decoder_ids, decoder_mask, target_ids


def sample_decoder_batch(
    card, graphdef, params, *, tokenizer, rows: np.ndarray, ids: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decoder batch of corpus `rows` (padded encoder `ids`, `mask`), targets as the card says.

    The same targets as the showcase's: the corpus `target_field`, else the model's greedy output
    (one device, no mesh: this serves the head-importance sample).
    """
    config = nnx.merge(graphdef, params).config
    limit = card.max_target_length
    if card.target_mode() == "field":
        targets, _ = field_targets(card, tokenizer, rows, limit)
    else:
        generated = _greedy_program(graphdef)(params, ids, mask, limit)
        targets = split_generated(np.asarray(generated), config.eos_token_id)
    return decoder_batch(targets, config.decoder_start_token_id, config.pad_token_id, len(rows))


@functools.lru_cache(maxsize=4)
def _greedy_program(graphdef):
    """A jitted `(params, ids, mask, max_new_tokens) -> ids` greedy decoder of `graphdef`."""

    @functools.partial(jax.jit, static_argnums=3)
    def greedy(params, input_ids, attention_mask, max_new_tokens):
        return generate_greedy(
            nnx.merge(graphdef, params), input_ids, attention_mask, max_new_tokens
        )

    return greedy


def make_seq2seq_steps(model, params, mesh, store_dtype):
    """Return (greedy_step, forward_step): jitted functions of `params` and placed batches.

    forward_step(params, input_ids, attention_mask, decoder_ids, decoder_mask, specials) also
    takes (encoder, decoder) special-token masks and returns the `METRIC_ARRAYS`.
    """
    graphdef = nnx.graphdef(model)
    out = sharding.replicated(mesh)

    @functools.partial(jax.jit, static_argnums=3, out_shardings=out)
    def greedy_step(params, input_ids, attention_mask, max_new_tokens):
        module = nnx.merge(graphdef, params)
        return generate_greedy(module, input_ids, attention_mask, max_new_tokens)

    @functools.partial(jax.jit, out_shardings=out)
    def forward_step(params, input_ids, attention_mask, decoder_ids, decoder_mask, specials):
        module = nnx.merge(graphdef, params)
        probes = module(input_ids, attention_mask, decoder_ids, decoder_mask)
        metrics = seq2seq_metrics(probes, (attention_mask, decoder_mask), specials)
        return metrics | {
            name: probes[name].astype(jnp.float32 if name in FLOAT32_PROBES else store_dtype)
            for name in PROBE_AXES
        }

    return greedy_step, forward_step


def showcase_targets(
    card, tokenizer, showcase: np.ndarray, *, generate, eos_token_id: int, warn
) -> tuple[list, int]:
    """Return (target token ids per example, how many were truncated): the corpus field's
    targets (`warn(message)` when some were cut), or the model's greedy output (`generate()` ->
    [batch, step] ids) cut at `</s>`."""
    if card.target_mode() != "field":
        return split_generated(generate()[: len(showcase)], eos_token_id), 0
    limit = card.max_target_length
    targets, truncated = field_targets(card, tokenizer, showcase, limit)
    if truncated:
        warn(
            f"{truncated} of {len(showcase)} showcase targets are longer than max_target_length "
            f"{limit} tokens and were truncated"
        )
    return targets, truncated


def capture_seq2seq_showcase(run) -> tuple[int, dict, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Decode the showcase examples and store their full probes.

    Args:
        run: the ExtractRun (extract/capture.py) after its corpus pass: its card gives the
            target settings and store dtype, its model the T5 graph and config (`params` its
            sharded weights), `mesh` the data axis the batch rows are padded to, `tokens` the
            tokenised corpus and `showcase` the corpus rows of the examples.

    Returns:
        (encoder width, manifest details of the targets, the decoder batch
        (decoder_input_ids, decoder_attention_mask, target_ids) [example, target]).
    """
    from tqdm import tqdm

    from generator.extract.showcase import showcase_batch

    card, config, mesh, params = run.card, run.config, run.mesh, run.params
    tokens, showcase, pad_id = run.showcase_tokens, run.showcase, config.pad_token_id
    width = bucket_length(int(max(tokens.lengths[showcase])), tokens.max_length)
    ids, mask = showcase_batch(tokens, showcase, width, pad_id, mesh)
    n = len(showcase)
    steps = make_seq2seq_steps(run.loaded.model, params, mesh, jnp.dtype(card.store_dtype))
    greedy_step, forward_step = steps
    with tqdm(total=2, desc=f"{card.name}: showcase", disable=not run.progress) as bar:
        placed = sharding.place_batch(mesh, ids, mask)
        targets, truncated = showcase_targets(
            card,
            run.tokenizer,
            showcase,
            generate=lambda: sharding.fetch(greedy_step(params, *placed, card.max_target_length)),
            eos_token_id=config.eos_token_id,
            warn=run.warn,
        )
        bar.update()
        decoder_ids, decoder_mask, target_ids = decoder_batch(
            targets, config.decoder_start_token_id, pad_id, len(ids)
        )
        specials = (
            special_mask(ids, mask, run.specials),
            special_mask(decoder_ids, decoder_mask, run.specials),
        )
        decoder_placed = sharding.place_batch(mesh, decoder_ids, decoder_mask)
        captured = sharding.fetch(
            forward_step(params, *placed, *decoder_placed, sharding.place_batch(mesh, *specials))
        )
        bar.update()

    decoder = (decoder_ids[:n], decoder_mask[:n], target_ids[:n])
    write_seq2seq_showcase(
        run.writer,
        run.tokenizer,
        showcase=showcase,
        encoder=(ids[:n], mask[:n]),
        decoder=decoder,
        captured={name: captured[name][:n] for name in (*PROBE_AXES, *METRIC_ARRAYS)},
    )
    return width, target_details(card, config, decoder[0].shape[1], truncated), decoder


def target_details(card, config, decoder_length: int, truncated: int) -> dict:
    """Return the manifest's `seq2seq` record: how the showcase's decoder targets were made."""
    return {
        "target": card.target_mode(),
        "target_field": card.target_field,
        "max_target_length": card.max_target_length,
        "decoder_length": int(decoder_length),
        "n_target_truncated": truncated,
        "decoder_start_token_id": config.decoder_start_token_id,
    }


def write_seq2seq_showcase(
    writer: ArtifactWriter,
    tokenizer,
    *,
    showcase: np.ndarray,
    encoder: tuple[np.ndarray, np.ndarray],
    decoder: tuple[np.ndarray, np.ndarray, np.ndarray],
    captured: dict[str, np.ndarray],
) -> None:
    """Store the showcase of an encoder-decoder: inputs, targets, their strings and the probes.

    encoder: (input_ids, attention_mask) [example, token]; decoder: (decoder_input_ids,
    decoder_attention_mask, target_ids) [example, target]; captured: probe name -> array.
    """
    from generator.extract.stored_strings import strings_array, token_rows

    ids, mask = encoder
    decoder_ids, decoder_mask, target_ids = decoder
    writer.write_array("showcase/index", showcase, ("example",))
    writer.write_array("showcase/input_ids", ids, ("example", "token"))
    writer.write_array("showcase/attention_mask", mask, ("example", "token"))
    writer.write_array("showcase/tokens", token_rows(tokenizer, ids, mask), ("example", "token"))
    writer.write_array("showcase/decoder_input_ids", decoder_ids, ("example", "target"))
    writer.write_array("showcase/decoder_attention_mask", decoder_mask, ("example", "target"))
    writer.write_array(
        "showcase/decoder_tokens",
        token_rows(tokenizer, decoder_ids, decoder_mask),
        ("example", "target"),
    )
    writer.write_array("showcase/target_ids", target_ids, ("example", "target"))
    texts = [
        tokenizer.decode([int(t) for t in row[: int(m.sum())]], skip_special_tokens=True)
        for row, m in zip(target_ids, decoder_mask, strict=True)
    ]
    writer.write_array("showcase/target_texts", strings_array(texts), ("example",))
    for name, axes in (PROBE_AXES | METRIC_ARRAYS).items():
        writer.write_array(f"showcase/{name}", captured[name], axes)
