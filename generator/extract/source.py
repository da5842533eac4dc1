"""Find the checkpoint folder a card names: local folder, installed package, or hub download.

A hub download first lists the repository's files and sizes, then fetches only what the atlas
reads: config.json, the tokenizer files, the hub card (README.md) and the safetensors weights:
`model.safetensors`, or `model.safetensors.index.json` and exactly the shards its weight_map
names; inside the card's `subfolder` when it names one, never in other folders. A repository
without safetensors weights is refused before anything is downloaded, and so is a download
larger than the free space of the hub cache. Never pickles, never code (`trust_remote_code` is
not used anywhere). Offline (`HF_HUB_OFFLINE=1`), a hub id is served from the local Hugging Face
cache or fails with one line.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from generator.errors import ModelLoadError
from generator.extract.tokenize import TOKENIZER_FILES
from generator.weight_files import INDEX_NAME, PICKLE_NAME, WEIGHTS_NAME

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
HUB_CARD_NAME = "README.md"
DISK_MARGIN = 1 << 28  # bytes kept free beyond the download (256 MiB)


def hub_offline() -> bool:
    """Return True when the user switched the hub off (HF_HUB_OFFLINE set to a true value)."""
    value = os.environ.get("HF_HUB_OFFLINE", "")
    return value.strip().upper() in ("1", "ON", "YES", "TRUE")


class HubClient:
    """The few huggingface_hub calls a download makes (tests replace this object)."""

    def list_files(self, repo_id: str, revision: str | None) -> tuple[str, dict[str, int]]:
        """Return (commit sha, {file path in the repo: size in bytes})."""
        from huggingface_hub import HfApi

        info = HfApi().model_info(repo_id, revision=revision, files_metadata=True)
        return info.sha, {s.rfilename: int(s.size or 0) for s in info.siblings or ()}

    def download_file(self, repo_id: str, revision: str, filename: str) -> Path:
        """Download one file of the repository; return its local path."""
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id, filename, revision=revision))

    def download(self, repo_id: str, revision: str | None, files: list[str], offline: bool) -> Path:
        """Download exactly `files` (from the cache only when offline); return the snapshot folder."""
        from huggingface_hub import snapshot_download

        folder = snapshot_download(
            repo_id, revision=revision, allow_patterns=files, local_files_only=offline
        )
        return Path(folder)

    def cache_dir(self) -> Path:
        """Return the folder downloads are stored in."""
        from huggingface_hub import constants

        return Path(constants.HF_HUB_CACHE)


def in_folder(subfolder: str | None, name: str) -> str:
    """Return the repository path of `name` inside `subfolder` (or at the top)."""
    return f"{subfolder.strip('/')}/{name}" if subfolder else name


def weight_names(
    repo_id: str, listing: dict[str, int], subfolder: str | None, read_index
) -> list[str]:
    """Return the repository paths of the safetensors weights to download.

    Args:
        repo_id: the hub id, for messages.
        listing: repository file path -> size.
        subfolder: the folder holding the checkpoint, or None for the top level.
        read_index: called with the index's repository path, returns its weight_map.

    Raises:
        ModelLoadError: the repository has no safetensors weights there, or the index names
            a shard the repository does not hold.
    """
    single, index = in_folder(subfolder, WEIGHTS_NAME), in_folder(subfolder, INDEX_NAME)
    if single in listing:
        return [single]
    if index in listing:
        shards = sorted({in_folder(subfolder, shard) for shard in read_index(index).values()})
        missing = [shard for shard in shards if shard not in listing]
        if missing:
            raise ModelLoadError(
                f"'{repo_id}': {index} names {missing[0]}, which the repository does not hold; "
                "report it to the model's authors or point `model` at a complete local copy"
            )
        return [index, *shards]
    where = f" in {subfolder}/" if subfolder else ""
    pickled = (
        " (it has only pytorch_model.bin)" if in_folder(subfolder, PICKLE_NAME) in listing else ""
    )
    elsewhere = sorted(p for p in listing if p.endswith(".safetensors"))
    hint = f"; its safetensors are elsewhere ({elsewhere[0]}): set `subfolder`" if elsewhere else ""
    raise ModelLoadError(
        f"'{repo_id}' has no {WEIGHTS_NAME} or {INDEX_NAME}{where}{pickled}{hint}; the atlas reads "
        "safetensors only: convert it (save_pretrained) and point `model` at the folder"
    )


def plan_download(
    repo_id: str, listing: dict[str, int], subfolder: str | None, read_index
) -> list[str]:
    """Return every repository path to download: config, tokenizer, hub card and weights."""
    if in_folder(subfolder, CONFIG_NAME) not in listing:
        where = f" in {subfolder}/" if subfolder else ""
        raise ModelLoadError(
            f"'{repo_id}' has no {CONFIG_NAME}{where}; it is not a transformers checkpoint"
            + ("" if subfolder else " (set `subfolder` if it holds one in a folder)")
        )
    weights = weight_names(repo_id, listing, subfolder, read_index)
    extras = [in_folder(subfolder, n) for n in (CONFIG_NAME, HUB_CARD_NAME, *TOKENIZER_FILES)]
    return [path for path in extras if path in listing] + weights


def check_space(repo_id: str, files: list[str], listing: dict[str, int], cache: Path) -> None:
    """Refuse a download that does not fit the free space of the hub cache."""
    needed = sum(listing[path] for path in files)
    probe = cache
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    log.info("%s: downloading %d file(s), %.2f GB", repo_id, len(files), needed / 1e9)
    if needed + DISK_MARGIN > free:
        raise ModelLoadError(
            f"'{repo_id}' needs {needed / 1e9:.2f} GB for {len(files)} file(s) but only "
            f"{free / 1e9:.2f} GB is free in {probe}; free space or set HF_HOME to a larger disk"
        )


def download_from_hub(
    repo_id: str,
    revision: str | None,
    subfolder: str | None = None,
    *,
    client: HubClient | None = None,
) -> Path:
    """Fetch a safetensors checkpoint from the Hugging Face hub (only when the user asked for it).

    Args:
        repo_id: the hub id (org/name).
        revision: branch, tag or commit; None for the default branch.
        subfolder: the repository folder holding the checkpoint, or None for the top level.
        client: the hub calls (default: huggingface_hub).

    Returns:
        The local snapshot folder (the checkpoint is in its `subfolder` when one is given).

    Raises:
        ModelLoadError: offline without a cached copy, unknown or gated repository, no
            safetensors weights, too little disk space, or a failed download (one line each).
    """
    client = client or HubClient()
    try:
        if hub_offline():
            return _cached_snapshot(client, repo_id, revision, subfolder)
        sha, listing = client.list_files(repo_id, revision)

        def read_index(path: str) -> dict:
            return _weight_map(client.download_file(repo_id, sha, path), repo_id)

        files = plan_download(repo_id, listing, subfolder, read_index)
        check_space(repo_id, files, listing, client.cache_dir())
        return client.download(repo_id, sha, files, offline=False)
    except ModelLoadError:
        raise
    except Exception as error:
        raise hub_error(error, repo_id, revision) from error


def download_config(repo_id: str, revision: str | None, *, client: HubClient | None = None) -> Path:
    """Download only the config.json of a hub checkpoint (for new-card); return its path.

    Raises:
        ModelLoadError: offline without a cached copy, unknown or gated repository, no config.
    """
    client = client or HubClient()
    try:
        if hub_offline():
            return client.download(repo_id, revision, [CONFIG_NAME], True) / CONFIG_NAME
        return client.download_file(repo_id, revision, CONFIG_NAME)
    except Exception as error:
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

        if isinstance(error, EntryNotFoundError) and not isinstance(error, LocalEntryNotFoundError):
            raise ModelLoadError(
                f"'{repo_id}' has no {CONFIG_NAME}; it is not a transformers checkpoint"
            ) from error
        raise hub_error(error, repo_id, revision) from error


def _cached_snapshot(client, repo_id: str, revision: str | None, subfolder: str | None) -> Path:
    """Return the cached snapshot of `repo_id` (offline: nothing is listed or downloaded)."""
    names = [CONFIG_NAME, HUB_CARD_NAME, *TOKENIZER_FILES, "*.safetensors", INDEX_NAME]
    return client.download(repo_id, revision, [in_folder(subfolder, n) for n in names], True)


def _weight_map(path: Path, repo_id: str) -> dict:
    """Return the weight_map of a downloaded index."""
    from generator.weight_files import read_index

    try:
        return read_index(path)
    except ModelLoadError as error:
        raise ModelLoadError(f"'{repo_id}': {error.message}") from error


def hub_error(error: Exception, repo_id: str, revision: str | None) -> ModelLoadError:
    """Return the one-line error for a failed hub call."""
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(error, LocalEntryNotFoundError):
        if hub_offline():
            return ModelLoadError(
                f"'{repo_id}' is a hub id but the hub is off (HF_HUB_OFFLINE) and it is not in the "
                "local cache; download it while online or point `model` at a local folder"
            )
        return ModelLoadError(
            f"cannot reach the Hugging Face hub to download '{repo_id}' (offline?); connect, or "
            "download it elsewhere and point `model` at the folder"
        )
    if isinstance(error, GatedRepoError):
        return ModelLoadError(
            f"'{repo_id}' is gated: accept its conditions on huggingface.co/{repo_id} and log in "
            "(hf auth login), or point `model` at a local copy"
        )
    if isinstance(error, RevisionNotFoundError):
        return ModelLoadError(
            f"revision '{revision}' of '{repo_id}' does not exist on the hub; fix `revision`"
        )
    if isinstance(error, RepositoryNotFoundError):
        return ModelLoadError(
            f"'{repo_id}' is not on the hub or needs access; check the id, or log in "
            "(hf auth login) for a private or gated model"
        )
    return ModelLoadError(
        f"cannot download '{repo_id}' from the hub ({type(error).__name__}); check the id and "
        "your connection, or point `model` at a local folder"
    )


def checkpoint_folder(card) -> Path:
    """Return the local folder of the card's checkpoint, downloading a hub id if needed.

    With the card's `subfolder`, the checkpoint (config, tokenizer, weights) is that folder.
    """
    subfolder = card.subfolder
    local = card.model_path()
    if local is not None:
        if not local.is_dir():
            raise ModelLoadError(
                f"model path {local} is not a folder; point `model` at a checkpoint folder"
            )
        root = local
    else:
        root = download_from_hub(card.model, card.revision, subfolder)
    if subfolder is None:
        return root
    folder = root / subfolder
    if not folder.is_dir():
        raise ModelLoadError(
            f"subfolder '{subfolder}' not found in {root}; fix `subfolder` in the card"
        )
    return folder
