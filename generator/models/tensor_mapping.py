"""Checked mapping of checkpoint tensors onto a model's parameter tree.

`canonical_tensors` puts a checkpoint's names in our form, `tied_duplicates` checks the stored
copies of tied weights, and `assign` fills an abstract `nnx.State`, listing every unused,
missing or mis-shaped tensor in one error; `load_mapped` chains them for a family. Shared by
every family's loader (leaf module).
"""

from __future__ import annotations

import re
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx

from generator.errors import ModelLoadError
from generator.models.family import Family, NameMap
from generator.weight_files import LazyTensors

# Old TF-converted checkpoints name LayerNorm parameters gamma/beta.
_LEGACY_SUFFIXES = {".gamma": ".weight", ".beta": ".bias"}
_SHOW = 5  # how many names each problem list shows before "+N more"


def canonical_tensors(raw: LazyTensors, names: NameMap) -> tuple[LazyTensors, list[str]]:
    """Strip base-model prefixes and legacy suffixes; split off buffers (returned as ignored).

    Only names are handled: no tensor is read.
    """
    canonical_names: dict[str, str] = {}
    ignored: list[str] = []
    for name in raw:
        canonical = names.canonical(name)
        for old, new in _LEGACY_SUFFIXES.items():
            if canonical.endswith(old):
                canonical = canonical[: -len(old)] + new
        if re.search(names.ignored, canonical):
            ignored.append(name)
        elif canonical in canonical_names:
            raise ModelLoadError(
                f"checkpoint holds {canonical} twice (with and without a prefix); "
                "re-export it with save_pretrained"
            )
        else:
            canonical_names[canonical] = name
    return raw.renamed(canonical_names), ignored


def tied_duplicates(tensors: LazyTensors, names: NameMap, weights_path: Path) -> list[str]:
    """Return the stored copies of tied weights, after checking each equals its source."""
    found = []
    for duplicate, source in names.tied:
        if duplicate not in tensors or source not in tensors:
            continue
        copy, original = tensors[duplicate], tensors[source]
        if copy.shape != original.shape or not np.array_equal(copy, original):
            raise ModelLoadError(
                f"{weights_path}: {duplicate} differs from {source} although config.json ties "
                "them; set tie_word_embeddings to false in config.json if they are separate"
            )
        found.append(duplicate)
    return found


def assign(state: nnx.State, tensors: LazyTensors, names: NameMap, weights_path: Path) -> nnx.State:
    """Fill every abstract parameter of `state` from `tensors`, or raise one ModelLoadError.

    Each tensor is read, converted to a float32 parameter and dropped before the next is read.
    """
    flat = nnx.to_flat_state(state)
    used: set[str] = set()
    missing: list[str] = []
    mismatched: list[str] = []
    filled = []
    for path, variable in flat:
        name, transpose = names.checkpoint_name(path)
        if name not in tensors:
            missing.append(name)
            continue
        used.add(name)
        expected = tuple(variable.get_value().shape)
        array = stored_array = tensors[name]
        stored = expected[::-1] if transpose else expected
        if re.search(names.reshaped, name) and array.size == int(np.prod(stored)):
            array = array.reshape(stored)
        array = array.T if transpose else array
        if tuple(array.shape) != expected:
            got = tuple(stored_array.shape)
            want = expected[::-1] if transpose else expected
            mismatched.append(f"{name} expected {list(want)} got {list(got)}")
            continue
        value = jnp.asarray(np.asarray(array, dtype=np.float32))
        filled.append((path, variable.replace(value)))
        del array, stored_array  # the next tensor is read only after this one is freed
    unused = sorted(set(tensors) - used)

    problems = []
    for label, items in (
        ("unused checkpoint tensors", unused),
        ("model parameters not in checkpoint", missing),
        ("shape mismatches", mismatched),
    ):
        if items:
            more = f" (+{len(items) - _SHOW} more)" if len(items) > _SHOW else ""
            problems.append(f"{len(items)} {label}: {', '.join(items[:_SHOW])}{more}")
    if problems:
        raise ModelLoadError(
            f"{weights_path} does not match the model config: {'; '.join(problems)}; "
            "check that config.json belongs to these weights"
        )
    return nnx.from_flat_state(filled)


def load_mapped(
    family: Family,
    config,
    hf_config: dict,
    raw: LazyTensors,
    *,
    weights_path: Path,
    dtype: str,
) -> tuple[nnx.Module, object, tuple[str, ...]]:
    """Build `family`'s model from checkpoint tensors through its `NameMap`.

    Returns:
        (module, config with the heads the checkpoint holds, ignored checkpoint entries sorted).

    Raises:
        ModelLoadError: unused tensors, missing parameters or shape mismatches (all listed).
    """
    tensors, ignored = canonical_tensors(raw, family.names(config))
    config = family.with_heads(config, hf_config, frozenset(tensors))
    names = family.names(config)
    duplicates = tied_duplicates(tensors, names, weights_path)
    for name in duplicates:
        del tensors[name]
    abstract = nnx.eval_shape(lambda: family.build(config, dtype=dtype, rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(abstract)
    state = assign(state, tensors, names, weights_path)
    return nnx.merge(graphdef, state), config, tuple(sorted(ignored + duplicates))
