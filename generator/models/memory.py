"""Estimate device memory of an extraction before it runs: parameters and one batch's activations.

Estimates, not measurements: they count the arrays the forward pass must hold at its peak, which
is what decides whether a batch fits. Parameters are float32 whatever the compute dtype (each
device holds a full copy). A batch holds, per device:
  corpus step    every probe of every layer, live together for the reducers: the stacked hidden
                 states [batch, layer(L+1), token, d_model], q, k, v, attention probabilities and
                 scores, and the MLP's hidden units twice (as the model stacks them and as the
                 reducers' in-program loop over layers reads them), plus the working set of one
                 layer (q, k, v, scores and probabilities in float32, the MLP's hidden units).
                 Checked against the compiled program's memory_analysis() (temporaries and
                 outputs; float32, 256 x 32 tokens): bert-base 508 KiB per token measured vs
                 501 estimated, MiniLM 142 vs 144. The corpus pass plans its batches with the
                 compiled figure (extract/corpus_budget.py); this estimate gives the first plan.
  showcase step  every probe of every layer (hidden states, float32 attentions and scores before
                 the softmax, q/k/v) and the logits, plus the same working set
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from generator.models.config import ModelConfig

GIB = 1024**3
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per device for the parameters and for the largest batch of each step."""

    parameter_bytes: int
    corpus_batch_bytes: int
    showcase_batch_bytes: int
    batch: int
    tokens: int
    devices: int

    def summary(self) -> str:
        """Return a one-line human-readable summary."""
        return (
            f"memory estimate per device: parameters {size_text(self.parameter_bytes)}, "
            f"activations {size_text(self.corpus_batch_bytes)} per batch of {self.batch}x"
            f"{self.tokens} tokens, showcase {size_text(self.showcase_batch_bytes)}"
            + (f" ({self.devices} devices)" if self.devices > 1 else "")
        )


def size_text(n: int) -> str:
    """Format a byte count as MiB or GiB."""
    return f"{n / GIB:.2f} GiB" if n >= GIB / 4 else f"{n / 1024**2:.1f} MiB"


def parameter_count(config: ModelConfig) -> int:
    """Count parameters from the architecture alone (heads included), without building the model."""
    d, mlp = config.d_model, config.d_mlp
    q_width, kv_width = config.n_heads * config.d_head, config.n_kv_heads * config.d_head
    attention = d * (q_width + 2 * kv_width) + q_width * d
    if config.attention_bias:
        attention += q_width + 2 * kv_width
    if config.output_bias:
        attention += d
    gated = config.family == "llama"
    feed_forward = (3 if gated else 2) * d * mlp
    if config.mlp_bias:
        feed_forward += (2 if gated else 1) * mlp + d
    norms = 2 * d if config.family == "llama" else 4 * d  # RMSNorm: scale only
    total = config.n_weight_blocks * (attention + feed_forward + norms)  # ALBERT shares blocks
    if config.family == "xlnet":  # per layer also r, r_w/r_r/r_s_bias, seg_embed [2, q_width]
        total += config.n_layers * (d * q_width + 5 * q_width)
        total += config.vocab_size * d + d  # word_embedding, mask_emb; no positions, no final norm
        return total + _head_parameters(config)
    width = config.embedding_size
    total += config.vocab_size * width
    if config.rope is None:
        total += (config.max_positions + config.position_offset) * width
    total += config.type_vocab_size * width
    if config.family in ("bert", "albert"):
        total += 2 * width  # embedding LayerNorm
        if width != d:
            total += width * d + d
    else:
        total += d if config.family == "llama" else 2 * d  # final norm
    if config.with_pooler:
        total += d * d + d
    return total + _head_parameters(config)


