"""The T5 family: checked loading of T5ForConditionalGeneration / T5Model safetensors.

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
from generator.models.family import Family, NameMap
from generator.models.t5 import T5ForConditionalGeneration
from generator.models.t5_config import T5Config, t5_from_hf
from generator.models.tensor_mapping import assign
from generator.weight_files import LazyTensors

TIED_COPIES = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")
UNUSED = ("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",)
TASK_PREFIXES = ("transformer.",)  # base_model_prefix of T5 task models


def split_t5_tensors(raw: LazyTensors, weights_path: Path) -> tuple[LazyTensors, tuple[str, ...]]:
    """Return (tensors our model loads, ignored entry names); refuse untied input embeddings."""
    names: dict[str, str] = {}
    for name in raw:
        stripped = name
        for prefix in TASK_PREFIXES:
            if stripped.startswith(prefix):
                stripped = stripped[len(prefix) :]
        names[stripped] = name
    tensors = raw.renamed(names)
    ignored = [name for name in UNUSED if name in tensors]
    shared = tensors.get("shared.weight")
    for name in TIED_COPIES:
        if name not in tensors:
            continue
        copy = tensors[name]
        if shared is None:
            tensors["shared.weight"] = shared = copy
        elif copy.shape != shared.shape or not np.array_equal(copy, shared):
            raise ModelLoadError(
                f"{weights_path}: {name} differs from shared.weight; untied input embeddings "
                "are not supported: save a checkpoint whose embeddings are tied"
            )
        ignored.append(name)
    for name in ignored:
        tensors.pop(name)
    return tensors, tuple(sorted(ignored))


def build_t5(
    config: T5Config, *, dtype: str, rngs: nnx.Rngs, with_lm_head: bool = True
) -> T5ForConditionalGeneration:
    """Build our T5 (with its own LM head unless the head is the tied shared embedding)."""
    return T5ForConditionalGeneration(config, dtype=dtype, with_lm_head=with_lm_head, rngs=rngs)


def load_t5(
    family: Family,
    config: T5Config,
    hf_config: dict,
    raw: LazyTensors,
    *,
    weights_path: Path,
    dtype: str,
) -> tuple[T5ForConditionalGeneration, T5Config, tuple[str, ...]]:
    """Build our T5 from checkpoint tensors with the checked name mapping of tensor_mapping.py.

    Args:
        family: the T5 family.
        config: the parsed T5 settings.
        hf_config: config.json (T5 finds no heads in it: the LM head is the decoder's).
        raw: every tensor of the checkpoint, read on access.
        weights_path: the file, for messages.
        dtype: compute dtype.

    Returns:
        The model, its config and the checkpoint entries deliberately not loaded.

    Raises:
        ModelLoadError: unused tensors, missing parameters or shape mismatches (all listed).
    """
    del hf_config
    tensors, ignored = split_t5_tensors(raw, weights_path)
    with_lm_head = "lm_head.weight" in tensors
    abstract = nnx.eval_shape(
        lambda: family.build(config, dtype=dtype, with_lm_head=with_lm_head, rngs=nnx.Rngs(0))
    )
    graphdef, state = nnx.split(abstract)
    state = assign(state, tensors, family.names(config), weights_path)
    return nnx.merge(graphdef, state), config, ignored


FAMILY = Family(
    name="t5",
    model_types=("t5",),
    parse=t5_from_hf,
    with_heads=lambda config, cfg, names: config,  # the LM head is found by load_t5
    build=build_t5,
    names=lambda config: NameMap(),  # our parameter tree uses the checkpoint's names
    load=load_t5,
)
