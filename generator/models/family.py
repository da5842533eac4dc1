"""What a model family provides to the loader: config parser, head finder, builder, name map.

A family is one module (`bert.py`, `gpt2.py`, `llama.py`, `t5_loading.py`, ...) that defines
`FAMILY = Family(...)`; `generator.models.registry` lists the families, one line each.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flax import nnx

from generator.models.config import ArchitectureConfig

# Checkpoint entries that are buffers, not parameters: recomputed by our models.
BUFFERS = r"(^|\.)(position_ids|token_type_ids|rotary_emb\.inv_freq)$"

# Our leaf parameter name -> checkpoint leaf name, and whether the tensor is transposed.
LEAF_NAMES = {
    "kernel": ("weight", True),
    "scale": ("weight", False),
    "embedding": ("weight", False),
    "bias": ("bias", False),
    "weight": ("weight", False),
}


@dataclass(frozen=True)
class NameMap:
    """How checkpoint tensor names relate to the parameter paths of our module tree.

    Attributes:
        prefixes: base-model prefixes stripped from checkpoint names ("bert.", "model.").
        renames: (regex, replacement) pairs applied to our dotted name (leaf already renamed);
            the first that matches is used.
        untransposed: regex on our module path of kernels stored [in, out] (GPT-2 Conv1D).
        tied: (checkpoint name, checkpoint name it duplicates) for tied weights that some
            checkpoints store twice; a duplicate must equal its source exactly.
        ignored: regex of checkpoint entries that are buffers, not parameters.
        reshaped: regex on canonical checkpoint names of tensors stored in another shape with
            the same entries (XLNet's [d_model, head, d_head] projections): reshaped to the
            parameter's shape (before the transpose, if any) when the sizes agree.
    """

    prefixes: tuple[str, ...] = ()
    renames: tuple[tuple[str, str], ...] = ()
    untransposed: str = r"(?!)"
    tied: tuple[tuple[str, str], ...] = ()
    ignored: str = BUFFERS
    reshaped: str = r"(?!)"

    def canonical(self, name: str) -> str:
        """Strip the first matching base-model prefix from a checkpoint name."""
        for prefix in self.prefixes:
            if name.startswith(prefix):
                return name[len(prefix) :]
        return name

    def checkpoint_name(self, path: tuple) -> tuple[str, bool]:
        """Map a parameter path of our model to its canonical checkpoint name and transpose flag."""
        *module, leaf = (str(part) for part in path)
        checkpoint_leaf, transpose = LEAF_NAMES[leaf]
        name = ".".join([*module, checkpoint_leaf])
        for pattern, replacement in self.renames:
            renamed, count = re.subn(pattern, replacement, name, count=1)
            if count:
                name = renamed
                break
        if transpose and re.search(self.untransposed, ".".join(module)):
            transpose = False
        return name, transpose


# A family's own loader: (family, config, config.json dict, checkpoint tensors, weights path,
# dtype) -> (module, config with heads, ignored checkpoint entries).
Loader = Callable[..., tuple[nnx.Module, ArchitectureConfig, tuple[str, ...]]]


@dataclass(frozen=True)
class Family:
    """One architecture family.

    Attributes:
        name: family name recorded in the config ("bert").
        model_types: config.json `model_type` values it runs.
        parse: config.json dict -> config (no heads yet).
        with_heads: (config, config.json dict, canonical checkpoint names) -> config with the
            heads (and pooler) that the checkpoint holds.
        build: (config, dtype=..., rngs=...) -> the Flax NNX module.
        names: config -> NameMap of its checkpoint.
        load: a loader of the family's own, for checkpoints whose tensors the `NameMap` rules
            cannot map (T5's tied-embedding copies); None: the shared checked mapping
            (`tensor_mapping.load_mapped`).
    """

    name: str
    model_types: tuple[str, ...]
    parse: Callable[[dict[str, Any]], ArchitectureConfig]
    with_heads: Callable[[Any, dict[str, Any], frozenset[str]], ArchitectureConfig]
    build: Callable[..., nnx.Module]
    names: Callable[[Any], NameMap]
    load: Loader | None = None
