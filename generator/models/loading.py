"""Load a Hugging Face checkpoint folder (config.json + weights) into our Flax model of its family.

Loading is a checked mapping: the family is chosen by `model_type`, the heads by the tensors the
checkpoint holds, the model is built abstractly (shapes only), every parameter gets exactly one
checkpoint tensor, and every checkpoint tensor is used, a known buffer, or a verified duplicate of
a tied weight; anything else fails with one `ModelLoadError` that lists all the problems.

Weights are read from `model.safetensors`; a pickled `pytorch_model.bin` only when the caller
explicitly allows pickles (`allow_pickle`), and then through a restricted reader that runs no code
(`generator.models.torch_pickle`).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from flax import nnx

from generator.errors import ModelLoadError
from generator.models.config import ArchitectureConfig
from generator.models.layers import COMPUTE_DTYPES
from generator.models.registry import family_for, parse_config
from generator.models.tensor_mapping import load_mapped

WEIGHTS_NAME = "model.safetensors"
PICKLE_NAME = "pytorch_model.bin"


@dataclass(frozen=True)
class LoadedModel:
    """A model with its loaded weights and where they came from.

    Attributes:
        model: the Flax NNX module holding the checkpoint weights.
        config: architecture settings, with the heads found in the checkpoint.
        hf_config: the raw config.json dict.
        weights_path: the weights file read.
        ignored: checkpoint entries deliberately not loaded (buffers such as
            `*.position_ids`, duplicates of tied weights), recorded in the manifest.
    """

    model: nnx.Module
    config: ArchitectureConfig
    hf_config: dict
    weights_path: Path
    ignored: tuple[str, ...]


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Read every tensor of a safetensors file into numpy arrays.

    Args:
        path: the .safetensors file.

    Returns:
        Tensor name -> array, in the file's dtypes (bfloat16 as ml_dtypes.bfloat16).

    Raises:
        ModelLoadError: the file is missing, truncated or not a safetensors file.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path} does not exist; save the model with safetensors")
    try:
        return load_file(str(path))
    except TypeError as exc:
        if "data type" not in str(exc):  # numpy lacks bfloat16: read those files ourselves
            raise _unreadable(path, exc) from exc
        return _read_safetensors_directly(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise _unreadable(path, exc) from exc


def _unreadable(path: Path, exc: Exception) -> ModelLoadError:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ModelLoadError(
        f"{path} is not a readable safetensors file ({reason}); "
        "it may be truncated or corrupt: download or export it again"
    )


_SAFETENSORS_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "bfloat16",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}


def _read_safetensors_directly(path: Path) -> dict[str, np.ndarray]:
    """Parse a safetensors file with numpy + ml_dtypes (for dtypes numpy lacks, e.g. BF16)."""
    import ml_dtypes

    data = path.read_bytes()
    try:
        (length,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + length])
        start = 8 + length
        tensors = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            code = _SAFETENSORS_DTYPES[info["dtype"]]
            dtype = np.dtype(ml_dtypes.bfloat16) if code == "bfloat16" else np.dtype(code)
            begin, end = (start + int(o) for o in info["data_offsets"])
            shape = tuple(int(s) for s in info["shape"])
            if end > len(data) or end - begin != dtype.itemsize * int(np.prod(shape)):
                raise ValueError(f"tensor {name} does not fit the file")
            tensors[name] = np.frombuffer(data, dtype, count=int(np.prod(shape)), offset=begin)
            tensors[name] = tensors[name].reshape(shape)
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise _unreadable(path, exc) from exc
    return tensors


def read_weights(path: Path) -> dict[str, np.ndarray]:
    """Read a weights file: safetensors, or a pickle through the code-free reader."""
    if Path(path).name.endswith(".bin"):
        from generator.models.torch_pickle import read_torch_pickle

        return read_torch_pickle(path)
    return read_safetensors(path)


def load_model(model_dir: Path, dtype: str = "float32", allow_pickle: bool = False) -> LoadedModel:
    """Load a checkpoint folder into our Flax implementation of its family.

    Args:
        model_dir: folder with config.json and model.safetensors (or pytorch_model.bin).
        dtype: compute dtype, "float32" or "bfloat16" (parameters stay float32).
        allow_pickle: read `pytorch_model.bin` when there is no safetensors file (with a
            restricted reader that executes no code).

    Returns:
        The loaded model, its config (with heads) and the ignored checkpoint entries.

    Raises:
        ModelLoadError: the folder, config or weights are missing or unreadable, the
            architecture is unsupported, or the checkpoint does not map onto the model.
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
    weights_path = find_weights(model_dir, allow_pickle)

    family = family_for(config.model_type)
    load = family.load or load_mapped
    model, config, ignored = load(
        family,
        config,
        hf_config,
        read_weights(weights_path),
        weights_path=weights_path,
        dtype=dtype,
    )
    return LoadedModel(
        model=model,
        config=config,
        hf_config=hf_config,
        weights_path=weights_path,
        ignored=ignored,
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


def find_weights(model_dir: Path, allow_pickle: bool = False) -> Path:
    """Return the weights file of `model_dir`, or explain what to do instead."""
    path = model_dir / WEIGHTS_NAME
    if path.is_file():
        return path
    if (model_dir / f"{WEIGHTS_NAME}.index.json").is_file():
        raise ModelLoadError(
            f"{model_dir} holds a sharded safetensors checkpoint, which is not supported yet; "
            f"save it as a single {WEIGHTS_NAME} (save_pretrained(max_shard_size='100GB'))"
        )
    pickled = model_dir / PICKLE_NAME
    if pickled.is_file():
        if allow_pickle:
            return pickled
        raise ModelLoadError(
            f"{model_dir} holds only {PICKLE_NAME}; pickle checkpoints are refused: "
            f"convert it to {WEIGHTS_NAME} (model.save_pretrained(dir)) or pass --allow-pickle "
            "to read it without running its code"
        )
    raise ModelLoadError(
        f"{path} does not exist; save the model weights as safetensors "
        "(model.save_pretrained(dir)) into the model folder"
    )
