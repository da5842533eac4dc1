"""Find the checkpoint folder a card names: local folder, installed package, or hub download.

Hub downloads fetch configs, tokenizer files and safetensors weights only (never pickles, never
code: `trust_remote_code` is not used anywhere). Offline (`HF_HUB_OFFLINE=1`), a hub id is served
from the local Hugging Face cache or fails with one line.
"""

from __future__ import annotations

import os
from pathlib import Path

from generator.errors import ModelLoadError

HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model"]


def hub_offline() -> bool:
    """Return True when the user switched the hub off (HF_HUB_OFFLINE set to a true value)."""
    value = os.environ.get("HF_HUB_OFFLINE", "")
    return value.strip().upper() in ("1", "ON", "YES", "TRUE")


def download_from_hub(repo_id: str, revision: str | None) -> Path:
    """Fetch a safetensors checkpoint from the Hugging Face hub (only when the user asked for it)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    offline = hub_offline()
    try:
        folder = snapshot_download(
            repo_id, revision=revision, allow_patterns=HUB_PATTERNS, local_files_only=offline
        )
    except LocalEntryNotFoundError as error:
        if offline:
            raise ModelLoadError(
                f"'{repo_id}' is a hub id but the hub is off (HF_HUB_OFFLINE) and it is not in the "
                "local cache; download it while online or point `model` at a local folder"
            ) from error
        raise ModelLoadError(
            f"cannot reach the Hugging Face hub to download '{repo_id}' (offline?); connect, or "
            "download it elsewhere and point `model` at the folder"
        ) from error
    except RevisionNotFoundError as error:
        raise ModelLoadError(
            f"revision '{revision}' of '{repo_id}' does not exist on the hub; fix `revision`"
        ) from error
    except RepositoryNotFoundError as error:
        raise ModelLoadError(
            f"'{repo_id}' is not on the hub or needs access; check the id, or log in "
            "(hf auth login) for a private or gated model"
        ) from error
    except Exception as error:  # network, auth and other errors come in many types
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
