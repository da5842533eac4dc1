"""The declared artifact arrays and analysis tables: name (or pattern), axes, dtype, producer.

`ArtifactWriter` refuses an array that is not declared here, or one with other axes or another
dtype; `Artifacts.array` refuses to read an undeclared name; `analyze` refuses a table not
declared for the analysis that made it. tests/test_docs_contract.py checks that this module
and docs/artifacts.md list the same arrays and tables.

To add an array: one `Array(...)` line in ARRAYS (and a row in an `| array | axes |` table of
docs/artifacts.md). To add a table: one `Table(...)` line in TABLES (and a mention in the docs).

Names: `*` or an UPPERCASE word (`NAME`, `ROLE`) stands for any text without `/`.
Axes: the named axes, space-separated; `|` separates the alternatives when the model decides
(e.g. a classifier's logits). Dtypes: `float32`, `float64`, `int32`, `int64`, `str`
(fixed-width unicode), `int` (int32 or int64), and `store` (the card's `store_dtype`: float32,
float16 or bfloat16).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

STORE_DTYPES = ("float32", "float16", "bfloat16")
WHERE = "generator/schema.py"


@dataclass(frozen=True)
class Array:
    """One declared array (or family of arrays): name pattern, axes, dtype, producing module."""

    pattern: str
    axes: str  # "text layer d_model"; alternatives separated by " | "
    dtype: str
    producer: str  # the module under generator/extract/ that writes it

    @cached_property
    def regex(self) -> re.Pattern:
        """The compiled pattern: `*` and UPPERCASE words match any text without `/`."""
        return name_regex(self.pattern)

    @property
    def alternatives(self) -> tuple[tuple[str, ...], ...]:
        """The accepted axes tuples."""
        return tuple(tuple(option.split()) for option in self.axes.split("|"))

    def accepts_dtype(self, dtype: str) -> bool:
        """Whether an array of numpy dtype name `dtype` fits the declaration."""
        if self.dtype == "store":
            return dtype in STORE_DTYPES
        if self.dtype == "str":
            return dtype.startswith("str")
        if self.dtype == "int":
            return dtype in ("int32", "int64")
        return dtype == self.dtype


@dataclass(frozen=True)
class Table:
    """One declared analysis table: its name and the analysis (analysis_names.py) that makes it."""

    name: str
    analysis: str


def name_regex(pattern: str) -> re.Pattern:
    """Compile a declared name: `*` and UPPERCASE words match any text without `/`."""
    parts = re.split(r"(\*|[A-Z]+)", pattern)
    return re.compile("".join("[^/]+" if p == "*" or p.isupper() else re.escape(p) for p in parts))


_A, _C, _S = "attribution_capture", "capture", "seq2seq"
_ACT, _GEO, _W = "activation_stats", "embedding_geometry", "weights"
PROBE = "example layer head token d_head"
DECODER_PROBE = "example layer head target d_head"
ATTENTION = "example layer head query key"

ARRAYS = (
    # corpus/: one row per text (reducers.py, activation_stats.py, capture.py)
    Array("corpus/pooled_*", "text layer d_model", "store", "reducers"),
    Array("corpus/unit_token_sum", "text layer d_model", "float32", "reducers"),
    Array("corpus/head_metrics", "text layer head metric", "float32", "reducers"),
    Array("corpus/score_hist", "layer head bin", "float64", "reducers"),
    Array("corpus/act_hist_hidden", "text layer bin", "float32", _ACT),
    Array("corpus/act_hist_queries", "text layer bin", "float32", _ACT),
    Array("corpus/act_hist_keys", "text layer bin", "float32", _ACT),
    Array("corpus/act_hist_values", "text layer bin", "float32", _ACT),
    Array("corpus/act_hist_mlp", "text layer bin", "float32", _ACT),
    Array("corpus/residual_norm_hist", "text layer bin", "float32", _ACT),
    Array("corpus/residual_norm_sum", "text layer", "float32", _ACT),
    Array("corpus/act_extreme", "text layer d_model", "float32", _ACT),
    Array("corpus/act_extreme_pos", "text layer d_model", "float32", _ACT),
    Array("corpus/act_edges", "edge", "float64", _ACT),
    Array("corpus/norm_edges", "edge", "float64", _ACT),
    Array("corpus/input_ids", "text token", "int32", _ACT),
    Array("corpus/vocab_ids", "entry", "int32", _ACT),
    Array("corpus/vocab_tokens", "entry", "str", _ACT),
    Array("corpus/token_lengths", "text", "int32", _C),
    Array("corpus/full_lengths", "text", "int32", _C),
    Array("corpus/texts", "text", "str", _C),
    Array("corpus/labels", "text", "str", _C),
    Array("corpus/splits", "text", "str", _C),
    Array("checkpoints/NAME/corpus/pooled_*", "text layer d_model", "store", "checkpoints"),
    Array("checkpoints/NAME/corpus/unit_token_sum", "text layer d_model", "float32", "checkpoints"),
    # showcase/: full captures of the showcase examples (capture.py; encoder-decoders seq2seq.py)
    Array("showcase/index", "example", "int", _C),
    Array("showcase/extra_texts", "extra", "str", _C),
    Array("showcase/input_ids", "example token", "int32", _C),
    Array("showcase/attention_mask", "example token", "int32", _C),
    Array("showcase/special_mask", "example token", "int32", _C),
    Array("showcase/tokens", "example token", "str", _C),
    Array("showcase/hidden_states", "example layer token d_model", "store", _C),
    Array("showcase/attentions", ATTENTION, "store", _C),
    Array("showcase/queries", PROBE, "store", _C),
    Array("showcase/keys", PROBE, "store", _C),
    Array("showcase/values", PROBE, "store", _C),
    Array("showcase/attention_scores", ATTENTION, "float32", _C),
    Array("showcase/top_logits", "example token rank", "store", _C),
    Array("showcase/top_token_ids", "example token rank", "int32", _C),
    Array(
        "showcase/logits",
        "example label | example token label | example token | example target vocab",
        "store",
        _C,
    ),
    Array("showcase/mlp_top", "example layer token neuron", "store", _C),
    Array("showcase/mlp_top_neurons", "layer neuron", "int32", _C),
    Array("showcase/decoder_input_ids", "example target", "int32", _S),
    Array("showcase/decoder_attention_mask", "example target", "int32", _S),
    Array("showcase/decoder_tokens", "example target", "str", _S),
    Array("showcase/target_ids", "example target", "int32", _S),
    Array("showcase/target_texts", "example", "str", _S),
    Array("showcase/encoder_hidden_states", "example layer token d_model", "store", _S),
    Array("showcase/encoder_attentions", ATTENTION, "store", _S),
    Array("showcase/encoder_queries", PROBE, "store", _S),
    Array("showcase/encoder_keys", PROBE, "store", _S),
    Array("showcase/encoder_values", PROBE, "store", _S),
    Array("showcase/decoder_hidden_states", "example layer target d_model", "store", _S),
    Array("showcase/decoder_attentions", ATTENTION, "store", _S),
    Array("showcase/decoder_queries", DECODER_PROBE, "store", _S),
    Array("showcase/decoder_keys", DECODER_PROBE, "store", _S),
    Array("showcase/decoder_values", DECODER_PROBE, "store", _S),
    Array("showcase/cross_attentions", ATTENTION, "store", _S),
    Array("showcase/cross_queries", DECODER_PROBE, "store", _S),
    Array("showcase/cross_keys", PROBE, "store", _S),
    Array("showcase/cross_values", PROBE, "store", _S),
    Array("showcase/encoder_attention_scores", ATTENTION, "float32", _S),
    Array("showcase/decoder_attention_scores", ATTENTION, "float32", _S),
    Array("showcase/cross_attention_scores", ATTENTION, "float32", _S),
    Array("showcase/decoder_head_metrics", "example layer head metric", "float32", _S),
    Array("showcase/cross_head_metrics", "example layer head metric", "float32", _S),
    # weights/: weight statistics (weights.py, embedding_geometry.py)
    Array("weights/histograms", "tensor bin", "float32", _W),
    Array("weights/singular_values", "matrix rank", "float32", _W),
    Array("weights/head_singular_values", "head_block rank", "float32", _W),
    Array("weights/heatmaps", "matrix row col", "float32", _W),
    Array("weights/head_gram_ROLE", "head_vector head_vector", "float64", _W),
    Array("weights/embedding_sample", "sample d_model", "float32", _GEO),
    Array("weights/embedding_sample_ids", "sample", "int32", _GEO),
    Array("weights/embedding_sample_tokens", "sample", "str", _GEO),
    Array("weights/embedding_sample_counts", "sample", "int32", _GEO),
    Array("weights/embedding_norms", "vocab", "float32", _GEO),
    Array("weights/output_embedding_sample", "sample d_model", "float32", _GEO),
    Array("weights/output_embedding_norms", "vocab", "float32", _GEO),
    Array("weights/embedding_io_cosine", "vocab", "float32", _GEO),
    # gradients/: parameter gradients of the task loss over a corpus sample (gradients.py)
    Array("gradients/sample_index", "text", "int", "gradients"),
    Array("gradients/example_norms", "text", "float32", "gradients"),
    Array("gradients/grad_norms", "tensor", "float32", "gradients"),
    Array("gradients/weight_norms", "tensor", "float32", "gradients"),
    Array("checkpoints/NAME/gradients/example_norms", "text", "float32", "gradients"),
    Array("checkpoints/NAME/gradients/grad_norms", "tensor", "float32", "gradients"),
    Array("checkpoints/NAME/gradients/weight_norms", "tensor", "float32", "gradients"),
    # generation/: greedy time steps of the showcase prompts (generation.py)
    Array("generation/length", "example", "int", "generation"),
    Array("generation/token_ids", "example step", "int", "generation"),
    Array("generation/tokens", "example step", "str", "generation"),
    Array("generation/top_ids", "example step k", "int", "generation"),
    Array("generation/top_probs", "example step k", "float32", "generation"),
    Array("generation/top_tokens", "example step k", "str", "generation"),
    Array("generation/attentions", "example step layer head key", "store", "generation"),
    Array("generation/cross_attentions", "example step layer head token", "store", "generation"),
    Array("generation/lens_top_ids", "example step layer k", "int", "generation"),
    Array("generation/lens_top_probs", "example step layer k", "float32", "generation"),
    Array("generation/lens_top_tokens", "example step layer k", "str", "generation"),
    # neurons/: MLP-neuron statistics (neurons.py)
    Array("neurons/mean", "layer d_mlp", "float32", "neurons"),
    Array("neurons/max", "layer d_mlp", "float32", "neurons"),
    Array("neurons/min", "layer d_mlp", "float32", "neurons"),
    Array("neurons/positive", "layer d_mlp", "float32", "neurons"),
    Array("neurons/ranked", "layer rank", "int32", "neurons"),
    Array("neurons/top_values", "layer rank k", "float32", "neurons"),
    Array("neurons/top_text", "layer rank k", "int32", "neurons"),
    Array("neurons/top_position", "layer rank k", "int32", "neurons"),
    # attribution/, heads/, lens/: attributions, head importance, logit lens
    Array("attribution/objective", "example", "float32", _A),
    Array("attribution/baseline_objective", "example", "float32", _A),
    Array("attribution/ig_error", "example", "float32", _A),
    Array("attribution/target_position", "example", "int32", _A),
    Array("attribution/target_id", "example", "int32", _A),
    Array("attribution/target_token", "example", "str", _A),
    Array("attribution/grad_norm", "example token", "float32", _A),
    Array("attribution/grad_input", "example token", "float32", _A),
    Array("attribution/integrated_gradients", "example token", "float32", _A),
    Array("heads/ablation", "layer head", "float32", _A),
    Array("heads/gradient", "layer head", "float32", _A),
    Array("heads/ablation_per_text", "text layer head", "float32", _A),
    Array("heads/gradient_per_text", "text layer head", "float32", _A),
    Array("heads/pruning_fraction", "fraction", "float32", _A),
    Array("heads/pruning_by_importance", "fraction", "float32", _A),
    Array("heads/pruning_random", "fraction", "float32", _A),
    Array("heads/sample_index", "text", "int", _A),
    Array("lens/top_ids", "example layer token k | example layer target k", "int32", _A),
    Array("lens/top_probs", "example layer token k | example layer target k", "float32", _A),
    Array("lens/top_tokens", "example layer token k | example layer target k", "str", _A),
    Array("lens/final_rank", "example layer token | example layer target", "int32", _A),
    Array("lens/final_prob", "example layer token | example layer target", "float32", _A),
)

TABLES = (
    Table("parameter_table", "parameters"),
    Table("parameter_counts", "parameters"),
    Table("corpus_facts", "corpus"),
    Table("length_histogram", "corpus"),
    Table("label_counts", "corpus"),
    Table("weights_tensors", "weights"),
    Table("weights_by_component", "weights"),
    Table("weights_by_block", "weights"),
    Table("weights_shared_blocks", "weights"),
    Table("weights_histograms", "weights"),
    Table("weights_vector_bands", "weights"),
    Table("weights_spectra", "weights"),
    Table("weights_matrices", "weights"),
    Table("weights_singular_values", "weights"),
    Table("weights_head_singular_values", "weights"),
    Table("weights_heads", "weights"),
    Table("weights_head_projection", "weights"),
    Table("weights_embeddings", "weights"),
    Table("weights_output_embeddings", "weights"),
    Table("weights_embedding_norms", "weights"),
    Table("parameter_gradients", "weights"),
    Table("gradient_views", "weights"),
    Table("gradient_summary", "weights"),
    Table("activation_quantiles", "activations"),
    Table("activation_histograms", "activations"),
    Table("activation_residual_norms", "activations"),
    Table("activation_outlier_profile", "activations"),
    Table("activation_outliers", "activations"),
    Table("activation_dead_dimensions", "activations"),
    Table("activation_facts", "activations"),
    Table("activation_score_histograms", "activations"),
    Table("neuron_top", "neurons"),
    Table("neuron_layers", "neurons"),
    Table("neuron_facts", "neurons"),
    Table("attribution_tokens", "attributions"),
    Table("attribution_examples", "attributions"),
    Table("head_importance", "attributions"),
    Table("head_importance_facts", "attributions"),
    Table("pruning_curve", "attributions"),
    Table("logit_lens", "attributions"),
    Table("head_metrics", "heads"),
    Table("head_metrics_decoder", "heads"),
    Table("head_metrics_cross", "heads"),
    Table("head_layer_summary", "heads"),
    Table("head_clusters", "heads"),
    Table("head_cluster_info", "heads"),
    Table("qk_geometry", "qk_geometry"),
    Table("representation_summary", "representations"),
    Table("representation_separability", "representations"),
    Table("representation_projections", "representations"),
    Table("representation_cka", "representations"),
    Table("representation_cka_to_reference", "representations"),
    Table("representation_anisotropy", "representations"),
    Table("representation_tokens", "representations"),
    Table("representation_predictions", "representations"),
    Table("representation_neighbours", "representations"),
)


def declared_array(name: str) -> Array:
    """Return the declaration of array `name`; a ValueError says where to add a missing one."""
    for array in ARRAYS:
        if array.regex.fullmatch(name):
            return array
    raise ValueError(
        f"array '{name}' is not declared: add an Array(...) line for it to ARRAYS in {WHERE} "
        "(name, axes, dtype, producer) and a row to docs/artifacts.md"
    )


def check_array(name: str, axes: tuple[str, ...], dtype: str) -> None:
    """Refuse an array that is undeclared or has other axes or another dtype than declared."""
    declared = declared_array(name)
    if tuple(axes) not in declared.alternatives:
        raise ValueError(
            f"array '{name}' has axes {list(axes)} but {WHERE} declares "
            f"'{declared.axes}' for '{declared.pattern}'"
        )
    if not declared.accepts_dtype(dtype):
        raise ValueError(
            f"array '{name}' has dtype {dtype} but {WHERE} declares "
            f"{declared.dtype} for '{declared.pattern}'"
        )


def check_tables(analysis: str, names) -> None:
    """Refuse tables that `analysis` made but that are not declared for it in TABLES."""
    declared = {table.name for table in TABLES if table.analysis == analysis}
    extra = sorted(set(names) - declared)
    if extra:
        raise ValueError(
            f"analysis '{analysis}' made undeclared tables {extra}: add a Table(...) line for "
            f"each to TABLES in {WHERE} and document it in docs/artifacts.md"
        )
