"""Artifact store: named axes, hashes, bfloat16 bits, damage detection, atomic swap."""

import json

import ml_dtypes
import numpy as np
import pytest

from generator.artifacts import ArtifactWriter, damaged_arrays, open_artifacts, read_manifest
from generator.atomic import staged_folder
from generator.errors import ArtifactError


def write_store(root):
    with staged_folder(root) as staging:
        writer = ArtifactWriter(staging)
        writer.write_array("showcase/tokens", np.array([["[CLS]", "hi"]]), ("example", "token"))
        mapped = writer.open_array(
            "corpus/residual_norm_sum", (3, 2), np.float32, ("text", "layer")
        )
        mapped[:] = np.arange(6, dtype=np.float32).reshape(3, 2)
        mapped.flush()
        bf = np.array([1.5, -2.0, 0.25], dtype=ml_dtypes.bfloat16).reshape(3, 1, 1)
        writer.write_array("corpus/pooled_mean", bf, ("text", "layer", "d_model"))
        writer.finish({"input_hash": "abc"})


def test_round_trip_with_axes_and_hashes(tmp_path):
    root = tmp_path / "model"
    write_store(root)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["arrays"]["corpus/residual_norm_sum"]["axes"] == ["text", "layer"]
    assert manifest["arrays"]["corpus/pooled_mean"]["dtype"] == "bfloat16"
    artifacts = open_artifacts(root)
    assert artifacts.array("corpus/residual_norm_sum")[2].tolist() == [4.0, 5.0]
    assert artifacts.array("corpus/pooled_mean").ravel().tolist() == [1.5, -2.0, 0.25]
    assert artifacts.array("showcase/tokens")[0, 0] == "[CLS]"
    # readable with numpy alone, no pickle
    assert np.load(root / "showcase/tokens.npy", allow_pickle=False).shape == (1, 2)


def test_damaged_array_is_detected(tmp_path):
    root = tmp_path / "model"
    write_store(root)
    path = root / "corpus/residual_norm_sum.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert damaged_arrays(root, read_manifest(root)) == ["corpus/residual_norm_sum"]
    with pytest.raises(ArtifactError, match="damaged"):
        open_artifacts(root)


def test_failed_write_keeps_previous_folder(tmp_path):
    root = tmp_path / "model"
    write_store(root)
    before = {p.name: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    with pytest.raises(RuntimeError), staged_folder(root) as staging:
        (staging / "half.npy").write_bytes(b"partial")
        raise RuntimeError("killed mid-way")
    after = {p.name: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_axis_count_must_match(tmp_path):
    writer = ArtifactWriter(tmp_path)
    with pytest.raises(ValueError, match="axis names"):
        writer.write_array("x", np.zeros((2, 2)), ("text",))
