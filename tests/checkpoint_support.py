"""Write perturbed copies of the tiny BERT checkpoint, to test cards with `checkpoints`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from cards import TINY_BERT

from generator.models.loading import read_safetensors
from generator.models.saving import save_checkpoint


def perturbed_checkpoint(folder: Path, scale: float, seed: int, source: Path = TINY_BERT) -> Path:
    """Copy `source` into `folder` with Gaussian noise of std `scale` added to every tensor."""
    rng = np.random.default_rng(seed)
    tensors = {
        name: (value + rng.normal(scale=scale, size=value.shape)).astype(value.dtype)
        for name, value in read_safetensors(source / "model.safetensors").items()
    }
    save_checkpoint(folder, tensors, json.loads((source / "config.json").read_text()))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(source / name, folder / name)
    return folder


def tiny_checkpoints(root: Path, count: int = 2) -> list[dict]:
    """Write `count` perturbed tiny checkpoints under `root`; return the card's `checkpoints`."""
    return [
        {
            "name": f"step-{i}",
            "model": str(perturbed_checkpoint(root / f"step-{i}", 0.05 * (count + 1 - i), i)),
        }
        for i in range(1, count + 1)
    ]
