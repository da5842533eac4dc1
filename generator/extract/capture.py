"""Forward passes over the corpus and the showcase, streamed into the artifact store.

Corpus-wide arrays (axes):
  corpus/pooled_mean                     [text, layer, d_model]  layer = L+1, embeddings first
  corpus/pooled_cls (encoders), corpus/pooled_last (decoders)  [text, layer, d_model]
  corpus/unit_token_sum                  [text, layer, d_model]  sum of unit-length token vectors
  corpus/token_lengths                   [text]  tokens kept (special tokens included)
  corpus/full_lengths                    [text]  tokens before truncation
  corpus/texts, corpus/labels, corpus/splits  [text]  fixed-width unicode
Showcase arrays (one row per showcase example, padded to a common length):
  showcase/index [example]; input_ids, attention_mask, tokens [example, token]
  hidden_states [example, layer, token, d_model]; attentions [example, layer, head, query, key]
  attention_scores [example, layer, head, query, key]  before the softmax and the mask, float32
  queries, keys, values [example, layer, head, token, d_head]
  special_mask [example, token]  1 on special tokens (attention sinks), 0 elsewhere and on padding
  with a head: top_logits, top_token_ids [example, token, rank] (masked / causal LM), or
  logits [example, label] / [example, token, label] / [example, token] (classifiers)
Per-head attention metrics (generator/extract/head_metrics.py; encoder-decoders: of the encoder,
the decoder and cross-attention ones are showcase arrays, see extract/seq2seq.py):
  corpus/head_metrics  [text, layer, head, metric]  float32 whatever store_dtype
Encoder-decoder models (T5) keep input_ids, attention_mask and tokens for the encoder side and
store the rest under encoder_*, decoder_* and cross_* names: see extract/seq2seq.py.
Batches run on a device mesh (extract/sharding.py): rows over `data`, heads/MLP over `model`.
Greedy time steps of decoders and encoder-decoders: generation/* (see extract/generation.py).
Per further checkpoint NAME of the card (see checkpoints.py):
  checkpoints/NAME/corpus/pooled_*, checkpoints/NAME/corpus/unit_token_sum
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from generator.artifacts import ArtifactWriter
from generator.card import DEFAULT_MAX_TARGET_LENGTH
from generator.corpus import load_corpus
from generator.errors import CardError, CorpusError, warn
from generator.extract import sharding
from generator.extract.batching import bucket_length, pad_rows
from generator.extract.corpus_pass import (  # noqa: F401 (NonFiniteActivations re-exported)
    NonFiniteActivations,
    non_finite_error,
    special_mask,
    stream_corpus,
)
from generator.extract.showcase import (
    choose_showcase,
    resolve_showcase_texts,
    showcase_batch,
    showcase_tokens,
)
from generator.extract.stored_strings import strings_array, token_rows
from generator.extract.tokenize import (
    load_tokenizer,
    tokenize_corpus,
    tokenizer_files,
)
from generator.options import BuildOptions

log = logging.getLogger(__name__)


def compilation_cache_dir(artifacts_root: Path) -> Path:
    """Return where compiled programs are kept: MODELATLAS_JAX_CACHE, else ARTIFACTS/.jax-cache."""
    shared = os.environ.get("MODELATLAS_JAX_CACHE")
    return Path(shared) if shared else artifacts_root / ".jax-cache"


def enable_compilation_cache(artifacts_root: Path) -> None:
    """Keep compiled XLA programs (in the artifact folder) so later builds skip compilation."""
    import jax

    cache = compilation_cache_dir(artifacts_root)
    cache.mkdir(parents=True, exist_ok=True)
    if jax.config.jax_compilation_cache_dir not in (None, str(cache)):
        # JAX opens its cache once per process; a second artifact root in the same process
        # (the Python API, tests) needs it reopened at the new place.
        from jax._src import compilation_cache

        compilation_cache.reset_cache()
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def parameter_inventory(model) -> list[dict]:
    """List every parameter tensor of an nnx module: dotted name, shape, element count."""
    from flax import nnx

    flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
    rows = []
    for path, variable in flat:
        value = variable.get_value() if hasattr(variable, "get_value") else variable.value
        shape = [int(s) for s in value.shape]
        rows.append(
            {"name": ".".join(str(p) for p in path), "shape": shape, "count": int(np.prod(shape))}
        )
    return sorted(rows, key=lambda row: row["name"])


def parameter_total(model) -> int:
    """Count the parameters of an nnx module (every tensor of `parameter_inventory`)."""
    return sum(row["count"] for row in parameter_inventory(model))


def special_token_ids(tokenizer) -> list[int]:
    """Return the tokenizer's special ids that can act as attention sinks.

    Every special id except the unknown token (it stands for content) and padding (never
    visible anyway): [CLS], [SEP], <s>, </s>, <|endoftext|>, [MASK], ...
    """
    skip = {tokenizer.unk_token_id, tokenizer.pad_token_id}
    return sorted({int(i) for i in tokenizer.all_special_ids} - skip)


# Named axes of the stored head outputs, per primary head.
LOGIT_AXES = {
    "classification": ("example", "label"),
    "token-classification": ("example", "token", "label"),
    "replaced-token-detection": ("example", "token"),
}


def check_pooling(card, config) -> None:
    """Refuse a headline pooling the architecture cannot give (cls on a decoder, last on an encoder)."""
    if card.pooling == "cls" and config.causal:
        raise CardError(
            f"{card.path}: pooling 'cls' needs an encoder, but {config.model_type} is a decoder "
            "whose first token sees only itself; use pooling mean or last"
        )
    if card.pooling == "last" and not config.causal:
        raise CardError(
            f"{card.path}: pooling 'last' is for decoders, but {config.model_type} is an "
            "encoder; use pooling mean or cls"
        )


def padding_id(tokenizer) -> int:
    """Return the id to pad with: the pad token, else end-of-sequence, else 0 (masked anyway)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if isinstance(candidate, int):
            return candidate
    return 0


