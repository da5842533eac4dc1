"""Analysis tables: parameter grouping and corpus summaries against hand-computed values."""

import numpy as np

from generator.analyze.corpus_summary import corpus_facts, label_counts, length_histogram
from generator.analyze.parameters import (
    component_kind,
    counts_by_component,
    layer_of,
    parameter_table,
)

INVENTORY = [
    {"name": "embeddings.word_embeddings.embedding", "shape": [10, 4], "count": 40},
    {"name": "embeddings.LayerNorm.scale", "shape": [4], "count": 4},
    {"name": "encoder.layer.0.attention.self.query.kernel", "shape": [4, 4], "count": 16},
    {"name": "encoder.layer.0.attention.output.LayerNorm.bias", "shape": [4], "count": 4},
    {"name": "encoder.layer.0.intermediate.dense.kernel", "shape": [4, 8], "count": 32},
    {"name": "encoder.layer.1.output.dense.kernel", "shape": [8, 4], "count": 32},
    {"name": "pooler.dense.bias", "shape": [4], "count": 4},
]


def test_component_kinds_and_layers():
    kinds = [component_kind(row["name"]) for row in INVENTORY]
    # the embedding LayerNorm is a norm, as the weights page counts it
    assert kinds == ["embeddings", "norms", "attention", "norms", "mlp", "mlp", "pooler"]
    assert [layer_of(row["name"]) for row in INVENTORY] == [None, None, 0, 0, 0, 1, None]


def test_decoder_and_head_names_are_classified():
    names = {
        "wte.embedding": "embeddings",
        "h.3.attn.c_attn.kernel": "attention",
        "h.3.mlp.c_fc.kernel": "mlp",
        "h.3.ln_1.scale": "norms",
        "layers.2.self_attn.q_proj.kernel": "attention",
        "layers.2.mlp.gate_proj.kernel": "mlp",
        "layers.2.post_attention_layernorm.weight": "norms",
        "norm.weight": "norms",
        "lm_head.out.kernel": "head",
        "score.out.kernel": "head",
        "mlm_head.norm.scale": "head",
        "classifier.dense.kernel": "head",
    }
    assert {name: component_kind(name) for name in names} == names
    assert layer_of("h.3.attn.c_attn.kernel") == 3 and layer_of("layers.2.mlp.up_proj.kernel") == 2


def test_parameter_table_shares_sum_to_one_and_each_tensor_once():
    table = parameter_table(INVENTORY)
    assert len(table) == len(INVENTORY)
    assert abs(sum(row["share"] for row in table) - 1.0) < 1e-12


def test_counts_by_component_preserve_total():
    rows = counts_by_component(INVENTORY)
    assert sum(r["count"] for r in rows) == sum(r["count"] for r in INVENTORY)
    assert [r["block"] for r in rows][0] == "embeddings"
    assert {"block": "layer 0", "kind": "attention", "count": 16, "order": 1} in rows
    assert rows[-1]["block"] == "pooler"
    # ... drawn in the embeddings block, before the layers
    assert {"block": "embeddings", "kind": "norms", "count": 4, "order": 0} in rows


def test_length_histogram_counts_every_text():
    lengths = np.array([3, 5, 5, 9, 12])
    rows = length_histogram(
        lengths, np.array(["train", "train", "validation", "train", "train"]), 16, n_bins=4
    )
    assert sum(r["texts"] for r in rows) == 5
    assert all(r["end"] - r["start"] == 3 for r in rows)
    assert {"start": 3, "end": 6, "split": "train", "texts": 2} in rows


def test_label_counts_and_facts():
    rows = label_counts(np.array(["b", "a", "a"]), None)
    assert rows == [
        {"label": "a", "split": "all", "texts": 2},
        {"label": "b", "split": "all", "texts": 1},
    ]
    facts = corpus_facts(np.array([4, 8, 8]), np.array([4, 8, 20]), max_length=8)
    assert facts["truncated"] == 1 and facts["tokens"] == 20 and facts["max_length_seen"] == 20


def test_analyses_run_with_one_blas_thread(tmp_path, monkeypatch):
    """`analyze` runs every analysis under a one-thread BLAS limit (same tables, no idle threads)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from generator.analyze import run
    from generator.artifacts import Artifacts

    seen = []

    def recording(artifacts):
        seen.append(max(pool["num_threads"] for pool in threadpool_info()))
        return {}

    monkeypatch.setattr(run, "ANALYSES", {name: recording for name in run.ANALYSES})
    manifest = {"input_hash": "0" * 64, "analyses": ["parameters", "corpus", "heads"]}
    with threadpool_limits(limits=2):  # what the process has outside `analyze`
        run.analyze(Artifacts(tmp_path, manifest), force=True)
        after = max(pool["num_threads"] for pool in threadpool_info())
    assert seen == [1, 1, 1]
    assert after == 2  # the limit ends with the stage
    assert (tmp_path / "analyses" / "index.json").is_file()
