"""Greedy continuation of the showcase prompts, one step at a time, with a key-value cache.

The attention page's time steps. Step s feeds one token per row at position start + s and
predicts generated token s: decoder-only models start at their prompt's last token (position
prompt length - 1, so step 0 predicts the first new token from the prompt), encoder-decoders
(T5) read the prompt with the encoder and start the decoder at its start token (position 0).
Rows stop at end-of-sequence; the loop stops when every row has stopped or after the card's
`generation_steps`. One jitted program fills the cache, one runs a step (static shapes: the
cache is preallocated with one slot per position any step can reach).

Arrays (axes; `k` = TOP_K next-token predictions, `lens_k` = LENS_TOP_K per layer):
  generation/length       [example]  steps taken (the last one produced end-of-sequence, or
                                      the card's limit was reached)
  generation/token_ids, tokens        [example, step]  greedy tokens (pad id / "" after `length`)
  generation/top_ids, top_probs, top_tokens  [example, step, k]  the step's top predictions
  generation/attentions   [example, step, layer, head, key]  the fed token's attention over key
      positions (decoder-only: prompt then generated tokens, key < prompt length + step; T5:
      decoder positions, key <= step), post-softmax, zero on invisible keys and after `length`
  generation/cross_attentions  [example, step, layer, head, token]  T5: over encoder tokens
  generation/lens_top_ids, lens_top_probs, lens_top_tokens  [example, step, layer, lens_k]
      logit lens of the fed token: each layer's residual stream read through the final norm
      and the unembedding (layer = L+1, embeddings first; the last is the model's output)
"""

from __future__ import annotations

import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from generator.attribution.lens import lens_logits, lens_summary
from generator.extract import sharding
from generator.extract.stored_strings import strings_array
from generator.extract.tokenize import token_strings
from generator.models.kv_cache import empty_cache
from generator.models.layers import COMPUTE_DTYPES

log = logging.getLogger(__name__)

TOP_K = 10  # next-token predictions kept per step
LENS_TOP_K = 5  # logit-lens predictions kept per layer and step (as the attributions' lens)


def applies(config) -> bool:
    """Return True for models that generate: causal LMs and encoder-decoders."""
    return bool(config.seq2seq or (config.causal and "causal-lm" in config.heads))


def cache_slots(config, width: int, steps: int) -> int:
    """Return the cache length: every position a step can feed (T5: decoder positions)."""
    return steps if config.seq2seq else width + steps - 1


def make_generation_steps(model, *, n_slots: int, dtype: str, mesh=None):
    """Return jitted (prefill, step) functions of the model's parameters.

    prefill(params, input_ids, attention_mask) -> (cache, encoded): decoder-only models run
    their right-padded prompt [batch, token] through `decode_step` to fill the cache (encoded is
    None); encoder-decoders encode the prompt and start from an empty decoder cache.
    step(params, cache, tokens [batch], positions [batch], (encoded, attention_mask)) ->
    (cache, outputs of one step per row; see `step_outputs`).
    """
    graphdef = nnx.graphdef(model)
    config = model.config
    layers = config.n_decoder_layers if config.seq2seq else config.n_layers
    n_kv_heads = config.n_heads if config.seq2seq else config.n_kv_heads
    cache_dtype = COMPUTE_DTYPES[dtype]
    jit = jax.jit
    if mesh is not None:
        jit = functools.partial(jax.jit, out_shardings=sharding.replicated(mesh))

    @jit
    def prefill(params, input_ids, attention_mask):
        module = nnx.merge(graphdef, params)
        batch, width = input_ids.shape
        cache = empty_cache(
            batch,
            n_layers=layers,
            n_kv_heads=n_kv_heads,
            n_slots=n_slots,
            d_head=config.d_head,
            dtype=cache_dtype,
        )
        if config.seq2seq:
            return cache, module.encode(input_ids, attention_mask)["hidden_states"][:, -1]
        positions = jnp.broadcast_to(jnp.arange(width, dtype=jnp.int32), (batch, width))
        return module.decode_step(input_ids, positions, cache)[1], None

    @jit
    def step(params, cache, tokens, positions, source):
        module = nnx.merge(graphdef, params)
        extra = source if config.seq2seq else ()
        out, cache = module.decode_step(tokens[:, None], positions[:, None], cache, *extra)
        return cache, step_outputs(module, out)

    return prefill, step


