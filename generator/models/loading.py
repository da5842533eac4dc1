"""Load a Hugging Face checkpoint folder (config.json + weights) into our Flax model of its family.

Loading is a checked mapping: the family is chosen by `model_type`, the heads by the tensors the
checkpoint holds, the model is built abstractly (shapes only), every parameter gets exactly one
checkpoint tensor, and every checkpoint tensor is used, a known buffer, or a verified duplicate of
a tied weight; anything else fails with one `ModelLoadError` that lists all the problems.

Weights are read from `model.safetensors` or the shards of `model.safetensors.index.json`, one
tensor at a time from memory maps (`generator.weight_files`); a pickled `pytorch_model.bin`
only when the caller explicitly allows pickles (`allow_pickle`), and then through a restricted
reader that runs no code (`generator.models.torch_pickle`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from flax import nnx

from generator.errors import ModelLoadError
from generator.models.config import ArchitectureConfig
from generator.models.layers import COMPUTE_DTYPES
from generator.models.registry import family_for, parse_config
from generator.models.tensor_mapping import load_mapped, map_lazily
from generator.weight_files import WEIGHTS_NAME, find_weights, open_weights


@dataclass(frozen=True)
class LoadedModel:
    """A model with its loaded weights and where they came from.

    Attributes:
        model: the Flax NNX module holding the checkpoint weights.
        config: architecture settings, with the heads found in the checkpoint.
        hf_config: the raw config.json dict.
        weights_path: the weights file read (the index of a sharded checkpoint).
        ignored: checkpoint entries deliberately not loaded (buffers such as
            `*.position_ids`, duplicates of tied weights), recorded in the manifest.
        parameters: for a checkpoint opened without loading (`open_checkpoint`), the lazy
            parameters (name -> float32 array, read per lookup) and `model` is abstract
            (shapes only); None when `model` holds the weights.
    """

    model: nnx.Module
    config: ArchitectureConfig
    hf_config: dict
    weights_path: Path
    ignored: tuple[str, ...]
    parameters: Mapping[str, np.ndarray] | None = None


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Read every tensor of a safetensors file into numpy arrays.

    Args:
        path: the .safetensors file.

    Returns:
        Tensor name -> array, in the file's dtypes (bfloat16 as ml_dtypes.bfloat16).

    Raises:
        ModelLoadError: the file is missing, truncated or not a safetensors file.
    """
    return dict(open_weights(Path(path)).items())


def load_model(model_dir: Path, dtype: str = "float32", allow_pickle: bool = False) -> LoadedModel:
    """Load a checkpoint folder into our Flax implementation of its family.

    Args:
        model_dir: folder with config.json and model.safetensors (or a sharded checkpoint's
            model.safetensors.index.json and shards, or pytorch_model.bin).
        dtype: compute dtype, "float32" or "bfloat16" (parameters stay float32).
        allow_pickle: read `pytorch_model.bin` when there is no safetensors file (with a
            restricted reader that executes no code).

    Returns:
        The loaded model, its config (with heads) and the ignored checkpoint entries.

    Raises:
        ModelLoadError: the folder, config or weights are missing or unreadable, the
            architecture is unsupported, or the checkpoint does not map onto the model.
    """
    return _load(model_dir, dtype, allow_pickle, streamed=False)


def _load(model_dir: Path, dtype: str, allow_pickle: bool, *, streamed: bool) -> LoadedModel:
    """Check and map a checkpoint; load it (`streamed`: leave the parameters in their files)."""
    model_dir, config, hf_config, weights_path = checkpoint_files(model_dir, dtype, allow_pickle)
    family = family_for(config.model_type)
    tensors = open_weights(weights_path)
    parameters = None
    if streamed:
        model, config, ignored, parameters = map_lazily(
            family, config, hf_config, tensors, weights_path=weights_path, dtype=dtype
        )
    else:
        model, config, ignored = (family.load or load_mapped)(
            family, config, hf_config, tensors, weights_path=weights_path, dtype=dtype
        )
    return LoadedModel(model, config, hf_config, weights_path, ignored, parameters)


def checkpoint_files(model_dir: Path, dtype: str, allow_pickle: bool):
    """Check the dtype and folder; return (folder, config without heads, config.json, weights path).

    Raises:
        ModelLoadError: as `load_model`.
    """
    model_dir = Path(model_dir)
    if dtype not in COMPUTE_DTYPES:
        raise ModelLoadError(f"dtype {dtype!r} is not supported; use {' or '.join(COMPUTE_DTYPES)}")
    if not model_dir.is_dir():
        raise ModelLoadError(
            f"model folder {model_dir} does not exist; point `model` at a folder with "
            f"config.json and {WEIGHTS_NAME}"
        )
    config_path = model_dir / "config.json"
    hf_config = read_config(config_path)
    try:
        config = parse_config(hf_config)
    except ModelLoadError as exc:
        raise ModelLoadError(f"{config_path}: {exc.message}") from exc
    return model_dir, config, hf_config, find_weights(model_dir, allow_pickle)


def streams_parameters(model_dir: Path, allow_pickle: bool = False) -> bool:
    """Tell whether `open_checkpoint` can read this checkpoint's parameters without loading it.

    It can for safetensors weights (single or sharded) of a family mapped by its `NameMap`
    alone; a pickle, or a family with its own loader (T5), is loaded whole. False also when the
    folder is unreadable: `load_model` then says why.
    """
    try:
        model_dir, config, _, weights_path = checkpoint_files(model_dir, "float32", allow_pickle)
        return family_for(config.model_type).load is None and not weights_path.name.endswith(".bin")
    except ModelLoadError:
        return False


def open_checkpoint(
    model_dir: Path, dtype: str = "float32", allow_pickle: bool = False
) -> LoadedModel:
    """Check a checkpoint as `load_model` does, but load nothing: an abstract model and lazy
    parameters (`LoadedModel.parameters`), for builds that only need the weights' statistics.

    Falls back to `load_model` where the parameters cannot be streamed (`streams_parameters`).
    """
    return _load(
        model_dir, dtype, allow_pickle, streamed=streams_parameters(model_dir, allow_pickle)
    )


def read_config(path: Path) -> dict[str, Any]:
    """Read and parse config.json."""
    if not path.is_file():
        raise ModelLoadError(
            f"{path} does not exist; a model folder needs the Hugging Face config.json "
            "(save it with save_pretrained)"
        )
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON ({exc}); fix or re-export it") from exc
    if not isinstance(cfg, dict):
        raise ModelLoadError(f"{path} must hold a JSON object; re-export it with save_pretrained")
    return cfg
