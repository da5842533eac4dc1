"""Checked mapping of checkpoint tensors onto a model's parameter tree.

`canonical_tensors` puts a checkpoint's names in our form, `tied_duplicates` checks the stored
copies of tied weights, `plan_assignment` places every parameter of an abstract `nnx.State` on
a checkpoint tensor (from the headers' shapes), listing every unused, missing or mis-shaped
tensor in one error, and `assign` fills the state; `load_mapped` chains them for a family, and
`map_lazily` stops short of loading (`CheckpointParameters`: one tensor read per lookup, for the
weights-only build). Shared by every family's loader (leaf module).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Placement:
    """Where one parameter of our model comes from: a checkpoint tensor, maybe reshaped/transposed.

    Attributes:
        path: the parameter's path in our module tree.
        name: its canonical checkpoint name.
        stored: the shape to reshape the stored tensor to first (None: as stored).
        transpose: whether the (reshaped) tensor is transposed.
    """

    path: tuple
    name: str
    stored: tuple[int, ...] | None
    transpose: bool

    def read(self, tensors: LazyTensors) -> np.ndarray:
        """Read the tensor and return the parameter's value: float32, C-contiguous."""
        array = tensors[self.name]
        if self.stored is not None:
            array = array.reshape(self.stored)
        array = array.T if self.transpose else array
        return np.ascontiguousarray(array, dtype=np.float32)


def plan_assignment(
    state: nnx.State, tensors: LazyTensors, names: NameMap, weights_path: Path
) -> list[Placement]:
    """Place every abstract parameter of `state` on a checkpoint tensor, or raise one error.

    Shapes come from the files' headers where they state them, so no tensor is read.
    """
    used: set[str] = set()
    missing: list[str] = []
    mismatched: list[str] = []
    placements = []
    for path, variable in nnx.to_flat_state(state):
        name, transpose = names.checkpoint_name(path)
        if name not in tensors:
            missing.append(name)
            continue
        used.add(name)
        expected = tuple(variable.get_value().shape)
        got = shape = tuple(tensors.shape(name))
        want = expected[::-1] if transpose else expected
        reshape = bool(re.search(names.reshaped, name)) and prod(shape) == prod(want)
        shape = want if reshape else shape
        if (shape[::-1] if transpose else shape) != expected:
            mismatched.append(f"{name} expected {list(want)} got {list(got)}")
            continue
        placements.append(Placement(path, name, want if reshape else None, transpose))
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
    return placements


def prod(shape: tuple[int, ...]) -> int:
    """Return the number of entries of a shape."""
    return int(np.prod(shape, dtype=np.int64))


def assign(state: nnx.State, tensors: LazyTensors, names: NameMap, weights_path: Path) -> nnx.State:
    """Fill every abstract parameter of `state` from `tensors`, or raise one ModelLoadError.

    Each tensor is read, converted to a float32 parameter and dropped before the next is read.
    """
    variables = dict(nnx.to_flat_state(state))
    filled = []
    for placement in plan_assignment(state, tensors, names, weights_path):
        value = jnp.asarray(placement.read(tensors))  # freed before the next tensor is read
        filled.append((placement.path, variables[placement.path].replace(value)))
    return nnx.from_flat_state(filled)


class CheckpointParameters(Mapping):
    """A model's parameters read straight from its checkpoint: dotted name -> float32 array.

    Keyed like the parameter inventory (sorted dotted names); each lookup reads one tensor from
    its file's memory map and converts it as loading would (reshape, transpose, float32), so
    the weight statistics of a model need one tensor in memory, never the model.
    """

    def __init__(self, placements: list[Placement], tensors: LazyTensors):
        by_name = {".".join(str(p) for p in pl.path): pl for pl in placements}
        self._placements = dict(sorted(by_name.items()))
        self._tensors = tensors

    def __getitem__(self, name: str) -> np.ndarray:
        return self._placements[name].read(self._tensors)

    def __iter__(self) -> Iterator[str]:
        return iter(self._placements)

    def __len__(self) -> int:
        return len(self._placements)


def mapped_tensors(
    family: Family, config, hf_config: dict, raw: LazyTensors, weights_path: Path, dtype: str
):
    """Return (abstract module, tensors by canonical name, config with heads, its NameMap,
    ignored entries sorted): everything but the assignment of tensors to parameters.

    Raises:
        ModelLoadError: a tied duplicate differs from its source, or a name is held twice.
    """
    tensors, ignored = canonical_tensors(raw, family.names(config))
    config = family.with_heads(config, hf_config, frozenset(tensors))
    names = family.names(config)
    duplicates = tied_duplicates(tensors, names, weights_path)
    for name in duplicates:
        del tensors[name]
    abstract = nnx.eval_shape(lambda: family.build(config, dtype=dtype, rngs=nnx.Rngs(0)))
    return abstract, tensors, config, names, tuple(sorted(ignored + duplicates))


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
    mapped = mapped_tensors(family, config, hf_config, raw, weights_path, dtype)
    abstract, tensors, config, names, ignored = mapped
    graphdef, state = nnx.split(abstract)
    return nnx.merge(graphdef, assign(state, tensors, names, weights_path)), config, ignored


def map_lazily(
    family: Family,
    config,
    hf_config: dict,
    raw: LazyTensors,
    *,
    weights_path: Path,
    dtype: str,
) -> tuple[nnx.Module, object, tuple[str, ...], CheckpointParameters]:
    """As `load_mapped`, checked the same way, but nothing is loaded: the module is abstract
    (shapes only) and the parameters come as a lazy `CheckpointParameters`.

    Returns:
        (abstract module, config with heads, ignored checkpoint entries, parameters).
    """
    mapped = mapped_tensors(family, config, hf_config, raw, weights_path, dtype)
    abstract, tensors, config, names, ignored = mapped
    placements = plan_assignment(nnx.state(abstract), tensors, names, weights_path)
    params = {path for path, _ in nnx.to_flat_state(nnx.state(abstract, nnx.Param))}
    parameters = CheckpointParameters([p for p in placements if p.path in params], tensors)
    return abstract, config, ignored, parameters
