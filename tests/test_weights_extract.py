"""Weight statistics of the extract stage: every tensor once, every number against numpy."""

import json
import weakref
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from generator.extract.capture import parameter_inventory
from generator.extract.downsample import max_abs_pool
from generator.extract.embedding_geometry import (
    choose_probes,
    choose_sample,
    corpus_counts,
    nearest_neighbours,
    word_like,
)
from generator.extract.param_roles import classify
from generator.extract.spectra import split_fused_qkv
from generator.extract.weights import (
    HISTOGRAM_BINS,
    NEAR_ZERO,
    parameter_arrays,
    tensor_statistics,
    weight_statistics,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CHECKPOINTS = sorted(p.parent for p in FIXTURES.glob("*/config.json"))


@pytest.fixture(scope="module", params=CHECKPOINTS, ids=lambda p: p.name)
def computed(request):
    """Load a fixture checkpoint and compute its weight statistics once per module."""
    from generator.models.loading import load_model

    loaded = load_model(request.param)
    arrays = parameter_arrays(loaded.model)
    section, out = weight_statistics(arrays, loaded.config.d_head)
    return loaded, arrays, section, out


def test_fixture_checkpoints_are_found():
    assert any(p.name == "tiny-bert" for p in CHECKPOINTS)


def test_every_parameter_tensor_appears_exactly_once(computed):
    loaded, arrays, section, out = computed
    inventory = parameter_inventory(loaded.model)
    names = [row["name"] for row in section["tensors"]]
    assert sorted(names) == sorted(row["name"] for row in inventory)
    assert len(names) == len(set(names))
    assert sum(row["count"] for row in section["tensors"]) == sum(r["count"] for r in inventory)
    assert out["weights/histograms"][0].shape == (len(names), HISTOGRAM_BINS)


def test_tensor_statistics_match_numpy(computed):
    _, arrays, section, _ = computed
    for row in section["tensors"]:
        w = arrays[row["name"]].astype(np.float64)
        assert row["shape"] == list(w.shape)
        assert row["frobenius"] == pytest.approx(np.linalg.norm(w.ravel()), rel=1e-9)
        assert row["mean"] == pytest.approx(w.mean(), abs=1e-12)
        assert row["std"] == pytest.approx(w.std(), rel=1e-9, abs=1e-12)
        assert row["max_abs"] == pytest.approx(np.abs(w).max())
        expected = np.mean(np.abs(w) < NEAR_ZERO * np.abs(w).max())
        assert row["near_zero"] == pytest.approx(expected)


def test_histograms_count_every_entry_in_shared_bins(computed):
    _, arrays, section, out = computed
    counts = out["weights/histograms"][0]
    for index, row in enumerate(section["tensors"]):
        assert counts[index].sum() == row["count"]
        lo, hi = section["histogram_ranges"][row["group"]]
        w = arrays[row["name"]].ravel()
        inside = w[(w >= lo) & (w <= hi)]
        assert row["beyond_range"] == w.size - inside.size
        expected, _ = np.histogram(np.clip(w, lo, hi), bins=HISTOGRAM_BINS, range=(lo, hi))
        np.testing.assert_array_equal(counts[index], expected)


def test_spectra_heatmaps_and_heads_match_direct_computation(computed):
    loaded, arrays, section, out = computed
    singular = out["weights/singular_values"][0]
    heatmaps = out["weights/heatmaps"][0]
    assert section["matrices"], "no weight matrix found"
    for m in section["matrices"]:
        w = arrays[m["name"]]
        sigma = np.linalg.svd(w.astype(np.float64), compute_uv=False)
        got = singular[m["spectrum"]]
        np.testing.assert_allclose(got[: len(sigma)], sigma, rtol=1e-5, atol=1e-6)
        assert np.all(np.isnan(got[len(sigma) :]))
        rows, cols = m["heatmap_shape"]
        np.testing.assert_array_equal(heatmaps[m["heatmap"], :rows, :cols], max_abs_pool(w))
    d_head = loaded.config.d_head
    parts = {}
    for head in section["heads"]:
        parts.setdefault((head["name"], head["role"]), []).append(head["head"])
    for (name, role), heads in parts.items():
        w = arrays[name]
        width = w.shape[0] if role == "attn_out" else w.shape[1]
        if classify(name).role == "qkv":
            width //= 3
        assert heads == list(range(width // d_head)), name
    assert {role for _, role in parts} >= {"query", "key", "value", "attn_out"}
    for role in ("query", "key", "value", "attn_out"):
        vectors = []
        for h in section["heads"]:
            if h["role"] != role:
                continue
            w = arrays[h["name"]]
            if classify(h["name"]).role == "qkv":
                w = split_fused_qkv(w)[role]
            block = (
                w[h["head"] * d_head : (h["head"] + 1) * d_head, :]
                if role == "attn_out"
                else w[:, h["head"] * d_head : (h["head"] + 1) * d_head]
            )
            assert h["frobenius"] == pytest.approx(np.linalg.norm(block), rel=1e-5)
            if not h["cross"]:
                vectors.append(block.ravel().astype(np.float64))
        stacked = np.stack(vectors)
        gram, axes = out[f"weights/head_gram_{role}"]
        np.testing.assert_allclose(gram, stacked @ stacked.T, rtol=1e-6, atol=1e-8)
        assert axes == ("head_vector", "head_vector")


def test_statistics_of_a_small_known_tensor():
    w = np.array([[3.0, -4.0], [0.0, 0.001]])
    stats = tensor_statistics(w)
    assert stats["frobenius"] == pytest.approx(np.sqrt(9 + 16 + 1e-6))
    assert stats["mean"] == pytest.approx((3 - 4 + 0.001) / 4)
    assert stats["std"] == pytest.approx(np.std(w))
    assert stats["max_abs"] == 4.0
    assert stats["near_zero"] == pytest.approx(0.5)  # 0 and 0.001 are below 1e-3 · 4
    assert stats["quantiles"][3] == pytest.approx(np.median(w))


def test_embedding_sample_takes_frequent_corpus_tokens_then_strata():
    counts = corpus_counts([np.array([5, 5, 7, 9]), np.array([5, 7])], vocab_size=10_000)
    assert counts[5] == 3 and counts[7] == 2 and counts[9] == 1
    sample = choose_sample(counts, size=100)
    assert len(sample) == 100 and len(set(sample.tolist())) == 100
    assert {5, 7, 9} <= set(sample.tolist())
    assert np.all(np.diff(sample) > 0)
    # strata cover the whole id range
    assert sample.min() < 200 and sample.max() > 9_800
    np.testing.assert_array_equal(choose_sample(counts, size=100), sample)  # seeded
    np.testing.assert_array_equal(choose_sample(np.zeros(50), size=100), np.arange(50))


def test_probes_are_frequent_word_like_corpus_tokens():
    strings = ["[CLS]", "the", "##ing", "market", "12", "bread", "Ġhouse", "▁river"]
    special = {"[CLS]"}
    assert not word_like("[CLS]", special) and not word_like("the", special)
    assert word_like("Ġhouse", special) and word_like("▁river", special)
    counts = np.array([9, 50, 40, 3, 30, 7, 0, 1])
    assert choose_probes(strings, counts, special) == [5, 3, 7]
    assert sorted(choose_probes(strings, np.zeros(8), special)) == [3, 5, 6, 7]


def test_nearest_neighbours_match_brute_force_cosine():
    rng = np.random.default_rng(0)
    embedding = rng.normal(size=(300, 16))
    found = nearest_neighbours(embedding, [4, 120], k=5)
    unit = embedding / np.linalg.norm(embedding, axis=1, keepdims=True)
    for probe, neighbours in zip([4, 120], found, strict=True):
        cosine = unit @ unit[probe]
        cosine[probe] = -np.inf
        expected = np.argsort(-cosine)[:5]
        assert [i for i, _ in neighbours] == expected.tolist()
        assert [c for _, c in neighbours] == pytest.approx(cosine[expected].tolist())


class CountingSource(Mapping):
    """A parameter mapping that hands out fresh copies and records how many are alive at once."""

    def __init__(self, arrays):
        self._arrays, self.alive, self.most_alive, self.reads = arrays, 0, 0, 0

    def _released(self):
        self.alive -= 1

    def __getitem__(self, name):
        copy = np.array(self._arrays[name])
        self.alive += 1
        self.reads += 1
        self.most_alive = max(self.most_alive, self.alive)
        weakref.finalize(copy, self._released)
        return copy

    def __iter__(self):
        return iter(self._arrays)

    def __len__(self):
        return len(self._arrays)


def test_weight_statistics_hold_one_tensor_per_thread(monkeypatch):
    from generator.models.loading import load_model

    loaded = load_model(FIXTURES / "tiny-gpt2")
    arrays = parameter_arrays(loaded.model)
    monkeypatch.setenv("MODELATLAS_WORKERS", "1")
    source = CountingSource(arrays)
    section, out = weight_statistics(source, loaded.config.d_head)
    assert source.most_alive == 1 and source.reads >= 2 * len(arrays)  # each read let go
    direct, direct_out = weight_statistics(dict(arrays.items()), loaded.config.d_head)
    assert section == direct
    for name, (array, _axes) in out.items():
        np.testing.assert_array_equal(array, direct_out[name][0])
    # Two threads: at most one tensor each, and the same numbers in the same order.
    monkeypatch.setenv("MODELATLAS_WORKERS", "2")
    source = CountingSource(arrays)
    threaded, threaded_out = weight_statistics(source, loaded.config.d_head)
    assert source.most_alive <= 2 and source.reads >= 2 * len(arrays)
    assert json.dumps(threaded) == json.dumps(section)  # key order too (the manifest's bytes)
    assert threaded_out.keys() == out.keys()
    for name, (array, axes) in out.items():
        np.testing.assert_array_equal(threaded_out[name][0], array)
        assert threaded_out[name][1] == axes


def test_matrices_above_the_cap_get_a_truncated_spectrum_with_true_intervals(monkeypatch):
    from generator.extract import truncated_spectra, weights
    from generator.extract.spectra import effective_rank, stable_rank
    from generator.models.loading import load_model

    monkeypatch.setattr(weights, "SPECTRUM_MAX_COST", 32**3)
    monkeypatch.setattr(truncated_spectra, "TRUNCATED_RANK", 8)
    loaded = load_model(FIXTURES / "tiny-bert")
    arrays = parameter_arrays(loaded.model)
    section, out = weight_statistics(arrays, loaded.config.d_head)
    methods = {m["name"]: m["spectrum_method"] for m in section["matrices"]}
    assert "truncated" in methods.values() and "exact" in methods.values()
    for m in section["matrices"]:
        w = arrays[m["name"]]
        assert methods[m["name"]] == ("exact" if w.size * min(w.shape) <= 32**3 else "truncated")
        if m["spectrum_method"] != "truncated":
            continue
        exact = np.linalg.svd(w.astype(np.float64), compute_uv=False)
        stored = out["weights/singular_values"][0][m["spectrum"]]
        assert np.sum(np.isfinite(stored)) == m["spectrum_rank"] == 8
        assert m["spectrum_full_rank"] == min(w.shape)
        lo, hi = m["stable_rank_interval"]
        assert lo <= stable_rank(exact) <= hi
        lo, hi = m["effective_rank_interval"]
        assert lo <= effective_rank(exact) <= hi
        assert m["sigma_max"] == pytest.approx(exact[0], abs=m["sigma_error"] + 1e-9)


def test_row_norms_and_cosines_in_blocks_equal_the_whole_matrix_in_float64():
    from generator.extract.embedding_geometry import ROW_BLOCK, row_cosines, row_norms

    rng = np.random.default_rng(4)
    a = rng.normal(size=(2 * ROW_BLOCK + 5, 24)).astype(np.float32)
    b = rng.normal(size=a.shape).astype(np.float32)
    wide_a, wide_b = a.astype(np.float64), b.astype(np.float64)
    norms_a, norms_b = np.linalg.norm(wide_a, axis=1), np.linalg.norm(wide_b, axis=1)
    np.testing.assert_array_equal(row_norms(a), norms_a.astype(np.float32))
    cosine = np.sum(wide_a * wide_b, axis=1) / (norms_a * norms_b)
    np.testing.assert_array_equal(row_cosines(a, b), cosine.astype(np.float32))
