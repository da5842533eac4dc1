"""Stored attention artifacts of the tiny build: normalisation, padding, and the corpus-wide
head metrics of the showcase rows against a numpy re-computation from showcase/attentions."""

import numpy as np
import pytest
from head_metrics_reference import NAMES, reference_metrics

from generator.analyze.run import analyze
from generator.artifacts import open_artifacts
from generator.extract.head_metrics import METRICS

THRESHOLD_METRICS = ("sparsity", "nonzero_mean", "nonzero_max")


@pytest.fixture(scope="module")
def tiny(tiny_build):
    _, _, artifacts_root = tiny_build
    return open_artifacts(artifacts_root / "tiny-bert")


def test_attention_rows_sum_to_one_and_padding_gets_nothing(tiny):
    att = np.asarray(tiny.array("showcase/attentions"), dtype=np.float64)
    mask = np.asarray(tiny.array("showcase/attention_mask")) > 0
    assert (mask.sum(1) < mask.shape[1]).any(), "the showcase should include a padded example"
    for example in range(att.shape[0]):
        n = int(mask[example].sum())
        np.testing.assert_allclose(att[example, :, :, :n, :n].sum(-1), 1.0, atol=1e-5)
        assert np.all(att[example, :, :, :n, n:] == 0.0)  # padded keys: exactly zero weight
    assert np.all(att >= 0.0)


def test_head_metrics_array_is_float32_with_named_axes(tiny):
    entry = tiny.manifest["arrays"]["corpus/head_metrics"]
    config = tiny.manifest["model"]["config"]
    assert entry["dtype"] == "float32"
    assert entry["axes"] == ["text", "layer", "head", "metric"]
    assert entry["shape"] == [
        tiny.manifest["corpus"]["n_texts"],
        config["n_layers"],
        config["n_heads"],
        len(METRICS),
    ]
    info = tiny.manifest["attention"]
    assert info["head_metrics"] == list(METRICS) and info["causal"] is False
    assert info["sparsity_threshold"] == 0.01
    assert info["special_token_ids"] == [2, 3, 4]  # [CLS], [SEP], [MASK]: not [UNK], not [PAD]


def test_special_mask_marks_cls_and_sep_only(tiny):
    special = np.asarray(tiny.array("showcase/special_mask"))
    ids = np.asarray(tiny.array("showcase/input_ids"))
    mask = np.asarray(tiny.array("showcase/attention_mask"))
    for example in range(ids.shape[0]):
        n = int(mask[example].sum())
        assert special[example, 0] == 1 and special[example, n - 1] == 1  # [CLS] ... [SEP]
        assert special[example, n:].sum() == 0  # padding is never special
        assert set(ids[example][special[example] > 0].tolist()) <= {2, 3, 4}


def test_corpus_metrics_of_showcase_rows_equal_numpy_metrics(tiny):
    rows = np.asarray(tiny.array("showcase/index"))
    inside = rows < len(tiny.array("corpus/texts"))  # extra showcase texts: no corpus rows
    rows = rows[inside]
    att = np.asarray(tiny.array("showcase/attentions"), dtype=np.float64)[inside]
    mask = np.asarray(tiny.array("showcase/attention_mask"))[inside]
    special = np.asarray(tiny.array("showcase/special_mask"))[inside] > 0
    want = reference_metrics(att, mask, mask, special, causal=False)
    got = np.asarray(tiny.array("corpus/head_metrics"))[rows]
    n = mask.sum(1).astype(np.float64)[:, None, None]  # tokens per example
    # Corpus and showcase batches pad to different widths, so a weight within float rounding
    # of the threshold could fall on the other side: allow one such flip for one query.
    flip = {"nonzero_mean": 1 / n, "nonzero_max": 1.0 + 0 * n, "sparsity": 1 / n**2}
    for i, name in enumerate(NAMES):
        if name in THRESHOLD_METRICS:
            assert np.all(np.abs(got[..., i] - want[..., i]) <= flip[name] + 1e-6), name
        else:
            np.testing.assert_allclose(
                got[..., i], want[..., i], rtol=1e-4, atol=1e-5, err_msg=name
            )


def test_head_tables_aggregate_the_corpus_array(tiny):
    tables = analyze(tiny)  # the stored tables (another test may have removed them: recomputed)
    rows = tables["head_metrics"]
    per_text = np.asarray(tiny.array("corpus/head_metrics"), dtype=np.float64)
    config = tiny.manifest["model"]["config"]
    assert len(rows) == config["n_layers"] * config["n_heads"]
    for row in rows:
        values = per_text[:, row["layer"], row["head"]]
        assert row["entropy"] == pytest.approx(np.nanmean(values[:, 0]), abs=1e-4)
        assert row["nonzero_max"] == np.nanmax(values[:, METRICS.index("nonzero_max")])
    assert len(tables["head_clusters"]) == len(rows)
    qk = tables["qk_geometry"]
    assert len(qk["heads"]) == len(rows)
    assert qk["total_tokens"] == int(np.asarray(tiny.array("showcase/attention_mask")).sum())