def step_outputs(module, out: dict) -> dict:
    """Reduce one step's decoder outputs (new = 1) to what is stored, per row.

    Returns:
        next [batch] greedy token; top_ids, top_probs [batch, k]; attentions [batch, layer,
        head, slot] (float32); cross_attentions [batch, layer, head, token] (T5);
        lens_top_ids, lens_top_probs [batch, layer(L+1), lens_k].
    """
    logits = out["logits"][:, 0].astype(jnp.float32)  # [batch, vocab]
    probs = jax.nn.softmax(logits, axis=-1)
    top_probs, top_ids = jax.lax.top_k(probs, TOP_K)
    lens = lens_summary(lens_logits(module, out["hidden_states"]), LENS_TOP_K)
    result = {
        "next": jnp.argmax(logits, axis=-1).astype(jnp.int32),
        "top_ids": top_ids.astype(jnp.int32),
        "top_probs": top_probs,
        "attentions": out["attentions"][:, :, :, 0].astype(jnp.float32),
        "lens_top_ids": lens["top_ids"][:, :, 0].astype(jnp.int32),
        "lens_top_probs": lens["top_probs"][:, :, 0],
    }
    if "cross_attentions" in out:
        result["cross_attentions"] = out["cross_attentions"][:, :, :, 0].astype(jnp.float32)
    return result


def greedy_steps(
    programs, params, *, ids: np.ndarray, mask: np.ndarray, steps: int, start: tuple, ends: tuple
) -> dict[str, np.ndarray]:
    """Run the greedy loop; return the stacked per-step outputs as host arrays.

    Args:
        programs: (prefill, step) from `make_generation_steps`.
        params: the model's parameters.
        ids, mask: [batch, token] right-padded prompts (T5: the encoder input).
        steps: the most steps to run.
        start: (first tokens [batch], their positions [batch]).
        ends: (end-of-sequence id or None, pad id fed and stored after a row's end).

    Returns:
        length [batch]; token_ids [batch, step]; top_ids, top_probs [batch, step, k];
        attentions [batch, step, layer, head, slot]; lens_top_ids, lens_top_probs
        [batch, step, layer, lens_k]; cross_attentions [batch, step, layer, head, token] (T5).
        Steps after a row's end are zero (token_ids: the pad id).
    """
    prefill, step = programs
    eos_id, pad_id = ends
    cache, encoded = prefill(params, ids, mask)
    tokens, positions = (np.asarray(a, np.int32) for a in start)
    batch = len(tokens)
    done = np.zeros(batch, bool)
    length = np.zeros(batch, np.int32)
    records: list[dict] = []
    for s in range(steps):
        cache, out = step(params, cache, tokens, positions + s, (encoded, mask))
        out = {name: np.array(value) for name, value in jax.device_get(out).items()}
        for value in out.values():
            value[done] = 0
        out["next"][done] = pad_id
        records.append(out)
        length[~done] += 1
        done |= out["next"] == eos_id if eos_id is not None else False
        tokens = out["next"]
        if done.all():
            break
    stacked = {name: np.stack([r[name] for r in records], axis=1) for name in records[0]}
    pad = steps - len(records)
    for name, value in stacked.items():
        widths = [(0, 0), (0, pad)] + [(0, 0)] * (value.ndim - 2)
        stacked[name] = np.pad(value, widths, constant_values=pad_id if name == "next" else 0)
    stacked["token_ids"] = stacked.pop("next")
    stacked["length"] = length
    return stacked


AXES = {
    "length": ("example",),
    "token_ids": ("example", "step"),
    "top_ids": ("example", "step", "k"),
    "top_probs": ("example", "step", "k"),
    "attentions": ("example", "step", "layer", "head", "key"),
    "cross_attentions": ("example", "step", "layer", "head", "token"),
    "lens_top_ids": ("example", "step", "layer", "k"),
    "lens_top_probs": ("example", "step", "layer", "k"),
}
STRINGS = {"tokens": "token_ids", "top_tokens": "top_ids", "lens_top_tokens": "lens_top_ids"}