def _head_parameters(config: ModelConfig) -> int:
    """Parameters of the heads recorded in the config."""
    d, vocab, labels = config.d_model, config.vocab_size, len(config.labels)
    total = 0
    for head in config.heads:
        if head == "masked-lm":
            w = config.embedding_size if config.family == "albert" else d  # transform width
            total += d * w + w + 2 * w + vocab + (0 if config.tie_word_embeddings else w * vocab)
        elif head == "causal-lm" and not config.tie_word_embeddings:
            total += d * vocab
        elif head == "permutation-lm":  # XLNet's lm_loss: a bias, tied unembedding
            total += vocab + (0 if config.tie_word_embeddings else d * vocab)
        elif head == "classification":
            hidden = (config.family == "bert" and config.model_type != "bert") or (
                config.family == "xlnet"  # sequence_summary.summary
            )
            bias = config.family in ("bert", "albert", "xlnet")
            total += (d * d + d if hidden else 0) + d * labels + (labels if bias else 0)
        elif head == "token-classification":
            total += d * labels + labels
        elif head == "replaced-token-detection":
            total += d * d + d + d + 1
        elif head == "next-sentence":
            total += 2 * d + 2
        elif head == "sentence-order":
            total += config.sentence_order_labels * (d + 1)
    return total


def estimate_memory(
    config: ModelConfig,
    batch: int,
    tokens: int,
    *,
    dtype: str = "float32",
    store_dtype: str = "float32",
    devices: int = 1,
    parameters: int | None = None,
    showcase: tuple[int, int] | None = None,
) -> MemoryEstimate:
    """Estimate per-device memory for batches of `batch` x `tokens` split over `devices`.

    Args:
        config: the architecture.
        batch, tokens: the largest corpus batch shape the extraction compiles.
        dtype: compute dtype of the forward pass.
        store_dtype: dtype the showcase captures are cast to on the device.
        devices: devices the batch is split over (parameters are replicated).
        parameters: the exact parameter count when known (else counted from the config).
        showcase: (examples, tokens) of the showcase batch; the corpus shape when None.

    Returns:
        The estimate in bytes.
    """
    corpus, _ = _activations(config, batch, tokens, dtype, store_dtype, devices)
    _, showcase_bytes = _activations(
        config, *(showcase or (batch, tokens)), dtype, store_dtype, devices
    )
    count = parameters if parameters is not None else parameter_count(config)
    return MemoryEstimate(
        parameter_bytes=count * 4,
        corpus_batch_bytes=corpus,
        showcase_batch_bytes=showcase_bytes,
        batch=batch,
        tokens=tokens,
        devices=devices,
    )


def _activations(
    config: ModelConfig, batch: int, tokens: int, dtype: str, store_dtype: str, devices: int
) -> tuple[int, int]:
    """Return (corpus step, showcase step) activation bytes per device for one batch shape."""
    c, s, f32 = DTYPE_BYTES[dtype], DTYPE_BYTES[store_dtype], 4
    rows = math.ceil(batch / max(devices, 1))
    n = rows * tokens  # token positions per device
    layers, d, heads = config.n_layers, config.d_model, config.n_heads
    head_values = heads * config.d_head
    scores = rows * heads * tokens * tokens * f32
    mlp_units = (2 if config.family == "llama" else 1) * n * config.d_mlp * c
    working = 3 * n * head_values * c + 2 * scores + mlp_units + 2 * n * d * c
    if config.family == "xlnet":  # position scores [query, 2 token] before the relative shift
        working += 2 * scores
    hidden = (layers + 1) * n * d * c
    # every layer's probes at once in the corpus step (the MLP units twice: see the docstring)
    probes = layers * (3 * n * head_values * c + 2 * n * config.d_mlp * c + 2 * scores)
    logits = 0
    if config.heads and config.heads[0] in ("masked-lm", "causal-lm"):
        logits = n * config.vocab_size * f32
    showcase = (
        hidden * s // c
        + 2 * layers * scores  # attentions and attention_scores
        + 3 * layers * n * head_values * s
        + logits
        + working
        + hidden
    )
    return hidden + probes + working, showcase


