"""Run the registered analyses over one artifact folder and store their tables.

Tables go to `ARTIFACTS/NAME/analyses/TABLE.json`; `analyses/index.json` records the hash of
the inputs they were computed from, so an unchanged folder is not analysed twice.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from generator.analysis_names import recorded_analyses
from generator.analyze.activations import activations_analysis
from generator.analyze.attributions import attribution_tables
from generator.analyze.corpus_summary import corpus_facts, label_counts, length_histogram
from generator.analyze.gradients import gradients_analysis
from generator.analyze.heads import heads_analysis
from generator.analyze.neurons import neurons_analysis
from generator.analyze.parameters import (
    counts_by_component,
    parameter_table,
    shared_applications,
)
from generator.analyze.qk_geometry import qk_analysis
from generator.analyze.representations import representations
from generator.analyze.weights import (
    EMBEDDING_SAMPLES,
    embedding_projection_job,
    weights_analysis,
)
from generator.artifacts import Artifacts, dump_json
from generator.atomic import recover, staged_folder
from generator.hashing import json_sha256, source_sha256
from generator.schema import check_tables
from generator.timings import PartTimer, record_stage

log = logging.getLogger(__name__)


def _optional(artifacts: Artifacts, name: str):
    return artifacts.array(name) if artifacts.has(name) else None


def _parameters(artifacts: Artifacts) -> dict:
    inventory = artifacts.manifest["parameters"]
    shared = shared_applications(artifacts.manifest["model"].get("config") or {})
    return {
        "parameter_table": parameter_table(inventory),
        "parameter_counts": counts_by_component(inventory, shared),
    }


def _corpus(artifacts: Artifacts) -> dict:
    corpus = artifacts.manifest.get("corpus")
    if not corpus:
        return {}
    lengths = artifacts.array("corpus/token_lengths")
    full = artifacts.array("corpus/full_lengths")
    splits = _optional(artifacts, "corpus/splits")
    return {
        "corpus_facts": corpus_facts(lengths, full, corpus["max_length"]),
        "length_histogram": length_histogram(lengths, splits, corpus["max_length"]),
        "label_counts": label_counts(_optional(artifacts, "corpus/labels"), splits),
    }


# Each analysis maps an artifact folder to named tables, in the order and with the names of
# generator/analysis_names.py (the card's `analyses` chooses among them).
ANALYSES: dict[str, Callable[[Artifacts], dict]] = {
    "parameters": _parameters,
    "corpus": _corpus,
    "weights": weights_analysis,
    "activations": activations_analysis,
    "neurons": neurons_analysis,  # the MLP-neuron tables of the activations page
    "attributions": attribution_tables,
    "heads": heads_analysis,
    "qk_geometry": qk_analysis,
    "representations": representations,
}


def analyze(artifacts: Artifacts, force: bool = False) -> dict[str, object]:
    """Compute the card's analyses (or reuse stored tables); return tables by name."""
    folder = artifacts.root / "analyses"
    input_hash = json_sha256(
        {"artifacts": artifacts.manifest["input_hash"], "code": source_sha256("analyze")}
    )
    from threadpoolctl import threadpool_limits

    recover(folder)
    timer = PartTimer("analysis")
    if not force:
        tables = load_tables(folder, input_hash)
        if tables is not None:
            log.info("%s: analyses up to date", artifacts.root.name)
            record_stage(artifacts.root, "analyze", {"skipped": True, "seconds": timer.elapsed()})
            return tables
    tables: dict[str, object] = {}
    # The token-embedding t-SNE is the longest single fit: it runs in a worker beside the other
    # analyses, and the weights analysis, which waits for it, comes last.
    selected = recorded_analyses(artifacts.manifest)
    with contextlib.ExitStack() as stack:
        jobs = {}
        if "weights" in selected:
            for key, name in zip(("embedding_job", "output_job"), EMBEDDING_SAMPLES, strict=True):
                jobs[key] = embedding_projection_job(artifacts, name)
                if jobs[key] is not None:
                    stack.enter_context(jobs[key])
        analyses = {name: ANALYSES[name] for name in selected if name != "weights"}
        if "weights" in selected:
            analyses["weights"] = functools.partial(weights_analysis, **jobs)
            analyses["gradients"] = gradients_analysis  # a section of the weights page
        # One BLAS thread: the analyses' many small SVDs and products spent most of their
        # time in idle BLAS threads (qk_geometry: 0.2 s CPU with one, 7.8 s with two while a
        # worker ran beside it), and their tables are the same bytes either way.
        stack.enter_context(threadpool_limits(limits=1))
        for name, analysis in analyses.items():
            with timer.part(name):
                made = analysis(artifacts)
            check_tables("weights" if name == "gradients" else name, made)
            tables.update(made)
    with staged_folder(folder) as staging:
        for name, table in tables.items():
            (staging / f"{name}.json").write_text(dump_json(table), encoding="utf-8")
        index = {"input_hash": input_hash, "tables": sorted(tables)}
        (staging / "index.json").write_text(dump_json(index), encoding="utf-8")
    record_stage(artifacts.root, "analyze", {"seconds": timer.elapsed(), "analyses": timer.parts})
    return tables


def load_tables(folder: Path, input_hash: str) -> dict[str, object] | None:
    """Return stored tables when they were computed from `input_hash`, else None."""
    try:
        index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
        if index.get("input_hash") != input_hash:
            return None
        return {
            name: json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
            for name in index["tables"]
        }
    except (OSError, ValueError, KeyError):
        shutil.rmtree(folder, ignore_errors=True)
        return None
