"""Load a Hugging Face checkpoint folder (config.json + model.safetensors) into our Flax model.

Loading is a checked mapping: the model is built abstractly (shapes only), every parameter gets
exactly one checkpoint tensor, and every checkpoint tensor is either used or deliberately
ignored; anything else fails with one `ModelLoadError` that lists all the problems.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx

from generator.errors import ModelLoadError
from generator.models.bert import COMPUTE_DTYPES, BertEncoder
from generator.models.config import ModelConfig

WEIGHTS_NAME = "model.safetensors"

# Prefix that task-model checkpoints (BertForMaskedLM, BertForSequenceClassification, ...) put
# in front of the encoder's tensor names.
_ENCODER_PREFIXES = ("bert.",)

# Checkpoint entries that are not encoder parameters. Buffers (`*.position_ids`,
# `*.token_type_ids`) are recomputed by the model. Task heads (`cls.*`, `classifier.*`) are
# ignored until the model-families issue adds heads.
_IGNORED = re.compile(r"(^|\.)(position_ids|token_type_ids)$|^(cls|classifier)\.")

# Old TF-converted checkpoints name LayerNorm parameters gamma/beta.
_LEGACY_SUFFIXES = {".gamma": ".weight", ".beta": ".bias"}

# Our leaf parameter name -> checkpoint leaf name, and whether the tensor is transposed.
_LEAF_NAMES = {
    "kernel": ("weight", True),
    "scale": ("weight", False),
    "embedding": ("weight", False),
    "bias": ("bias", False),
}

_SHOW = 5  # how many names each problem list shows before "+N more"


@dataclass(frozen=True)
class LoadedModel:
    """A model with its loaded weights and where they came from.

    Attributes:
        model: the Flax NNX module holding the checkpoint weights.
        config: architecture settings.
        hf_config: the raw config.json dict.
        weights_path: the safetensors file read.
        ignored: checkpoint entries deliberately not loaded (non-parameter buffers such as
            `*.position_ids`, task heads), recorded in the manifest.
    """

    model: BertEncoder
    config: ModelConfig
    hf_config: dict
    weights_path: Path
    ignored: tuple[str, ...]


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Read every tensor of a safetensors file into numpy arrays.

    Args:
        path: the .safetensors file.

    Returns:
        Tensor name -> array, in the file's dtypes.

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
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelLoadError(
            f"{path} is not a readable safetensors file ({reason}); "
            "it may be truncated or corrupt: download or export it again"
        ) from exc


def load_model(model_dir: Path, dtype: str = "float32") -> LoadedModel:
    """Load a checkpoint folder into our Flax implementation of its family.

    Args:
        model_dir: folder with config.json and model.safetensors.
        dtype: compute dtype, "float32" or "bfloat16" (parameters stay float32).

    Returns:
        The loaded model, its config and the ignored checkpoint entries.

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
    hf_config = _read_config(config_path)
    try:
        config = ModelConfig.from_hf_dict(hf_config)
    except ModelLoadError as exc:
        raise ModelLoadError(f"{config_path}: {exc.message}") from exc
    weights_path = _find_weights(model_dir)
    raw = read_safetensors(weights_path)

    # --- family dispatch: encoder-decoder families map their own checkpoint names ---
    if config.family == "t5":
        from generator.models.t5_loading import load_t5

        model, ignored = load_t5(config, raw, weights_path, dtype)
        return LoadedModel(model, config, hf_config, weights_path, ignored)
    # --- end of family dispatch ---

    tensors, ignored = _encoder_tensors(raw)
    with_pooler = any(name.startswith("pooler.") for name in tensors)
    abstract = nnx.eval_shape(
        lambda: BertEncoder(config, dtype=dtype, with_pooler=with_pooler, rngs=nnx.Rngs(0))
    )
    graphdef, state = nnx.split(abstract)
    state = _assign(state, tensors, weights_path)
    return LoadedModel(
        model=nnx.merge(graphdef, state),
        config=config,
        hf_config=hf_config,
        weights_path=weights_path,
        ignored=ignored,
    )


def _read_config(path: Path) -> dict[str, Any]:
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


def _find_weights(model_dir: Path) -> Path:
    """Return the safetensors weights file of `model_dir`, or explain what to do instead."""
    path = model_dir / WEIGHTS_NAME
    if path.is_file():
        return path
    if (model_dir / f"{WEIGHTS_NAME}.index.json").is_file():
        raise ModelLoadError(
            f"{model_dir} holds a sharded safetensors checkpoint, which is not supported yet; "
            f"save it as a single {WEIGHTS_NAME} (save_pretrained(max_shard_size='100GB'))"
        )
    if (model_dir / "pytorch_model.bin").is_file():
        raise ModelLoadError(
            f"{model_dir} holds only pytorch_model.bin; pickle checkpoints are refused: "
            f"convert it to {WEIGHTS_NAME} (model.save_pretrained(dir, safe_serialization=True))"
        )
    raise ModelLoadError(
        f"{path} does not exist; save the model weights as safetensors "
        "(model.save_pretrained(dir)) into the model folder"
    )


def _encoder_tensors(
    raw: dict[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Split checkpoint entries into encoder tensors (canonical names) and ignored names."""
    tensors: dict[str, np.ndarray] = {}
    ignored: list[str] = []
    for name, array in raw.items():
        canonical = name
        for prefix in _ENCODER_PREFIXES:
            if canonical.startswith(prefix):
                canonical = canonical[len(prefix) :]
        for old, new in _LEGACY_SUFFIXES.items():
            if canonical.endswith(old):
                canonical = canonical[: -len(old)] + new
        if _IGNORED.search(canonical):
            ignored.append(name)
        else:
            tensors[canonical] = array
    return tensors, tuple(sorted(ignored))


def _checkpoint_name(path: tuple) -> tuple[str, bool]:
    """Map a parameter path of our model to its checkpoint name and transpose flag."""
    leaf, transpose = _LEAF_NAMES[path[-1]]
    return ".".join(str(part) for part in (*path[:-1], leaf)), transpose


def _assign(state: nnx.State, tensors: dict[str, np.ndarray], weights_path: Path) -> nnx.State:
    """Fill every abstract parameter of `state` from `tensors`, or raise one ModelLoadError."""
    flat = nnx.to_flat_state(state)
    used: set[str] = set()
    missing: list[str] = []
    mismatched: list[str] = []
    filled = []
    for path, variable in flat:
        name, transpose = _checkpoint_name(path)
        if name not in tensors:
            missing.append(name)
            continue
        used.add(name)
        array = tensors[name].T if transpose else tensors[name]
        expected = tuple(variable.get_value().shape)
        if tuple(array.shape) != expected:
            got = tuple(tensors[name].shape)
            want = expected[::-1] if transpose else expected
            mismatched.append(f"{name} expected {list(want)} got {list(got)}")
            continue
        filled.append((path, variable.replace(jnp.asarray(array, dtype=jnp.float32))))
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