def memory_estimates(card, loaded, batches, showcase_shape: tuple[int, int]) -> list:
    """Return the MemoryEstimate of each distinct corpus batch shape (showcase included)."""
    from generator.models.memory import estimate_memory

    count = parameter_total(loaded.model)
    return [
        estimate_memory(
            loaded.config,
            batch.batch_size,
            batch.bucket,
            dtype=card.dtype,
            store_dtype=card.store_dtype,
            parameters=count,
            showcase=showcase_shape,
        )
        for batch in {(b.batch_size, b.bucket): b for b in batches}.values()
    ]


def memory_summary(estimates: list) -> str:
    """Return the one-line memory estimate of this extraction (largest corpus batch, showcase)."""
    return max(estimates, key=lambda e: e.corpus_batch_bytes).summary()


def check_activations(card, estimates: list, available) -> None:
    """Refuse the corpus pass when its largest batch or the showcase exceeds the free memory.

    The parameters are resident already, so only the activations are compared with what is free.
    """
    from generator.models.device_memory import check_batch

    most = max(max(e.corpus_batch_bytes, e.showcase_batch_bytes) for e in estimates)
    check_batch(card.name, most, available, max_length=card.max_length)


@dataclass
class ExtractRun:
    """One extraction: the card, the loaded model on its mesh, and what the steps have found.

    `capture` runs `STEPS` in order, each a function of the run: it reads what earlier steps
    set (the corpus, tokens, the compiled steps, ...), writes arrays with `writer`, and adds to
    `details` (the manifest's extraction record) and `warnings`.
    """

    card: object
    model_dir: Path
    writer: ArtifactWriter
    loaded: object
    mesh: object
    options: BuildOptions
    details: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    weights_job: object = None  # the weight statistics' BackgroundStep, until collected
    embedding: object = None  # the token-embedding matrix, until its geometry is written
    output_embedding: object = None  # the unembedding (OutputEmbedding), likewise
    corpus: object = None
    tokenizer: object = None
    tokens: object = None
    max_length: int = 0
    pad_id: int = 0
    specials: list[int] = field(default_factory=list)
    reducers: list = field(default_factory=list)
    neuron_stats: object = None
    neuron_ids: object = None
    corpus_step: object = None
    showcase_step: object = None
    params: object = None
    streamed: dict = field(default_factory=dict)
    summed: dict = field(default_factory=dict)
    batches: list = field(default_factory=list)
    showcase: object = None
    showcase_tokens: object = None  # the corpus's tokens, then the extra showcase texts'
    width: int = 0
    decoder: tuple = ()
    timings: list = field(default_factory=list)  # {step, seconds, compile_seconds, peak_rss_bytes}
    estimates: list = field(default_factory=list)  # StepEstimate of the heavy steps
    throughput: float = 0.0  # measured matmul FLOP/s used by the estimates
    gradient_memory_problem: str | None = None  # why the parameter gradients cannot fit

    @property
    def strict(self) -> bool:
        """Whether warnings fail the build (`--strict`)."""
        return self.options.strict

    @property
    def progress(self) -> bool:
        """Whether to draw progress bars."""
        return self.options.progress

    @property
    def notify(self) -> Callable[[str], None] | None:
        """Where one-line notes for the user go (None: nowhere)."""
        return self.options.notify

    @property
    def config(self):
        """The loaded model's config."""
        return self.loaded.config

    @property
    def analyses(self) -> tuple[str, ...]:
        """The analyses the card runs: the arrays only others need are not extracted."""
        return self.card.selected_analyses

    @property
    def seq2seq(self) -> bool:
        """Whether the model is an encoder-decoder."""
        return self.config.seq2seq

    def warn(self, message: str) -> None:
        """Record a warning, or fail at once under --strict."""
        warn(message, self.warnings, self.strict)

    def stream(
        self, params, streamed: dict, *, desc: str, where: str = "", on_batch=None, summed=None
    ) -> None:
        """Stream the planned corpus batches through the corpus step with `params`.

        `streamed` maps reducer names to the `[text, ...]` arrays the rows go to, `summed` those
        of summed reducers to the arrays their rows are added into (None: not kept); `where`
        prefixes a non-finite error (it names the weights), `on_batch` sees every batch.
        """
        stream_corpus(
            self.corpus_step,
            params,
            self.batches,
            self.tokens.ids,
            self.pad_id,
            streamed=streamed,
            summed=summed,
            desc=desc,
            progress=self.progress,
            mesh=self.mesh,
            special_ids=self.specials,
            texts=self.corpus.texts,
            where=where,
            on_batch=on_batch,
        )

    def copy_rates(self) -> dict | None:
        """The measured memory rates the gradient estimate used (None: no estimate made)."""
        if not self.estimates:
            return None
        from generator.extract.estimate import measured_copy_rates

        fresh, reused = measured_copy_rates()
        return {"fresh": round(fresh), "reused": round(reused)}

    def timing_record(self) -> dict:
        """Return the steps' measured times and the heavy steps' estimates (timings.json)."""
        return {
            "steps": self.timings,
            "throughput_flops": round(self.throughput),
            "copy_bytes_per_second": self.copy_rates(),
            "estimates": [
                {
                    "step": e.step,
                    "budget": e.budget,
                    "seconds": float(f"{e.seconds(self.throughput):.4g}"),
                }
                for e in self.estimates
            ],
        }


