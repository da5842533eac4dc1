"""Head metrics of an encoder-decoder (issue #14, item 5): the encoder's over the corpus, the
decoder self-attention's and the cross-attention's over the showcase, each against the plain
numpy re-computation (tests/head_metrics_reference.py) from the stored attention maps."""

from __future__ import annotations

import numpy as np
import pytest
from head_metrics_reference import NAMES, reference_metrics

from generator.analyze.heads import aggregate_texts
from generator.artifacts import open_artifacts
from generator.extract.head_metrics import CROSS_UNDEFINED, METRICS

THRESHOLD_METRICS = ("sparsity", "nonzero_mean", "nonzero_max")
MEASURED: dict[str, float] = {}


@pytest.fixture(scope="module")
def t5(t5_build):
    _, _, artifacts_root = t5_build
    return open_artifacts(artifacts_root / "tiny-t5")


def specials(artifacts, prefix: str) -> np.ndarray:
    """[example, token] special-token mask from the stored ids and the manifest's special ids."""
    ids = np.asarray(artifacts.array(f"showcase/{prefix}input_ids"))
    mask = np.asarray(artifacts.array(f"showcase/{prefix}attention_mask")) > 0
    return np.isin(ids, artifacts.manifest["attention"]["special_token_ids"]) & mask


def compare(got: np.ndarray, want: np.ndarray, n_keys: np.ndarray, kind: str) -> None:
    """Metric by metric; a threshold metric may flip for one query (float rounding at 0.01)."""
    n = n_keys.astype(np.float64)[:, None, None]
    flip = {"nonzero_mean": 1 / n, "nonzero_max": 1.0 + 0 * n, "sparsity": 1 / n**2}
    worst = 0.0
    for i, name in enumerate(NAMES):
        if name in THRESHOLD_METRICS:
            assert np.all(np.abs(got[..., i] - want[..., i]) <= flip[name] + 1e-6), (kind, name)
            continue
        np.testing.assert_allclose(got[..., i], want[..., i], rtol=1e-4, atol=1e-5, err_msg=name)
        both = np.isfinite(want[..., i])
        if both.any():
            worst = max(worst, float(np.abs(got[..., i] - want[..., i])[both].max()))
    MEASURED[kind] = worst
    print(f"{kind}: max |metric - numpy| = {worst:.3g}")


def test_metric_arrays_have_named_axes(t5):
    config = t5.manifest["model"]["config"]
    examples = len(t5.array("showcase/index"))
    for kind in ("decoder", "cross"):
        entry = t5.manifest["arrays"][f"showcase/{kind}_head_metrics"]
        assert entry["dtype"] == "float32"
        assert entry["axes"] == ["example", "layer", "head", "metric"]
        assert entry["shape"] == [
            examples,
            config["n_decoder_layers"],
            config["n_heads"],
            len(METRICS),
        ]
    assert t5.manifest["attention"]["head_metrics"] == list(METRICS)
    assert t5.manifest["arrays"]["corpus/head_metrics"]["shape"][1] == config["n_layers"]


def test_cross_attention_metrics_equal_numpy_from_stored_cross_attentions(t5):
    att = np.asarray(t5.array("showcase/cross_attentions"), dtype=np.float64)
    queries = np.asarray(t5.array("showcase/decoder_attention_mask"))
    keys = np.asarray(t5.array("showcase/attention_mask"))
    want = reference_metrics(att, queries, keys, specials(t5, ""), causal=False)
    got = np.asarray(t5.array("showcase/cross_head_metrics"), dtype=np.float64)
    undefined = [NAMES.index(name) for name in CROSS_UNDEFINED]
    assert np.all(np.isnan(got[..., undefined]))  # positions of two different sequences
    want[..., undefined] = np.nan
    compare(got, want, keys.sum(1), "cross")
    assert np.all(np.isfinite(np.delete(got, undefined, axis=-1)))


def test_decoder_metrics_equal_numpy_from_stored_decoder_attentions(t5):
    att = np.asarray(t5.array("showcase/decoder_attentions"), dtype=np.float64)
    mask = np.asarray(t5.array("showcase/decoder_attention_mask"))
    want = reference_metrics(att, mask, mask, specials(t5, "decoder_"), causal=True)
    got = np.asarray(t5.array("showcase/decoder_head_metrics"), dtype=np.float64)
    compare(got, want, mask.sum(1), "decoder")
    assert np.all(np.isnan(got[..., NAMES.index("next")]))  # causal: no visible next token


def test_encoder_metrics_of_showcase_rows_equal_numpy(t5):
    att = np.asarray(t5.array("showcase/encoder_attentions"), dtype=np.float64)
    mask = np.asarray(t5.array("showcase/attention_mask"))
    want = reference_metrics(att, mask, mask, specials(t5, ""), causal=False)
    got = np.asarray(t5.array("corpus/head_metrics"))[np.asarray(t5.array("showcase/index"))]
    compare(got, want, mask.sum(1), "encoder")


def test_heads_tables_hold_the_three_kinds(t5_build, t5):
    import json

    _, _, artifacts_root = t5_build
    folder = artifacts_root / "tiny-t5" / "analyses"
    for kind in ("decoder", "cross"):
        rows = json.loads((folder / f"head_metrics_{kind}.json").read_text())
        per_example = np.asarray(t5.array(f"showcase/{kind}_head_metrics"))
        values = aggregate_texts(per_example, list(METRICS))
        for row in rows:
            for i, name in enumerate(METRICS):
                value = values[row["layer"], row["head"], i]
                if name in CROSS_UNDEFINED and kind == "cross":
                    assert row[name] is None
                elif np.isfinite(value):
                    assert row[name] == pytest.approx(value, abs=1e-5)
