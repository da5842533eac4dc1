"""Find the checkpoint folder a card names: local folder, installed package, or hub download."""

from __future__ import annotations

import os
from pathlib import Path

from generator.errors import ModelLoadError

HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model"]


def download_from_hub(repo_id: str, revision: str | None) -> Path:
    """Fetch a safetensors checkpoint from the Hugging Face hub (only when the user asked for it)."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ModelLoadError(
            f"'{repo_id}' is a hub id but HF_HUB_OFFLINE=1; download it and point `model` at the folder"
        )
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(repo_id, revision=revision, allow_patterns=HUB_PATTERNS)
    except Exception as error:  # network, auth and not-found errors come in many types
        raise ModelLoadError(
            f"cannot download '{repo_id}' from the hub ({type(error).__name__}); check the id and "
            "your connection, or point `model` at a local folder"
        ) from error
    return Path(folder)


def checkpoint_folder(card) -> Path:
    """Return the local folder of the card's checkpoint, downloading a hub id if needed."""
    local = card.model_path()
    if local is not None:
        if not local.is_dir():
            raise ModelLoadError(
                f"model path {local} is not a folder; point `model` at a checkpoint folder"
            )
        return local
    return download_from_hub(card.model, card.revision)
