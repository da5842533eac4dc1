"""Sharded checkpoints, memory-mapped tensor reads and the weights-hash cache.

tests/fixtures/tiny-llama-sharded is tiny-llama saved again by transformers with
`save_pretrained(max_shard_size="60KB")` (scripts/make_fixture_sharded.py): an index and 4 shards.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from generator.card import parse_card_text
from generator.errors import ModelLoadError
from generator.extract import run
from generator.extract.hub_card import read_hub_card
from generator.hashing import FileHashCache, file_sha256
from generator.models import load_model, read_safetensors
from generator.weight_files import INDEX_NAME, open_weights, weight_files

FIXTURES = Path(__file__).parent / "fixtures"
SINGLE = FIXTURES / "tiny-llama"
SHARDED = FIXTURES / "tiny-llama-sharded"


def test_sharded_checkpoint_loads_at_parity_with_its_unsharded_twin():
    index = json.loads((SHARDED / INDEX_NAME).read_text())
    assert len(set(index["weight_map"].values())) >= 3  # really sharded
    single, sharded = load_model(SINGLE), load_model(SHARDED)
    assert sharded.weights_path == SHARDED / INDEX_NAME
    assert sharded.config == single.config and sharded.ignored == single.ignored
    ours = nnx.to_flat_state(nnx.state(sharded.model, nnx.Param))
    theirs = dict(nnx.to_flat_state(nnx.state(single.model, nnx.Param)))
    assert len(ours) == len(theirs) > 0
    for path, variable in ours:
        assert np.array_equal(np.asarray(variable.get_value()), theirs[path].get_value()), path
    ids = np.array([[1, 30, 40, 50, 2]], np.int32)
    out = jax.tree.map(np.asarray, sharded.model(ids, np.ones_like(ids)))
    ref = jax.tree.map(np.asarray, single.model(ids, np.ones_like(ids)))
    assert np.array_equal(out["logits"], ref["logits"])


def test_sharded_tensors_are_the_single_files_tensors():
    tensors = open_weights(SHARDED / INDEX_NAME)
    reference = read_safetensors(SINGLE / "model.safetensors")
    assert sorted(tensors) == sorted(reference)
    for name, array in reference.items():
        assert np.array_equal(tensors[name], array) and tensors[name].dtype == array.dtype


def sharded_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SHARDED, tmp_path / "sharded"))


def test_missing_shard_is_named(tmp_path):
    folder = sharded_copy(tmp_path)
    (folder / "model-00002-of-00004.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="names shard model-00002-of-00004.safetensors"):
        load_model(folder)


@pytest.mark.parametrize(
    ("tensor", "shard", "expected"),
    [
        ("model.extra.weight", "model-00004-of-00004.safetensors", "lacks 1 tensor"),
        ("lm_head.weight", "../model.safetensors", "not a file next to the index"),
    ],
)
def test_index_that_does_not_match_its_shards_is_refused(tmp_path, tensor, shard, expected):
    folder = sharded_copy(tmp_path)
    index = json.loads((folder / INDEX_NAME).read_text())
    index["weight_map"][tensor] = shard
    (folder / INDEX_NAME).write_text(json.dumps(index))
    with pytest.raises(ModelLoadError, match=expected):
        load_model(folder)


def test_weight_files_lists_the_index_and_every_shard():
    files = weight_files(SHARDED)
    assert files[0].name == INDEX_NAME
    assert sorted(p.name for p in files[1:]) == sorted(p.name for p in SHARDED.glob("model-*"))
    assert weight_files(SINGLE) == [SINGLE / "model.safetensors"]


def fingerprint(model_dir: Path, hashes: FileHashCache) -> dict:
    card = parse_card_text(f"---\nname: fp\nmodel: {model_dir}\n---\n", model_dir / "fp.md")
    return run.input_fingerprint(card, model_dir, hashes=hashes)


def test_single_file_weights_hash_is_the_files_sha256(tmp_path):
    hashes = run.hash_cache(tmp_path / "artifacts")
    weights = SINGLE / "model.safetensors"
    assert fingerprint(SINGLE, hashes)["weights_sha256"] == file_sha256(weights)


def test_every_shard_is_in_the_weights_hash(tmp_path):
    folder = sharded_copy(tmp_path)
    first = fingerprint(folder, FileHashCache(None))["weights_sha256"]
    shard = folder / "model-00003-of-00004.safetensors"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 1  # one bit of one tensor
    shard.write_bytes(bytes(data))
    assert fingerprint(folder, FileHashCache(None))["weights_sha256"] != first


def test_warm_fingerprint_reads_no_weights_until_size_or_mtime_changes(tmp_path, monkeypatch):
    folder = sharded_copy(tmp_path)
    cache_file = tmp_path / "artifacts" / run.HASH_CACHE_NAME
    first = fingerprint(folder, FileHashCache(cache_file))
    assert cache_file.is_file()
    hashed: list[str] = []
    real = file_sha256

    def counting(path):
        hashed.append(Path(path).name)
        return real(path)

    monkeypatch.setattr("generator.hashing.file_sha256", counting)
    assert fingerprint(folder, FileHashCache(cache_file)) == first  # a new process: from disk
    assert not [name for name in hashed if name.endswith(".safetensors")]
    shard = folder / "model-00001-of-00004.safetensors"
    stat = shard.stat()
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    fingerprint(folder, FileHashCache(cache_file))
    assert [name for name in hashed if name.endswith(".safetensors")] == [shard.name]


def test_hash_cache_forgets_deleted_files(tmp_path):
    cache_file = tmp_path / run.HASH_CACHE_NAME
    gone, kept = tmp_path / "gone.bin", tmp_path / "kept.bin"
    gone.write_bytes(b"a")
    kept.write_bytes(b"b")
    hashes = FileHashCache(cache_file)
    hashes.sha256(gone)
    hashes.save()
    gone.unlink()
    hashes = FileHashCache(cache_file)
    hashes.sha256(kept)
    hashes.save()
    assert list(json.loads(cache_file.read_text())) == [str(kept)]


def test_damaged_hash_cache_is_ignored(tmp_path):
    cache_file = tmp_path / run.HASH_CACHE_NAME
    cache_file.write_text("{not json")
    weights = SINGLE / "model.safetensors"
    assert FileHashCache(cache_file).sha256(weights) == file_sha256(weights)


def test_hub_card_metadata_is_read_from_the_readme(tmp_path):
    assert read_hub_card(SHARDED) == {
        "license": ["apache-2.0"],
        "base_model": ["tests/tiny-llama"],
        "datasets": ["tests/corpus-small"],
        "language": ["en"],
    }
    assert read_hub_card(SINGLE) == {}  # no README.md
    (tmp_path / "README.md").write_text("---\nlicense: [1, 2]\ntags: [x]\n---\nprose\n")
    assert read_hub_card(tmp_path) == {}  # not strings; other keys are not read
    (tmp_path / "README.md").write_text("---\nlicense: mit\nlanguage: [de, fr]\n---\n")
    assert read_hub_card(tmp_path) == {"license": ["mit"], "language": ["de", "fr"]}
