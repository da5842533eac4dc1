"""Device mesh: parsing, parameter placement rules, batching, and 8 devices = 1 device.

The main pytest process has initialised JAX with one CPU device, so the multi-device check
runs in a subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=8 set before JAX
is imported, and compares its stored artifacts with the one-device build.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from cards import TINY_BERT, TINY_T5, write_card
from click.testing import CliRunner
from flax import nnx

from generator.artifacts import open_artifacts
from generator.cli import main
from generator.extract.batching import plan_batches
from generator.extract.processes import DiscardingWriter, agree_with_primary, is_primary_process
from generator.extract.sharding import (
    MeshError,
    MeshShape,
    check_model_axis,
    make_mesh,
    model_axis_dim,
    parameter_spec,
)
from generator.models import load_model

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-5


def test_mesh_shape_parses_and_resolves():
    assert MeshShape.parse("data=2,model=4") == MeshShape(2, 4)
    assert MeshShape.parse(" model = 2 ") == MeshShape(None, 2)
    assert MeshShape.parse("data=8").resolve(8) == (8, 1)
    assert MeshShape(None, 2).resolve(8) == (4, 2)
    assert MeshShape().resolve(3) == (3, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data=2,model=x", "must be a positive integer"),
        ("data=0", "must be a positive integer"),
        ("pipeline=2", "bad mesh part"),
        ("data=2,data=2", "given twice"),
        ("data:2", "bad mesh part"),
    ],
)
def test_bad_mesh_strings(text, message):
    with pytest.raises(MeshError, match=message):
        MeshShape.parse(text)


def test_mesh_must_use_every_device():
    with pytest.raises(MeshError, match="data x model must equal 8"):
        MeshShape(3, 2).resolve(8)
    with pytest.raises(MeshError, match="does not fit 8"):
        MeshShape(None, 3).resolve(8)


def test_default_mesh_puts_every_device_on_data():
    mesh = make_mesh()
    assert mesh.axis_names == ("data", "model")
    assert mesh.shape["data"] == len(mesh.devices.flatten()) and mesh.shape["model"] == 1


TINY_ALBERT = ROOT / "tests" / "fixtures" / "tiny-albert-pretraining"
TINY_XLNET = TINY_BERT.parent / "tiny-xlnet"


@pytest.mark.parametrize("model_dir", [TINY_BERT, TINY_T5, TINY_ALBERT, TINY_XLNET])
def test_rules_split_heads_and_mlp_and_replicate_the_rest(model_dir):
    """Every split dimension is a head or MLP-unit dimension; norms and embeddings stay whole."""
    loaded = load_model(model_dir)
    config = loaded.config
    widths = {config.n_heads * config.d_head, config.d_mlp, config.n_heads}
    split = replicated = 0
    for path, variable in nnx.to_flat_state(nnx.state(loaded.model, nnx.Param)):
        name = ".".join(str(p) for p in path)
        shape = variable.get_value().shape
        spec = parameter_spec(config.family, name, len(shape))
        dim = model_axis_dim(config.family, name)
        if dim is None:
            assert tuple(spec) == ()
            assert not any(word in name for word in ("q.kernel", "query.kernel", "wi.kernel"))
            replicated += 1
        else:
            assert spec[dim] == "model" and shape[dim] in widths, name
            split += 1
    assert split >= 4 * config.n_layers and replicated > 0
    if config.family == "albert":  # q, k, v (kernel, bias), W_O, ffn (kernel, bias), ffn_output
        assert split == 10 * config.n_weight_blocks


def test_model_axis_must_divide_heads_and_mlp():
    config = load_model(TINY_BERT).config  # 4 heads, MLP 64
    check_model_axis(config, 4)
    with pytest.raises(MeshError, match="does not divide the model's 4 attention heads"):
        check_model_axis(config, 3)
    t5 = load_model(TINY_T5).config  # 4 heads, MLP 40
    check_model_axis(t5, 4)
    with pytest.raises(MeshError, match="42 MLP width"):
        check_model_axis(dataclasses.replace(t5, d_mlp=42), 4)


def test_batches_round_up_to_the_data_axis():
    lengths = np.array([5] * 13 + [40] * 3)
    for multiple in (1, 3, 8):
        batches = plan_batches(lengths, 64, multiple=multiple)
        assert all(batch.batch_size % multiple == 0 for batch in batches)
        assert sorted(np.concatenate([b.rows for b in batches]).tolist()) == list(range(16))


def test_single_process_is_primary_and_agrees_with_itself():
    assert is_primary_process()
    assert agree_with_primary(True) and not agree_with_primary(False)


def test_discarding_writer_records_and_writes_nothing(tmp_path):
    writer = DiscardingWriter()
    sink = writer.open_array("corpus/residual_norm_sum", (3, 2), np.float32, ("text", "layer"))
    sink[[0, 1]] = np.ones((2, 2))
    sink.flush()
    np.testing.assert_array_equal(sink[:, 0], [1, 1, 0])  # later steps read rows back
    writer.write_array("showcase/index", np.zeros(4, np.int64), ("example",))
    manifest = writer.finish({"input_hash": "h"})
    assert manifest["arrays"]["corpus/residual_norm_sum"]["shape"] == [3, 2]
    assert manifest["arrays"]["showcase/index"]["axes"] == ["example"]


def test_cli_mesh_option(tmp_path):
    card = write_card(tmp_path / "cards", corpus=None, label_field=None, split_field=None)
    runner = CliRunner()
    args = ["extract", str(card), "--artifacts", str(tmp_path / "a"), "-q"]
    bad = runner.invoke(main, [*args, "--mesh", "data=two"])
    assert bad.exit_code != 0 and "must be a positive integer" in bad.output
    too_many = runner.invoke(main, [*args, "--mesh", "data=2"])
    assert too_many.exit_code != 0 and "does not fit 1 device(s)" in too_many.output
    ok = runner.invoke(main, [*args, "--mesh", "data=1,model=1"])
    assert ok.exit_code == 0, ok.output
    manifest = json.loads((tmp_path / "a" / "tiny-bert" / "manifest.json").read_text())
    assert manifest["mesh"]["data"] == 1 and manifest["mesh"]["model"] == 1


SUBPROCESS = textwrap.dedent(
    """
    import dataclasses, sys
    from pathlib import Path
    import jax
    assert jax.device_count() == 8, jax.devices()
    from generator.card import load_card
    from generator.extract.run import extract
    from generator.extract.sharding import MeshShape
    out = Path(sys.argv[1])
    for card_path, label, shape in (
        (sys.argv[2], "data8", MeshShape(data=8)),
        (sys.argv[2], "data2-model4", MeshShape(data=2, model=4)),
        (sys.argv[3], "t5-data2-model4", MeshShape(data=2, model=4)),
    ):
        card = dataclasses.replace(load_card(card_path), mesh=shape)
        extract(card, out / label, force=True, strict=True, progress=False)
    """
)


# Head metrics that count attention weights at or above a threshold: one weight within rounding
# of it may fall on either side under a different summation order (seen: tiny ALBERT 1/31 of
# sparsity, tiny BERT on 8 devices nonzero_max 38 -> 37 in one head of one text).
THRESHOLD_METRICS = ("sparsity", "nonzero_mean", "nonzero_max")


def compare_head_metrics(name: str, ref: np.ndarray, ours: np.ndarray) -> float:
    """Assert head metrics [..., metric] agree as on one device; return the largest difference.

    ref, ours: float64, no NaN. Every metric but the threshold counts agrees to TOL (scaled as
    in `compare`). The counts move in under 1 % of the heads, by at most one key: the share
    and the mean over queries by under 0.05, the largest count by 1.
    """
    from generator.extract.head_metrics import METRICS

    counted = [METRICS.index(metric) for metric in THRESHOLD_METRICS]
    exact = [i for i in range(len(METRICS)) if i not in counted]
    scale = max(1.0, float(np.abs(ref[..., exact]).max()))
    diff = float(np.abs(ours[..., exact] - ref[..., exact]).max())
    assert diff <= TOL * scale, f"{name}: {diff:.3g} (scale {scale:.3g})"
    moved = np.abs(ours[..., counted] - ref[..., counted])
    assert (moved > TOL).any(axis=-1).mean() < 0.01, f"{name}: threshold counts moved"
    largest = THRESHOLD_METRICS.index("nonzero_max")
    averaged = np.delete(moved, largest, axis=-1)  # sparsity and nonzero_mean
    assert averaged.max() < 0.05, f"{name}: {averaged.max():.3g}"
    assert moved[..., largest].max() <= 1.0 + TOL, f"{name}: {moved[..., largest].max():.3g}"
    return diff


def compare(reference, sharded) -> float:
    """Assert every array of `sharded` equals `reference` to TOL; return the max difference.

    TOL is scaled by the array's largest magnitude when that exceeds 1: sums over a corpus
    (residual norms reach hundreds) and T5 logits (~20) differ by float32 rounding of a
    differently ordered sum alone by more than 1e-5 absolute.
    """
    assert set(reference.manifest["arrays"]) == set(sharded.manifest["arrays"])
    worst = 0.0
    for name in reference.manifest["arrays"]:
        ours, ref = sharded.array(name), reference.array(name)
        assert ours.shape == ref.shape, name
        counts = ref.dtype.kind in "iu" or (
            ref.dtype.kind == "f" and np.array_equal(np.asarray(ref), np.round(ref))
        )
        if "hist" in name and counts:
            # Histogram counts: a value on a bin edge may fall on either side under a different
            # summation order; the totals must agree exactly and almost every count must too.
            np.testing.assert_array_equal(ours.sum(axis=-1), ref.sum(axis=-1), err_msg=name)
            moved = int(np.abs(ours.astype(np.int64) - ref.astype(np.int64)).sum())
            assert moved <= 2 + ref.sum() // 10_000, f"{name}: {moved} counts moved"
            continue
        if name == "neurons/positive":
            # The share of the corpus's tokens on which a neuron is > 0: an activation within
            # rounding of 0 may fall on either side, so compare the counts as histograms are.
            tokens = int((np.asarray(reference.array("corpus/input_ids")) >= 0).sum())
            ref_counts, our_counts = (
                np.rint(np.asarray(a, np.float64) * tokens) for a in (ref, ours)
            )
            assert np.abs(ref_counts - np.asarray(ref, np.float64) * tokens).max() < 0.01, name
            moved = int(np.abs(our_counts - ref_counts).sum())
            assert moved <= 2 + ref_counts.sum() // 10_000, f"{name}: {moved} tokens moved"
            continue
        if ref.dtype.kind in "iuUSb":
            np.testing.assert_array_equal(ours, ref, err_msg=name)
            continue
        if name == "attribution/ig_error":
            # |Σ IG − gap| / |gap| is a difference of nearly equal numbers: compare at 1e-4.
            diff = float(np.abs(np.asarray(ours, np.float64) - np.asarray(ref, np.float64)).max())
            assert diff <= 1e-4, f"{name}: {diff:.3g}"
            continue
        ref, ours = np.asarray(ref, np.float64), np.asarray(ours, np.float64)
        # NaN marks "no value" (e.g. heatmap cells beyond a matrix): same places in both.
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref), err_msg=f"{name}: NaN")
        if name.endswith("head_metrics"):
            ref, ours = np.nan_to_num(ref), np.nan_to_num(ours)
            worst = max(worst, compare_head_metrics(name, ref, ours))
            continue
        finite = ~np.isnan(ref)
        if not finite.any():
            continue
        ref, ours = ref[finite], ours[finite]
        diff = float(np.abs(ours - ref).max())
        scale = max(1.0, float(np.abs(ref).max()))
        assert diff <= TOL * scale, f"{name}: {diff:.3g} (scale {scale:.3g})"
        worst = max(worst, diff)
    return worst


@pytest.mark.slow
def test_eight_devices_match_one_device(tiny_build, t5_build, tmp_path, record_property):
    card, _, one_device = tiny_build
    t5_card, _, t5_one_device = t5_build
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", SUBPROCESS, str(tmp_path), str(card), str(t5_card)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reference = open_artifacts(one_device / "tiny-bert")
    for label, data, model in (("data8", 8, 1), ("data2-model4", 2, 4)):
        sharded = open_artifacts(tmp_path / label / "tiny-bert")
        assert sharded.manifest["mesh"] == {
            "data": data,
            "model": model,
            "devices": 8,
            "platform": "cpu",
            "processes": 1,
        }
        worst = compare(reference, sharded)
        record_property(f"max_abs_diff_{label}", worst)
        print(f"tiny-bert {label}: max abs diff {worst:.3g}")
    t5 = open_artifacts(tmp_path / "t5-data2-model4" / "tiny-t5")
    worst = compare(open_artifacts(t5_one_device / "tiny-t5"), t5)
    record_property("max_abs_diff_t5_data2-model4", worst)
    print(f"tiny-t5 data2-model4: max abs diff {worst:.3g}")


ALBERT_SUBPROCESS = textwrap.dedent(
    """
    import dataclasses, sys
    from pathlib import Path
    import jax
    assert jax.device_count() == 8, jax.devices()
    from generator.card import load_card
    from generator.extract.run import extract
    from generator.extract.sharding import MeshShape
    card = dataclasses.replace(load_card(sys.argv[2]), mesh=MeshShape(data=2, model=4))
    extract(card, Path(sys.argv[1]), force=True, strict=True, progress=False)
    """
)


@pytest.mark.slow
def test_albert_shared_blocks_split_over_the_model_axis(albert_build, tmp_path, record_property):
    """tiny ALBERT on data=2, model=4: the shared blocks split by head, every array as on one."""
    card, _, one_device = albert_build
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", ALBERT_SUBPROCESS, str(tmp_path), str(card)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    sharded = open_artifacts(tmp_path / "tiny-albert")
    assert sharded.manifest["mesh"]["model"] == 4
    reference = open_artifacts(one_device / "tiny-albert")
    worst = compare(reference, sharded)
    record_property("max_abs_diff_albert_data2-model4", worst)
    print(f"tiny-albert data2-model4: max abs diff {worst:.3g}")


def test_only_process_zero_writes(tmp_path, monkeypatch):
    """A secondary process of a distributed run computes everything and writes nothing."""
    from cards import small_corpus

    import generator.extract.processes as processes
    from generator.build import build_cards
    from generator.card import load_card

    corpus = small_corpus(tmp_path / "data", ["one text", "another text", "a third one"])
    card = load_card(
        write_card(
            tmp_path / "cards", corpus=str(corpus), label_field=None, split_field=None, showcase=2
        )
    )
    monkeypatch.setattr(processes, "is_primary_process", lambda: False)
    out, artifacts = tmp_path / "site", tmp_path / "artifacts"
    (report,) = build_cards([card], out, artifacts, progress=False)
    assert report.extracted and not report.rendered
    assert not out.exists()
    assert not artifacts.exists() or not any(artifacts.rglob("*.npy"))
    assert not (artifacts / "tiny-bert").exists()
    assert not (artifacts / ".jax-cache").exists()


XLNET_SHARDED = """
import json, sys
import numpy as np, jax
from flax import nnx
from generator.extract import sharding
from generator.models import load_model
ref = dict(np.load(sys.argv[2]))
loaded = load_model(sys.argv[1])
mesh = sharding.make_mesh(sharding.MeshShape(data=1, model=4))
graphdef, params = nnx.split(loaded.model)
placed = sharding.shard_params(params, mesh, "xlnet")
split = [p for p, v in nnx.to_flat_state(placed) if "model" in tuple(v.get_value().sharding.spec)]
forward = jax.jit(lambda p, i, m: nnx.merge(graphdef, p)(i, m), out_shardings=sharding.replicated(mesh))
out = forward(placed, ref["input_ids"], ref["attention_mask"])
real = ref["attention_mask"].astype(bool)
diff = {k: float((np.abs(np.asarray(out[k]) - ref[k]) * real[:, None, :, None]).max())
        for k in ("hidden_states",)}
print(json.dumps({"split": len(split), **diff}))
"""


def test_xlnet_model_axis_matches_transformers(tmp_path):
    """tiny-xlnet over 4 CPU devices on the `model` axis (its 4 heads, 64 MLP units) still
    matches PyTorch: the per-head tensors split consistently."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            XLNET_SHARDED,
            str(TINY_XLNET),
            str(ROOT / "tests/fixtures/parity/tiny-xlnet.npz"),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["split"] == 2 * 12  # per layer: q, k, v, r, o, 3 biases, seg_embed, ff x3
    assert found["hidden_states"] <= 1e-4
