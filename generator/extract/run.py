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
from generator.extract.processes import agree_with_primary, artifact_writer, is_primary_process
from generator.extract.source import checkpoint_folder
from generator.extract.tokenize import tokenizer_files
from generator.hashing import (
    FileHashCache,
    file_sha256,
    files_sha256,
    json_sha256,
    source_sha256,
)
from generator.options import BuildOptions
from generator.timings import record_stage

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
    timing: dict | None = None  # each step's seconds and the heavy steps' estimates


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
    card, artifacts_root: Path, options: BuildOptions | None = None, **flags
) -> ExtractResult:
    """Extract artifacts for `card` into `artifacts_root/NAME`, unless they are up to date.

    Args:
        card: the validated ModelCard.
        artifacts_root: folder holding one artifact folder per model.
        options: the build's flags: `force` recomputes even when the inputs' hash is unchanged;
            `strict` turns warnings (e.g. truncated texts) into a failure before anything is
            written; `progress` shows progress bars; `allow_pickle` reads a pytorch_model.bin
            (without running its code); `notify` receives one-line notes (the memory estimate).
        **flags: BuildOptions fields set on top of `options` (e.g. `progress=False`).

    Returns:
        ExtractResult with the manifest of the (new or cached) artifact folder.
    """
    options = BuildOptions.of(options, **flags)
    started = time.perf_counter()
    folder = artifacts_root / card.name
    model_dir = checkpoint_folder(card)
    fingerprint = input_fingerprint(
        card, model_dir, options.allow_pickle, hashes=hash_cache(artifacts_root)
    )
    input_hash = json_sha256(fingerprint)
    recover(folder)  # a killed build may have left a staging folder or a half-done swap
    if not options.force:
        manifest = cached_manifest(folder, input_hash)
        # Every process of a distributed run follows process 0's decision.
        if agree_with_primary(manifest is not None):
            log.info("%s: artifacts up to date, extraction skipped", card.name)
            seconds = time.perf_counter() - started
            if is_primary_process():
                record_stage(folder, "extract", {"skipped": True, "seconds": round(seconds, 3)})
            return ExtractResult(folder, manifest or {}, skipped=True, seconds=seconds)
    header = {"input_hash": input_hash, "inputs": fingerprint, "code_version": code_version()}
    manifest, warnings, compile_seconds, timing = capture_into(
        folder, card, model_dir, header=header, artifacts_root=artifacts_root, options=options
    )
    for warning in warnings:
        log.warning("%s: %s", card.name, warning)
    seconds = time.perf_counter() - started
    log.info("%s: extracted in %.1f s (JAX compile %.1f s)", card.name, seconds, compile_seconds)
    if is_primary_process():
        totals = {"seconds": round(seconds, 3), "compile_seconds": round(compile_seconds, 3)}
        record_stage(folder, "extract", {**totals, **timing})
    return ExtractResult(
        folder,
        manifest,
        skipped=False,
        warnings=tuple(warnings),
        seconds=seconds,
        compile_seconds=compile_seconds,
        timing=timing,
    )


def capture_into(
    folder: Path,
    card,
    model_dir: Path,
    *,
    header: dict,
    artifacts_root: Path,
    options: BuildOptions,
) -> tuple[dict, list[str], float, dict]:
    """Run the forward passes into a staged `folder`; return (manifest, warnings, compile s,
    timing).

    `header` (input hash, inputs, code version) opens the manifest.
    """
    from generator.extract.capture import capture  # imports JAX: only when there is work
    from generator.extract.compile_time import CompileTimer

    with artifact_writer(folder) as writer, CompileTimer() as compiling:  # only process 0 writes
        details, warnings, timing = capture(
            card, model_dir, artifacts_root, writer=writer, options=options
        )
        manifest = writer.finish({**header, **details})
    return manifest, warnings, compiling.seconds, timing