def backward_bytes(config: ModelConfig, rows: int, tokens: int) -> int:
    """Estimate what one backward pass keeps for `rows` sequences of `tokens` tokens (float32).

    Per layer and token: the attention scores, probabilities and their gradient
    (3 x heads x tokens), the MLP's hidden units and their gradient, and about eight vectors of
    d_model. Measured against it: all-MiniLM-L6-v2's 66 integrated-gradients points of 512
    tokens at once were killed at 24 GB of RSS; this estimate says 20.4 GB.
    """
    layers = config.n_layers + (2 * config.n_decoder_layers if config.seq2seq else 0)
    per_token = 3 * config.n_heads * tokens + 2 * config.d_mlp + 8 * config.d_model
    return 4 * rows * tokens * layers * per_token


LM_HEADS = ("masked-lm", "causal-lm", "permutation-lm")


def has_vocabulary_logits(config) -> bool:
    """Whether the model computes logits over its vocabulary (an LM head, or an encoder-decoder)."""
    return config.seq2seq or any(head in LM_HEADS for head in getattr(config, "heads", ()))


def gradient_step_bytes(config: ModelConfig, parameters: int, tokens: int) -> int:
    """Estimate what the parameter-gradient step adds to the resident parameters (bytes).

    Its float32 running sum of every parameter (extract/gradients.py), the float32 gradients
    of the token embeddings and of an untied output embedding (XLA scatters and multiplies
    them into buffers of their own rather than into the sum in place) and one text's backward
    pass (`backward_bytes`) with its logits, plus a tenth of the parameters for whatever else
    is not added in place. Against the compiled step (sum + temporaries, one text of 24 tokens;
    tests/test_scale.py), measured / estimated: GPT-2 small 0.69 / 0.73 GB, bert-base with its
    masked-LM head 0.57 / 0.60, Llama-2-7B 28.31 / 30.88. The step traces its layers unrolled
    on every platform: scanned, its temporaries held the stacked parameters and their stacked
    gradients, twice the parameters more (benchmarks/README.md).
    """
    # T5's config has no embedding_size (its embeddings are d_model wide) and no tie flag
    embeddings = config.vocab_size * (getattr(config, "embedding_size", 0) or config.d_model)
    lm_head = has_vocabulary_logits(config)
    if lm_head and not getattr(config, "tie_word_embeddings", False):
        embeddings += config.vocab_size * config.d_model
    logits = 3 * tokens * config.vocab_size if lm_head else 0  # logits, log-probs, gradient
    # and a tenth of the parameters for the other gradients that are not added in place
    floats = parameters + parameters // 10 + embeddings + logits
    return 4 * floats + backward_bytes(config, 1, tokens)


def conversion_bytes(parameters: int, dtype: str) -> int:
    """Bytes a program may hold in converted weights when computing in a narrower dtype.

    The models keep float32 parameters and round them to the compute dtype inside each
    program. XLA's CPU backend computes bfloat16 matrix products in float32, on float32 copies
    of the rounded weights, and kept them alive at once: compiled for Llama-2-7B's shapes with
    `dtype: bfloat16`, 22-26 GB of temporaries beside 27 GB of parameters (the same with
    bfloat16 parameters; benchmarks/README.md, the 7B GPU run). The float32 size is counted on
    every platform: on a GPU, whose bfloat16 products are native, an upper bound (unmeasured).
    """
    return 0 if dtype == "float32" else 4 * parameters


def rows_within(config: ModelConfig, rows: int, tokens: int, budget: int) -> int:
    """The most of `rows` sequences whose backward pass (`backward_bytes`) fits `budget`: all of
    them when they fit, never fewer than one."""
    if backward_bytes(config, rows, tokens) <= budget:
        return rows
    return max(1, budget // backward_bytes(config, 1, tokens))


def equal_chunk(total: int, most: int) -> int:
    """The size of the fewest equal chunks of at most `most` items that cover `total` items.

    E.g. 66 items, at most 52 per chunk: two chunks of 33 (not 52 + 14, whose remainder
    `jax.lax.map` would compile as a second program).
    """
    chunks = -(-total // max(1, most))
    return -(-total // chunks)