def capture(
    card,
    model_dir: Path,
    artifacts_root: Path,
    *,
    writer: ArtifactWriter,
    options: BuildOptions,
) -> tuple[dict, list[str], dict]:
    """Run the model over the corpus and showcase; return (manifest details, warnings, timing).

    `options.allow_pickle` lets the loader read a pytorch_model.bin (without running its
    code); `options.notify` receives the one-line memory estimate before the forward passes.
    """
    import jax

    from generator.extract.processes import is_primary_process
    from generator.models.device_memory import check_checkpoint
    from generator.models.loading import load_model, open_checkpoint, streams_parameters

    if is_primary_process():  # other processes of a distributed run write nothing
        enable_compilation_cache(artifacts_root)
    # Without a corpus only the weight statistics need the parameters: streamed, not loaded.
    streamed = card.corpus_path() is None and streams_parameters(model_dir, options.allow_pickle)
    # refuse before loading, never killed mid-way; beside a corpus pass on an accelerator the
    # weight statistics' working copies are in the host's memory, not the device's
    platform = jax.default_backend()
    beside_device = card.corpus_path() is not None and platform != "cpu"
    working_sets = 0 if beside_device else weight_threads(card, platform)
    check_checkpoint(card.name, model_dir, resident=not streamed, working_sets=working_sets)
    load = open_checkpoint if streamed else load_model
    loaded = load(model_dir, dtype=card.dtype, allow_pickle=options.allow_pickle)
    check_pooling(card, loaded.config)
    mesh = sharding.make_mesh(card.mesh)
    sharding.check_model_axis(loaded.config, int(mesh.shape["model"]))
    run = ExtractRun(
        card=card,
        model_dir=model_dir,
        writer=writer,
        loaded=loaded,
        mesh=mesh,
        options=options,
    )
    run_steps(run, WEIGHT_STEPS)
    if card.corpus_path() is None:
        run_steps(run, (write_weights_only_geometry, collect_weights))
        return run.details, run.warnings, run.timing_record()
    run_steps(run, CORPUS_STEPS)
    return run.details, run.warnings, run.timing_record()


def run_steps(run: ExtractRun, steps) -> None:
    """Run `steps` in order (layers traced as `extraction_layers` says), timing each in `run`."""
    import jax

    from generator.extract.compile_time import collecting_parts, measured
    from generator.models.layers import extraction_layers

    for step in steps:
        layers = extraction_layers(jax.default_backend())
        with measured() as record, collecting_parts() as parts, layers:
            step(run)
        # A part's peak is sampled by its own thread: the step's is at least the highest of them.
        part_peaks = [part["peak_rss_bytes"] for part in parts if "peak_rss_bytes" in part]
        if record["peak_rss_bytes"] is not None:
            record["peak_rss_bytes"] = max([record["peak_rss_bytes"], *part_peaks])
        run.timings.append({"step": step.__name__, **record, **({"parts": parts} if parts else {})})


def hub_card_entry(model_dir: Path) -> dict:
    """Return {"hub_card": metadata} when the checkpoint's README.md states any, else {}."""
    from generator.extract.hub_card import read_hub_card

    metadata = read_hub_card(model_dir)
    return {"hub_card": metadata} if metadata else {}


def describe_model(run: ExtractRun) -> None:
    """Record the model, its parameters, dtypes and devices; warn about seq2seq-only keys.

    With a corpus, also measure the device's matmul and memory rates for the time estimate
    (cached), before the weight statistics' thread shares it.
    """
    import jax

    from generator.extract import estimate

    if run.card.corpus_path() is not None:
        estimate.measured_throughput(run.card.dtype)
        estimate.measured_copy_rates()

    card, config, loaded = run.card, run.config, run.loaded
    run.details.update(
        {
            "model": {
                "source": card.model,
                "revision": card.revision,
                "family": config.family,
                "model_type": config.model_type,
                "config": config.to_dict(),
                "hf_config": loaded.hf_config,
                "ignored_tensors": list(loaded.ignored),
                **hub_card_entry(run.model_dir),
            },
            "parameters": parameter_inventory(loaded.model),
            "dtype": card.dtype,
            "store_dtype": card.store_dtype,
            "devices": [str(jax.devices()[0].platform)],
            "mesh": sharding.describe(run.mesh),
            "analyses": list(run.analyses),
        }
    )
    targets_set = card.max_target_length != DEFAULT_MAX_TARGET_LENGTH
    if not run.seq2seq and (card.target_field or card.target or targets_set):
        run.warn(
            "target, target_field and max_target_length apply to encoder-decoder models only;"
            f" this {config.family} model ignores them"
        )


