"""Run the extract stage for one card: checkpoint + corpus in, artifact folder out."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import generator
from generator.artifacts import FORMAT_VERSION, damaged_arrays, read_manifest
from generator.atomic import recover
from generator.extract.checkpoints import checkpoint_fingerprints, weights_sha256
from generator.extract.hub_card import read_hub_card
from generator.extract.processes import agree_with_primary, artifact_writer
from generator.extract.source import checkpoint_folder
from generator.extract.tokenize import tokenizer_files
from generator.hashing import (
    FileHashCache,
    file_sha256,
    files_sha256,
    json_sha256,
    source_sha256,
)

log = logging.getLogger(__name__)

HASH_CACHE_NAME = ".file-hashes.json"  # in the artifact root: weights hashes by (path, size, mtime)


@dataclass(frozen=True)
class ExtractResult:
    """What the extract stage did for one card."""

    folder: Path
    manifest: dict
    skipped: bool
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0
    compile_seconds: float = 0.0  # of `seconds`: JAX tracing + compilation (or cache reads)


def code_version() -> str:
    """Return the version string that invalidates artifacts when extraction code changes."""
    source = source_sha256(
        "extract", "models", "attribution", "artifacts", "corpus", "weight_files"
    )[:12]
    return f"{generator.__version__}+artifacts{FORMAT_VERSION}+{source}"


def hash_cache(artifacts_root: Path | None) -> FileHashCache:
    """Return the file-hash cache of an artifact store (none on disk without a store)."""
    return FileHashCache(None if artifacts_root is None else artifacts_root / HASH_CACHE_NAME)


def input_fingerprint(
    card, model_dir: Path, allow_pickle: bool = False, *, hashes: FileHashCache | None = None
) -> dict:
    """Return every input of extraction, hashed: weights, tokenizer, corpus, settings, code.

    `hashes` remembers the weights' hashes by (path, size, mtime_ns), so a warm rebuild does
    not re-read a multi-GB checkpoint.
    """
    hashes = hashes or FileHashCache(None)
    config = model_dir / "config.json"
    corpus = card.corpus_path()
    fingerprint = {
        "weights_sha256": weights_sha256(model_dir, hashes, allow_pickle),
        "config_sha256": file_sha256(config) if config.is_file() else None,
        "tokenizer_sha256": files_sha256(tokenizer_files(model_dir), model_dir),
        "corpus_sha256": file_sha256(corpus) if corpus is not None else None,
        "settings": card.extraction_settings(),
        "checkpoints": checkpoint_fingerprints(card, hashes),
        "code_version": code_version(),
    }
    hub_card = read_hub_card(model_dir)
    if hub_card:  # shown on the overview page: a changed README.md metadata re-extracts
        fingerprint["hub_card"] = hub_card
    hashes.save()
    return fingerprint


def cached_manifest(folder: Path, input_hash: str) -> dict | None:
    """Return the existing manifest when it was made from the same inputs and is intact."""
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("input_hash") != input_hash:
        return None
    damaged = damaged_arrays(folder, manifest)
    if damaged:
        log.warning("artifacts in %s are damaged (%s); recomputing", folder, ", ".join(damaged[:3]))
        return None
    return manifest


def extract(
    card,
    artifacts_root: Path,
    force: bool = False,
    *,
    strict: bool = False,
    progress: bool = True,
    allow_pickle: bool = False,
    notify=None,
) -> ExtractResult:
    """Extract artifacts for `card` into `artifacts_root/NAME`, unless they are up to date.

    Args:
        card: the validated ModelCard.
        artifacts_root: folder holding one artifact folder per model.
        force: recompute even when the inputs' hash is unchanged.
        strict: turn warnings (e.g. truncated texts) into a failure before anything is written.
        progress: show progress bars on stderr.
        allow_pickle: read a pytorch_model.bin checkpoint (without running its code).
        notify: callback receiving one-line notes for the user (the memory estimate).

    Returns:
        ExtractResult with the manifest of the (new or cached) artifact folder.
    """
    started = time.perf_counter()
    folder = artifacts_root / card.name
    model_dir = checkpoint_folder(card)
    fingerprint = input_fingerprint(
        card, model_dir, allow_pickle, hashes=hash_cache(artifacts_root)
    )
    input_hash = json_sha256(fingerprint)
    recover(folder)  # a killed build may have left a staging folder or a half-done swap
    if not force:
        manifest = cached_manifest(folder, input_hash)
        # Every process of a distributed run follows process 0's decision.
        if agree_with_primary(manifest is not None):
            log.info("%s: artifacts up to date, extraction skipped", card.name)
            return ExtractResult(folder, manifest or {}, skipped=True)
    header = {"input_hash": input_hash, "inputs": fingerprint, "code_version": code_version()}
    manifest, warnings, compile_seconds = capture_into(
        folder,
        card,
        model_dir,
        header=header,
        artifacts_root=artifacts_root,
        strict=strict,
        progress=progress,
        allow_pickle=allow_pickle,
        notify=notify,
    )
    for warning in warnings:
        log.warning("%s: %s", card.name, warning)
    seconds = time.perf_counter() - started
    log.info("%s: extracted in %.1f s (JAX compile %.1f s)", card.name, seconds, compile_seconds)
    return ExtractResult(
        folder,
        manifest,
        skipped=False,
        warnings=tuple(warnings),
        seconds=seconds,
        compile_seconds=compile_seconds,
    )


def capture_into(
    folder: Path, card, model_dir: Path, *, header: dict, artifacts_root: Path, **flags
) -> tuple[dict, list[str], float]:
    """Run the forward passes into a staged `folder`; return (manifest, warnings, compile s).

    `header` (input hash, inputs, code version) opens the manifest; `flags` are capture's
    (strict, progress, allow_pickle, notify).
    """
    from generator.extract.capture import capture  # imports JAX: only when there is work
    from generator.extract.compile_time import CompileTimer

    with artifact_writer(folder) as writer, CompileTimer() as compiling:  # only process 0 writes
        details, warnings = capture(card, model_dir, artifacts_root, writer=writer, **flags)
        manifest = writer.finish({**header, **details})
    return manifest, warnings, compiling.seconds
