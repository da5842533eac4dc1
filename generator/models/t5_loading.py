"""Checked loading of T5 checkpoints (T5ForConditionalGeneration / T5Model safetensors).

What `save_pretrained` writes varies: transformers 5 stores only `shared.weight` for the three
tied embeddings (and `lm_head.weight` only when it is untied); older versions also wrote
`encoder.embed_tokens.weight` / `decoder.embed_tokens.weight` (and a tied `lm_head.weight`).
Copies of `shared.weight` are accepted as tied duplicates when they are equal and refused when
they differ (untied input embeddings are not supported). A `lm_head.weight` is loaded as the
model's own head whenever present, so both tied and untied checkpoints give the logits that
transformers computes. `decoder.block.0.layer.1.EncDecAttention.relative_attention_bias`, which
old checkpoints carry but no T5 uses, is ignored, as transformers does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from flax import nnx

from generator.errors import ModelLoadError
from generator.models.t5 import T5ForConditionalGeneration
from generator.models.t5_config import T5Config

TIED_COPIES = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")
UNUSED = ("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",)
TASK_PREFIXES = ("transformer.",)  # base_model_prefix of T5 task models


def split_t5_tensors(
    raw: dict[str, np.ndarray], weights_path: Path
) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Return (tensors our model loads, ignored entry names); refuse untied input embeddings."""
    tensors: dict[str, np.ndarray] = {}
    for name, array in raw.items():
        for prefix in TASK_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix) :]
        tensors[name] = array
    ignored = [name for name in UNUSED if name in tensors]
    shared = tensors.get("shared.weight")
    for name in TIED_COPIES:
        if name not in tensors:
            continue
        if shared is None:
            tensors["shared.weight"] = shared = tensors[name]
        elif tensors[name].shape != shared.shape or not np.array_equal(tensors[name], shared):
            raise ModelLoadError(
                f"{weights_path}: {name} differs from shared.weight; untied input embeddings "
                "are not supported: save a checkpoint whose embeddings are tied"
            )
        ignored.append(name)
    for name in ignored:
        tensors.pop(name)
    return tensors, tuple(sorted(ignored))


def load_t5(
    config: T5Config, raw: dict[str, np.ndarray], weights_path: Path, dtype: str
) -> tuple[T5ForConditionalGeneration, tuple[str, ...]]:
    """Build our T5 from checkpoint tensors with the checked name mapping of loading.py.

    Args:
        config: the parsed T5 settings.
        raw: every tensor of the safetensors file.
        weights_path: the file, for messages.
        dtype: compute dtype.

    Returns:
        The model and the checkpoint entries deliberately not loaded.

    Raises:
        ModelLoadError: unused tensors, missing parameters or shape mismatches (all listed).
    """
    from generator.models.family import NameMap
    from generator.models.tensor_mapping import assign

    tensors, ignored = split_t5_tensors(raw, weights_path)
    with_lm_head = "lm_head.weight" in tensors
    abstract = nnx.eval_shape(
        lambda: T5ForConditionalGeneration(
            config, dtype=dtype, with_lm_head=with_lm_head, rngs=nnx.Rngs(0)
        )
    )
    graphdef, state = nnx.split(abstract)
    state = assign(state, tensors, NameMap(), weights_path)  # names already match our tree
    return nnx.merge(graphdef, state), ignored