def write_weights(run: ExtractRun) -> None:
    """Start the weight statistics (one tensor at a time) in a background thread, collected by
    `collect_weights` (without a corpus: compute them now); keep the token embedding for its
    geometry."""
    import jax

    from generator.extract.background import BackgroundStep, ForegroundStep
    from generator.extract.embedding_geometry import output_embedding, token_embedding
    from generator.extract.weights import parameter_arrays, weight_artifacts

    weights = run.loaded.parameters
    if weights is None:  # the model holds them
        weights = parameter_arrays(run.loaded.model)
    # Beside a corpus's forward passes: in a thread; without a corpus: here, on every CPU,
    # with a progress bar (the whole build's work: a 7B checkpoint takes minutes).
    largest = max(row["count"] for row in parameter_inventory(run.loaded.model))
    threads = weight_threads(run.card, jax.default_backend(), largest)
    if run.card.corpus_path() is None:
        bar = f"{run.card.name}: weights" if run.progress else None
        job = ForegroundStep("write_weights", weight_artifacts, weights, run.config, threads, bar)
    else:
        job = BackgroundStep("write_weights", weight_artifacts, weights, run.config, threads)
    run.weights_job = job
    run.embedding = token_embedding(weights)
    run.output_embedding = output_embedding(weights, run.config)


