"""Write weights back as a Hugging Face checkpoint folder (config.json + model.safetensors).

The inverse of `loading`: our parameter paths map to the checkpoint's tensor names (Linear
kernels transposed back to PyTorch's [out, in]), so a folder written here loads with
`load_model` and with `transformers` alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from flax import nnx

from generator.models.family import NameMap
from generator.models.loading import WEIGHTS_NAME


def hf_tensors(
    params: nnx.State, prefix: str = "", names: NameMap | None = None
) -> dict[str, np.ndarray]:
    """Return parameters under their Hugging Face names, as float32 numpy arrays.

    Args:
        params: the parameter state of a model (`nnx.split(model)[1]` or `nnx.state(model)`).
        prefix: put in front of every name, e.g. "bert." for a task model's encoder.
        names: the family's name map (default: names equal our module paths, as in BERT).

    Returns:
        Tensor name -> array in the checkpoint's layout.
    """
    names = names or NameMap()
    tensors = {}
    for path, variable in nnx.to_flat_state(params):
        name, transpose = names.checkpoint_name(path)
        value = np.asarray(variable.get_value(), dtype=np.float32)
        tensors[prefix + name] = np.ascontiguousarray(value.T if transpose else value)
    return tensors


def save_checkpoint(folder: Path, tensors: dict[str, np.ndarray], hf_config: dict) -> Path:
    """Write `folder/model.safetensors` and `folder/config.json`; return the folder.

    Args:
        folder: the checkpoint folder (created if needed).
        tensors: tensor name -> array, e.g. from `hf_tensors`.
        hf_config: the config.json contents.
    """
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {name: np.ascontiguousarray(value) for name, value in sorted(tensors.items())}
    save_file(arrays, str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
    text = json.dumps(hf_config, indent=2, sort_keys=True) + "\n"
    (folder / "config.json").write_text(text, encoding="utf-8")
    return folder