def write_generation(writer, tokenizer, arrays: dict[str, np.ndarray], store_dtype) -> None:
    """Store the generation arrays (attentions in the store dtype) and their token strings."""
    for name, axes in AXES.items():
        if name not in arrays:
            continue
        value = arrays[name]
        if name.endswith("attentions"):
            value = value.astype(store_dtype)
        writer.write_array(f"generation/{name}", value, axes)
    length = arrays["length"]
    for name, source in STRINGS.items():
        ids = arrays[source]
        words = np.asarray(token_strings(tokenizer, [int(i) for i in ids.ravel()]), dtype=object)
        words = words.reshape(ids.shape)
        past_end = np.arange(ids.shape[1])[None, :] >= length[:, None]
        words[past_end] = ""
        writer.write_array(
            f"generation/{name}", strings_array(words.ravel()).reshape(ids.shape), AXES[source]
        )


def prompt_start(config, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return each row's first fed token and its position: the prompt's last token (decoder-
    only) or the decoder start token at position 0 (encoder-decoders)."""
    rows = len(ids)
    if config.seq2seq:
        return (
            np.full(rows, config.decoder_start_token_id, np.int32),
            np.zeros(rows, np.int32),
        )
    last = np.maximum(mask.sum(axis=1).astype(np.int32) - 1, 0)
    return ids[np.arange(rows), last].astype(np.int32), last


def step_budget(card, config, width: int) -> int:
    """Return the steps to run: the card's, fewer when a decoder's positions run out.

    Not a warning: a card that uses all of a model's positions for its texts (max_length =
    max_positions) is normal; the manifest records `steps` beside `requested`, the page says so.
    """
    steps = card.generation_steps
    if config.seq2seq or config.max_positions is None:
        return steps
    room = config.max_positions - width + 1  # the last step feeds position width - 2 + steps
    if room < steps:
        log.info(
            "%s: %d generation steps fit after a %d-token prompt in %d positions (card: %d)",
            card.name,
            max(room, 0),
            width,
            config.max_positions,
            steps,
        )
    return max(min(steps, room), 0)


def capture_generation(run) -> None:
    """Greedily continue the showcase examples and store each step (see the module docstring).

    Decoders with an LM head and encoder-decoders only, and only when the card's
    `generation_steps` is above 0; `run` is the extraction (extract/capture.py's ExtractRun).
    """
    import time

    from generator.extract.showcase import showcase_batch

    config = run.config
    if run.card.generation_steps == 0 or not applies(config):
        run.details["generation"] = None
        return
    lengths = run.showcase_tokens.lengths[run.showcase]
    width = int(max(lengths))
    steps = step_budget(run.card, config, width)
    if steps == 0:
        run.details["generation"] = None
        return
    ids, mask = showcase_batch(run.showcase_tokens, run.showcase, width, run.pad_id, run.mesh)
    eos = run.tokenizer.eos_token_id
    eos = getattr(config, "eos_token_id", None) if eos is None else eos
    began = time.perf_counter()
    programs = make_generation_steps(
        run.loaded.model,
        n_slots=cache_slots(config, width, steps),
        dtype=run.card.dtype,
        mesh=run.mesh,
    )
    arrays = greedy_steps(
        programs,
        run.params,
        ids=ids,
        mask=mask,
        steps=steps,
        start=prompt_start(config, ids, mask),
        ends=(eos, run.pad_id),
    )
    seconds = time.perf_counter() - began
    n = len(run.showcase)
    arrays = {name: value[:n] for name, value in arrays.items()}
    write_generation(run.writer, run.tokenizer, arrays, jnp.dtype(run.card.store_dtype))
    run.details["generation"] = {
        "steps": steps,
        "requested": run.card.generation_steps,
        "eos_token_id": None if eos is None else int(eos),
        "start": "decoder-start-token" if config.seq2seq else "prompt-last-token",
        "k": TOP_K,
        "lens_k": LENS_TOP_K,
    }
    log.info("%s: %d generation steps in %.1f s", run.card.name, steps, seconds)