def weight_threads(card, platform: str, largest: int = 0) -> int:
    """Return the threads the weight statistics use.

    Without a corpus, one per CPU (`worker_count`). Beside a corpus's forward passes on the
    CPU, one (a second one only took CPU from them). Beside forward passes on an accelerator,
    the host's CPUs are free but for the thread driving the device: one per CPU but one, as
    many as the host's free memory holds working copies of the `largest` tensor (entries) for.
    On one thread Llama-2-7B's statistics alone would take over an hour (4,964 CPU seconds on
    a 2-core Zen 5, benchmarks/results.md), far beyond the GPU's forward passes.
    """
    from generator.analyze.workers import worker_count
    from generator.models.device_memory import WEIGHTS_STEP_COPIES, cpu_available

    if card.corpus_path() is None:
        return worker_count(1 << 30)
    if platform == "cpu":
        return 1
    threads = max(1, worker_count(1 << 30) - 1)
    if largest:
        return max(1, min(threads, cpu_available() // (8 * WEIGHTS_STEP_COPIES * largest)))
    return threads


def collect_weights(run: ExtractRun) -> None:
    """Wait for the weight statistics, store them, and time `write_weights` by its thread."""
    from generator.extract.weights import store_weight_artifacts

    job, run.weights_job = run.weights_job, None
    section = store_weight_artifacts(job.result(), run.writer)
    run.details["weights"] = {**section, **run.details.get("weights", {})}  # + the embeddings
    for timing in run.timings if job.background else ():
        if timing["step"] == job.name:  # its own time, beside the steps that ran meanwhile
            timing.update(
                seconds=round(job.seconds, 3),
                cpu_seconds=round(job.cpu_seconds, 3),
                background=True,
            )
            timing.pop("peak_rss_bytes", None)  # the process's peak over that time is others'


def write_weights_only_geometry(run: ExtractRun) -> None:
    """Without a corpus: the embedding geometry (with the tokenizer's strings when there is one)."""
    from generator.extract.embedding_geometry import write_embedding_geometry

    run.details["corpus"] = None
    tokenizer = load_tokenizer(run.model_dir) if tokenizer_files(run.model_dir) else None
    run.details.setdefault("weights", {})["embeddings"] = write_embedding_geometry(
        run.embedding, tokenizer, run.writer, output=run.output_embedding
    )


def tokenize(run: ExtractRun) -> None:
    """Load and tokenise the corpus (warning on truncation); store the embedding geometry."""
    from generator.extract.activation_stats import write_corpus_tokens
    from generator.extract.embedding_geometry import write_embedding_geometry

    card, config = run.card, run.config
    run.corpus = corpus = load_corpus(
        card.corpus_path(), card.text_field, card.label_field, card.split_field
    )
    run.tokenizer = load_tokenizer(run.model_dir)
    max_length = card.max_length
    if config.max_positions is not None and max_length > config.max_positions:
        run.warn(
            f"max_length {max_length} exceeds the model's {config.max_positions} positions; "
            f"using {config.max_positions}"
        )
        max_length = config.max_positions
    run.max_length = max_length
    run.tokens = tokens = tokenize_corpus(run.tokenizer, list(corpus.texts), max_length)
    if tokens.truncated:
        run.warn(
            f"{tokens.truncated} of {len(corpus)} texts are longer than max_length {max_length} "
            "tokens and were truncated"
        )
    if min(tokens.lengths) == 0:
        raise CorpusError(f"{corpus.source}: a text produced no tokens; remove empty texts")
    run.details.setdefault("weights", {})["embeddings"] = write_embedding_geometry(
        run.embedding, run.tokenizer, run.writer, tokens.ids, output=run.output_embedding
    )
    run.embedding = run.output_embedding = None
    write_corpus_tokens(run.writer, run.tokenizer, tokens.ids)


def plan_corpus_pass(run: ExtractRun) -> None:
    """Compile the steps, open the streamed arrays, plan batches and showcase; log the memory."""
    import jax.numpy as jnp

    from generator.extract import neurons
    from generator.extract.reducers import (
        Reducer,
        active_reducers,
        open_reducer_arrays,
        open_summed_arrays,
    )
    from generator.extract.steps import make_steps
    from generator.models.device_memory import device_available

    card, config, writer = run.card, run.config, run.writer
    store = jnp.dtype(card.store_dtype)
    run.reducers = active_reducers(config, run.analyses)
    run.neuron_stats = neurons.start(card, config)  # None: not asked for
    if run.neuron_stats is not None:
        run.reducers.append(Reducer(**neurons.REDUCER_SPEC))
    step, run.showcase_step, run.params = make_steps(
        run.loaded.model, run.reducers, store, mesh=run.mesh
    )
    n_texts = len(run.corpus)
    run.streamed = open_reducer_arrays(writer, run.reducers, config, n_texts, store=store)
    run.summed = open_summed_arrays(writer, run.reducers, config)
    run.pad_id = padding_id(run.tokenizer)
    run.specials = special_token_ids(run.tokenizer)
    measured, budget = plan_corpus_batches(run, step)
    plan_showcase(run)
    width = bucket_length(int(max(run.showcase_tokens.lengths[run.showcase])), run.max_length)
    estimates = memory_estimates(card, run.loaded, run.batches, (len(run.showcase), width))
    summary = memory_summary(estimates) + compiled_summary(run.batches, measured, budget)
    available = device_available()
    check_activations(card, estimates, available)
    tell(run, f"{card.name}: {summary}")
    check_gradient_memory(run, available)
    note_time_estimate(run, width)


def check_gradient_memory(run: ExtractRun, available) -> None:
    """Decide whether the parameter gradients fit in `available`; warn now when they do not.

    Run before the passes, and again before the gradient step (the analysis's workers may hold
    memory since); once they do not fit they are skipped with the reason (the weights page
    shows it), never killed mid-way.
    """
    if "weights" not in run.analyses or gradient_task(run)[1] is not None:
        return  # not asked for, or skipped for another reason
    run.gradient_memory_problem = gradient_memory_problem(run, available)
    if run.gradient_memory_problem is not None:
        run.warn(f"{run.card.name}: parameter gradients skipped: {run.gradient_memory_problem}")


def gradient_memory_problem(run: ExtractRun, available) -> str | None:
    """Why the parameter-gradient step cannot fit in `available` memory (None: it fits)."""
    from generator.extract.gradients import SAMPLE_SIZE, memory_problem
    from generator.extract.head_budget import sample_and_width

    count = parameter_total(run.loaded.model)
    per_device = count // int(run.mesh.shape["model"])
    _, width = sample_and_width(run.corpus, run.tokens, SAMPLE_SIZE)
    return memory_problem(
        run.config, per_device, width, checkpoints=bool(run.card.checkpoints), available=available
    )


def tell(run: ExtractRun, line: str) -> None:
    """Give the user one line: through `notify` when the build has one, else the INFO log.

    Not both, or a verbose build would print the line twice.
    """
    if run.notify is None:
        log.info("%s", line)
    else:
        log.debug("%s", line)
        run.notify(line)


def plan_corpus_batches(run: ExtractRun, step) -> tuple[int | None, int]:
    """Plan the corpus batches within the memory budget; return (measured bytes, budget).

    Sets `run.corpus_step` to the step compiled per batch shape (extract/corpus_budget.py).
    """
    from generator.extract.corpus_budget import (
        ShapePrograms,
        corpus_budget,
        corpus_row_cost,
        plan_within_budget,
    )
    from generator.models.device_memory import device_available
    from generator.models.memory import estimate_memory

    lengths = run.tokens.lengths
    longest = bucket_length(int(max(lengths)), run.max_length)
    one_row = estimate_memory(run.config, 1, longest, dtype=run.card.dtype, parameters=0)
    budget = corpus_budget(device_available().bytes)
    run.corpus_step = ShapePrograms(step, run.params, run.mesh)
    run.batches, measured = plan_within_budget(
        run.corpus_step,
        lengths,
        run.max_length,
        budget=budget,
        bytes_per_token=one_row.corpus_batch_bytes / longest,
        multiple=sharding.data_size(run.mesh),
        # On a mesh every bucket keeps its own program: the merged plan's larger batches
        # stalled XLA's in-process CPU collectives on a simulated 2 x 4 mesh (a rendezvous
        # timeout, reproducibly), which the unmerged plan never did.
        row_cost=corpus_row_cost(run.config) if run.mesh.devices.size == 1 else None,
    )
    return measured, budget


def compiled_summary(batches, measured: int | None, budget: int) -> str:
    """Return "; compiled corpus step X per batch of BxT (budget Y)" ("" when not reported)."""
    from generator.extract.corpus_budget import largest_shape
    from generator.models.memory import size_text

    if measured is None:
        return ""
    batch, bucket = largest_shape(batches)
    return (
        f"; compiled corpus step {size_text(measured)} per batch of {batch}x{bucket} tokens "
        f"(budget {size_text(budget)})"
    )


def note_time_estimate(run: ExtractRun, showcase_width: int) -> None:
    """Log (and tell the user) the estimated time and budget of each heavy step."""
    from generator.extract import estimate

    run.throughput = estimate.measured_throughput(run.card.dtype)
    run.estimates = heavy_steps(run, showcase_width)
    tell(run, f"{run.card.name}: {estimate.summary(run.estimates, run.throughput)}")


def heavy_steps(run: ExtractRun, showcase_width: int) -> list:
    """Return the budget and cost of the corpus, checkpoint, showcase, attribution and
    parameter-gradient passes."""
    from generator.attribution.objectives import HEAD_OBJECTIVES, default_task
    from generator.attribution.token_methods import DEFAULT_IG_STEPS
    from generator.extract.corpus_budget import corpus_row_cost
    from generator.extract.estimate import StepEstimate, forward_flops
    from generator.extract.head_budget import head_importance_step, token_attributions_flops

    config, card = run.config, run.card
    row_cost = corpus_row_cost(config)  # the reducers' work counted as the planner counts it
    corpus = sum(b.batch_size * row_cost(b.bucket) for b in run.batches)
    n_batches = len(run.batches)
    texts = f"{len(run.corpus)} texts in {n_batches} batch{'' if n_batches == 1 else 'es'}"
    steps = [StepEstimate("corpus_pass", texts, corpus)]
    if card.checkpoints and "representations" in run.analyses:
        n = len(card.checkpoints)
        steps.append(StepEstimate("checkpoint_passes", f"{n} checkpoints x {texts}", n * corpus))
    examples = len(run.showcase)
    showcase = forward_flops(config, examples, showcase_width)
    steps.append(StepEstimate("showcase_pass", f"{examples} examples", showcase))
    if "attributions" in run.analyses:
        lengths = run.showcase_tokens.lengths[run.showcase]
        ig = token_attributions_flops(config, lengths, showcase_width, DEFAULT_IG_STEPS)
        budget = f"{examples} examples x {DEFAULT_IG_STEPS} integrated-gradients steps"
        steps.append(StepEstimate("token_attributions", budget, ig))
        fidelity = (card.task or default_task(config.heads, run.seq2seq)) in HEAD_OBJECTIVES
        steps.append(
            head_importance_step(
                config, run.tokens, run.corpus, card.head_sample, fidelity=fidelity
            )
        )
    if "weights" in run.analyses and gradient_task(run)[1] is None:
        from generator.extract.gradients import gradient_estimate

        n = len(card.checkpoints)
        steps.append(gradient_estimate(run.params, config, run.tokens, run.corpus, n))
    return steps


def gradient_task(run: ExtractRun) -> tuple[str, str | None]:
    """Return the parameter gradients' task and why they cannot run (None: they can).

    Known once the corpus arrays are opened (`plan_corpus_pass`): the embedding loss needs the
    corpus embeddings, streamed only for the representations analysis.
    """
    from generator.attribution.objectives import EMBEDDING_TASKS, default_task, task_problem

    task = run.card.task or default_task(run.config.heads, run.seq2seq)
    problem = task_problem(task, run.config.heads, run.seq2seq)
    if problem is None and task in EMBEDDING_TASKS and "pooled_mean" not in run.streamed:
        problem = "the embedding loss needs the corpus embeddings of the representations analysis"
    return task, problem or run.gradient_memory_problem


def plan_showcase(run: ExtractRun) -> None:
    """Choose the showcase rows: the card's `showcase_texts` first, then round-robin."""
    card, corpus = run.card, run.corpus
    rows, extra = resolve_showcase_texts(
        card.showcase_texts, corpus.texts, has_targets=run.seq2seq and card.target_field is not None
    )
    run.showcase = choose_showcase(
        len(corpus), card.showcase, corpus.labels, corpus.splits, first=rows
    )
    run.showcase_tokens = showcase_tokens(run.tokens, run.tokenizer, extra)
    if card.showcase_texts:
        run.details["showcase"] = {"named": len(rows), "outside_corpus": len(extra)}
    if extra:
        run.writer.write_array("showcase/extra_texts", strings_array(extra), ("extra",))


def corpus_pass(run: ExtractRun) -> None:
    """Stream the corpus through the corpus step; store the MLP-neuron statistics."""
    from generator.extract import neurons

    stats = run.neuron_stats
    run.stream(
        run.params,
        run.streamed,
        summed=run.summed,
        desc=f"{run.card.name}: corpus",
        on_batch=stats.add if stats else None,
    )
    run.neuron_ids = stats.write(run.writer) if stats else None
    run.details["neurons"] = stats.details() if stats else neurons.skipped(run.card)


def start_analysis_jobs(run: ExtractRun) -> None:
    """Start the analysis's slowest jobs beside the rest of the extraction (`build` only: inside
    `analyze.prefetch.prefetching()`), only those the analysis would run in workers anyway.

    First the weights page's token-embedding maps (the longest single t-SNE fits), when the
    weight statistics are done: beside that thread their worker slowed it (bert-base: 35 s ->
    67 s), and its memory peak then met the attributions' (+0.3 GB); otherwise the analysis
    makes them, as before. Then the card model's layer probes and representation maps. The
    inputs are those the analysis will read back: the stored embedding samples, the pooled
    vectors (float32 views of the stored arrays, which the jobs widen to float64 exactly as the
    analysis does, so waiting jobs hold no copy of them) and the labels and splits as stored
    strings.
    """
    from generator.analyze.prefetch import active_prefetch
    from generator.extract.processes import is_primary_process

    prefetch = active_prefetch()
    if prefetch is None or not is_primary_process():
        return
    weights_done = run.weights_job is None or run.weights_job.done()
    if "weights" in run.analyses and weights_done:
        submit_embedding_maps(run, prefetch)
    if "representations" in run.analyses:
        submit_representation_maps(run, prefetch)


def submit_embedding_maps(run: ExtractRun, prefetch) -> None:
    """Hand the token-embedding maps of the stored samples to `prefetch` (the weights page)."""
    from generator.analyze.projections import worth_workers
    from generator.analyze.weights import EMBEDDING_SAMPLES, embedding_projection

    geometry = run.details.get("weights", {}).get("embeddings")
    if not geometry:
        return
    samples = [run.writer.read_array(n) for n in EMBEDDING_SAMPLES if n in run.writer.arrays]
    seed = geometry["settings"]["seed"]
    prefetch.submit(embedding_projection, [(x, seed) for x in samples if worth_workers(len(x))])


def submit_representation_maps(run: ExtractRun, prefetch) -> None:
    """Hand the layer probes and t-SNE maps of the card model's pooled vectors to `prefetch`."""
    from generator.analyze.projections import reference_jobs, tsne, worth_workers
    from generator.analyze.representations import ProbeSetting, layer_scores
    from generator.artifacts import widen_bfloat16

    pooled = [
        np.asarray(widen_bfloat16(stored) if run.card.store_dtype == "bfloat16" else stored)
        for name, stored in run.streamed.items()
        if name.startswith("pooled_")
    ]  # each [text, layer, d_model]
    layers = [x[:, layer] for x in pooled for layer in range(x.shape[1])]
    if not worth_workers(sum(len(x) for x in layers)):  # the analysis runs them in-process
        return

    def stored_strings(values):
        return None if values is None else np.asarray(strings_array(values)).astype(str)

    corpus = run.corpus
    setting = ProbeSetting.of(stored_strings(corpus.labels), stored_strings(corpus.splits))
    if setting is not None:
        prefetch.submit(layer_scores, [job for x in pooled for job in setting.jobs(x)])
    prefetch.submit(tsne, reference_jobs(layers))


def checkpoint_passes(run: ExtractRun) -> None:
    """Run the corpus step with the weights of each further checkpoint of the card."""
    from generator.extract.checkpoints import extract_checkpoints

    if run.card.checkpoints and "representations" not in run.analyses:
        run.warn(
            "the card's checkpoints are compared on the representations page, which its "
            "`analyses` leaves out: add 'representations' to `analyses` or remove `checkpoints`"
        )
        run.details["checkpoints"] = []
        return
    run.details["checkpoints"] = extract_checkpoints(run)


def write_corpus_arrays(run: ExtractRun) -> None:
    """Store the corpus's lengths, texts, labels and splits."""
    writer, corpus, tokens = run.writer, run.corpus, run.tokens
    writer.write_array("corpus/token_lengths", tokens.lengths, ("text",))
    writer.write_array("corpus/full_lengths", tokens.full_lengths, ("text",))
    writer.write_array("corpus/texts", strings_array(corpus.texts), ("text",))
    if corpus.labels is not None:
        writer.write_array("corpus/labels", strings_array(corpus.labels), ("text",))
    if corpus.splits is not None:
        writer.write_array("corpus/splits", strings_array(corpus.splits), ("text",))


def showcase_pass(run: ExtractRun) -> None:
    """Capture the showcase's full probes (encoder-decoders: decode their targets first)."""
    if not run.seq2seq:
        run.width = capture_showcase(run)
        return
    from generator.extract.seq2seq import capture_seq2seq_showcase

    run.width, run.details["seq2seq"], run.decoder = capture_seq2seq_showcase(run)


def generation(run: ExtractRun) -> None:
    """Greedy time steps of the showcase for the attention page (see extract/generation.py)."""
    from generator.extract.generation import capture_generation

    capture_generation(run)


def attributions(run: ExtractRun) -> None:
    """Token attributions, head importance and the logit lens (unless `analyses` leaves them out)."""
    if "attributions" not in run.analyses:
        return
    from generator.extract.attribution_capture import capture_attributions

    rows = [run.showcase_tokens.ids[r] for r in run.showcase]
    ids, mask = pad_rows(rows, run.width, len(run.showcase), run.pad_id)
    run.details["attribution"] = capture_attributions(
        run.card,
        run.loaded,
        tokenizer=run.tokenizer,
        tokens=run.tokens,
        corpus=run.corpus,
        pooled_last=pooled_last(run),
        writer=run.writer,
        pad_id=run.pad_id,
        showcase=(run.showcase, ids, mask, *run.decoder),
        progress=run.progress,
    )


def pooled_last(run: ExtractRun) -> np.ndarray | None:
    """Return the corpus's last-layer mean-pooled embeddings [text, d_model] (None: not kept)."""
    from generator.artifacts import widen_bfloat16

    if "pooled_mean" not in run.streamed:
        return None
    pooled = np.asarray(run.streamed["pooled_mean"][:, -1])
    return widen_bfloat16(pooled) if run.card.store_dtype == "bfloat16" else pooled


def parameter_gradients(run: ExtractRun) -> None:
    """Gradient norms of the task loss per parameter tensor (the weights page's section)."""
    if "weights" not in run.analyses:
        return
    from generator.extract.attribution_capture import attribution_context
    from generator.extract.gradients import LOSSES, capture_gradients
    from generator.models.device_memory import device_available

    card = run.card
    check_gradient_memory(run, device_available())
    task, problem = gradient_task(run)
    references = pooled_last(run)
    if problem is not None:
        run.details["gradients"] = {"task": task, "loss": LOSSES.get(task), "skipped": problem}
        return
    context = attribution_context(
        card,
        run.loaded,
        task,
        tokenizer=run.tokenizer,
        tokens=run.tokens,
        corpus=run.corpus,
        pooled_last=references,
        pad_id=run.pad_id,
        writer=run.writer,
    )
    run.details["gradients"] = capture_gradients(
        card, run.loaded, context=context, writer=run.writer, progress=run.progress
    )


def describe_corpus(run: ExtractRun) -> None:
    """Record the corpus, tokenizer, attention and batching facts of the run."""
    from generator.extract.head_metrics import METRICS as HEAD_METRICS
    from generator.extract.head_metrics import SPARSITY_THRESHOLD, is_causal

    card, corpus, tokens = run.card, run.corpus, run.tokens
    run.details["corpus"] = {
        "source": card.corpus,
        "sha256": corpus.sha256,
        "n_texts": len(corpus),
        "text_field": card.text_field,
        "label_field": card.label_field,
        "split_field": card.split_field,
        "label_counts": corpus.label_counts(),
        "max_length": run.max_length,
        "n_truncated": tokens.truncated,
    }
    run.details["tokenizer"] = {
        "class": type(run.tokenizer).__name__,
        "vocab_size": int(len(run.tokenizer)),
        "pad_token_id": int(run.pad_id),
    }
    run.details["attention"] = {
        "causal": is_causal(run.config),
        "special_token_ids": run.specials,
        "head_metrics": list(HEAD_METRICS) if "head_metrics" in run.streamed else [],
        "sparsity_threshold": SPARSITY_THRESHOLD,
    }
    run.details["extraction"] = {
        "buckets": sorted({(b.bucket, b.batch_size) for b in run.batches}),
        "batches": len(run.batches),
        "showcase_length": run.width,
    }


# The extraction, in order: the weights always, then the corpus steps when there is a corpus.
WEIGHT_STEPS = (describe_model, write_weights)
CORPUS_STEPS = (
    tokenize,
    plan_corpus_pass,
    corpus_pass,
    start_analysis_jobs,
    checkpoint_passes,
    write_corpus_arrays,
    showcase_pass,
    generation,
    attributions,
    parameter_gradients,
    collect_weights,
    describe_corpus,
)


def capture_showcase(run: ExtractRun) -> int:
    """Capture and store the full probes of the showcase of an encoder-only or decoder model."""
    from tqdm import tqdm

    card, tokens, showcase, writer = run.card, run.showcase_tokens, run.showcase, run.writer
    tokenizer, neuron_ids, pad_id, mesh = run.tokenizer, run.neuron_ids, run.pad_id, run.mesh
    max_length = tokens.max_length
    width = bucket_length(int(max(tokens.lengths[showcase])), max_length)
    ids, mask = showcase_batch(tokens, showcase, width, pad_id, mesh)
    with tqdm(total=1, desc=f"{card.name}: showcase", disable=not run.progress) as bar:
        placed = sharding.place_batch(mesh, ids, mask)
        captured = sharding.fetch(run.showcase_step(run.params, *placed, neuron_ids))
        bar.update()
    n = len(showcase)
    ids, mask = ids[:n], mask[:n]
    writer.write_array("showcase/index", showcase, ("example",))
    writer.write_array("showcase/input_ids", ids, ("example", "token"))
    writer.write_array("showcase/attention_mask", mask, ("example", "token"))
    writer.write_array(
        "showcase/special_mask", special_mask(ids, mask, run.specials), ("example", "token")
    )
    writer.write_array("showcase/tokens", token_rows(tokenizer, ids, mask), ("example", "token"))
    writer.write_array(
        "showcase/hidden_states",
        captured["hidden_states"][:n],
        ("example", "layer", "token", "d_model"),
    )
    writer.write_array(
        "showcase/attentions",
        captured["attentions"][:n],
        ("example", "layer", "head", "query", "key"),
    )
    if "attention_scores" in captured:  # float32: see steps.SHOWCASE_FLOAT32
        writer.write_array(
            "showcase/attention_scores",
            captured["attention_scores"][:n],
            ("example", "layer", "head", "query", "key"),
        )
    for name in ("queries", "keys", "values"):
        writer.write_array(
            f"showcase/{name}", captured[name][:n], ("example", "layer", "head", "token", "d_head")
        )
    for name in ("top_logits", "top_token_ids"):
        if name in captured:
            writer.write_array(f"showcase/{name}", captured[name][:n], ("example", "token", "rank"))
    if "logits" in captured:
        writer.write_array(
            "showcase/logits", captured["logits"][:n], LOGIT_AXES[run.config.primary_head]
        )
    if "mlp_top" in captured:
        writer.write_array(
            "showcase/mlp_top", captured["mlp_top"][:n], ("example", "layer", "token", "neuron")
        )
        writer.write_array("showcase/mlp_top_neurons", neuron_ids, ("layer", "neuron"))
    return width
