"""Refusal before work starts: a model or batch larger than the (faked) free memory is one line."""

from __future__ import annotations

import json
import re

import pytest
from cards import TINY_BERT, write_card
from robust_support import cli

from generator.models import device_memory
from generator.models.device_memory import (
    Available,
    MemoryRefusal,
    check_batch,
    check_checkpoint,
    checkpoint_size,
    cpu_available,
)
from generator.models.memory import parameter_count
from generator.models.registry import parse_config

TINY = parse_config(json.loads((TINY_BERT / "config.json").read_text()))


def test_cpu_memory_is_read_from_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:    1234567 kB\n")
    assert cpu_available(meminfo) == 1234567 * 1024
    assert cpu_available(tmp_path / "absent") > 0  # sysconf's free pages


def test_device_available_on_this_cpu_is_positive():
    available = device_memory.device_available()
    assert available.bytes > 0 and available.where


def test_checkpoint_size_comes_from_the_headers_alone():
    from safetensors.numpy import load_file

    arrays = load_file(TINY_BERT / "model.safetensors")
    sizes = [a.size for a in arrays.values()]
    assert checkpoint_size(TINY_BERT) == (sum(sizes), max(sizes))
    sharded = checkpoint_size(TINY_BERT.parent / "tiny-llama-sharded")
    assert sharded == checkpoint_size(TINY_BERT.parent / "tiny-llama")


def test_a_checkpoint_larger_than_the_device_is_refused_in_one_line():
    need = 4 * parameter_count(TINY)
    with pytest.raises(MemoryRefusal) as refused:
        check_checkpoint("tiny", TINY_BERT, Available(need - 1, "a fake device"))
    message = refused.value.message
    assert "\n" not in message and "a fake device" in message and "mesh: {model: N}" in message
    check_checkpoint("tiny", TINY_BERT, Available(10 * need, "a fake device"))  # fits: no error


def test_a_batch_larger_than_the_free_memory_names_the_settings():
    with pytest.raises(MemoryRefusal, match=r"lower `max_length` \(now 512\).*bfloat16.*mesh"):
        check_batch("tiny", 2 * 1024**3, Available(1024**3, "a fake device"), max_length=512)
    check_batch("tiny", 1024**3, Available(1024**3, "a fake device"), max_length=512)


def test_build_is_refused_before_loading_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(device_memory, "device_available", lambda: Available(1024, "a fake card"))

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before the refusal")

    monkeypatch.setattr("generator.models.loading.load_model", no_loading)
    out, artifacts = tmp_path / "site", tmp_path / "artifacts"
    result = cli("build", write_card(tmp_path / "cards"), "--out", out, "--artifacts", artifacts)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and re.search(r"a fake card has 0\.00 GiB free.*mesh", lines[0])
    assert not out.exists()
    assert not (artifacts / "tiny-bert").exists()


def test_batches_too_large_are_refused_before_the_corpus_pass(tmp_path, monkeypatch):
    """Enough memory to load, too little for a batch: refused after planning, nothing run."""
    calls = []

    def shrinking():
        calls.append(1)
        return Available(1 << 40 if len(calls) == 1 else 1024, "a fake card")

    monkeypatch.setattr(device_memory, "device_available", shrinking)
    out, artifacts = tmp_path / "site", tmp_path / "artifacts"
    card = write_card(tmp_path / "cards")
    result = cli("build", card, "--out", out, "--artifacts", artifacts, "-q")
    assert result.exit_code == 2
    assert "one batch needs about" in result.output and "max_length` (now 64)" in result.output
    # once before loading, once for the corpus pass's memory budget, once after planning
    assert len(calls) == 3
    assert not out.exists() and not (artifacts / "tiny-bert").exists()


# Llama-2-7B's config.json (no weights needed: the size is counted from the architecture)
LLAMA_7B_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "torch_dtype": "bfloat16",
}


def test_a_7b_llama_is_refused_on_a_24_gb_machine(tmp_path):
    """7B parameters are 28 GB in float32 (our parameters' dtype): refused from config.json."""
    (tmp_path / "config.json").write_text(json.dumps(LLAMA_7B_CONFIG))
    with pytest.raises(MemoryRefusal, match=r"needs about 28\.\d\d GiB .*24\.00 GiB free"):
        check_checkpoint("llama-7b", tmp_path, Available(24 * 1024**3, "a 24 GiB machine"))


def test_gradients_that_cannot_fit_are_skipped_with_the_reason(tmp_path, monkeypatch):
    """Room for the model and its batches, not for the parameter-gradient step: said before the
    passes (--strict stops there), then skipped with the reason on the page, never killed."""
    from generator.artifacts import open_artifacts
    from generator.models import memory

    monkeypatch.setattr(memory, "gradient_step_bytes", lambda *args, **kwargs: 1 << 50)
    out, artifacts = tmp_path / "site", tmp_path / "artifacts"
    card = write_card(tmp_path / "cards")
    strict = cli("build", card, "--out", out, "--artifacts", artifacts, "-q", "--strict")
    assert strict.exit_code != 0
    assert "tiny-bert: parameter gradients skipped: they need about" in strict.output
    assert not out.exists() and not (artifacts / "tiny-bert").exists()
    result = cli("build", card, "--out", out, "--artifacts", artifacts, "-q")
    assert result.exit_code == 0, result.output
    reason = open_artifacts(artifacts / "tiny-bert").manifest["gradients"]["skipped"]
    assert reason.startswith("they need about") and "mesh: {model: N}" in reason
    page = (out / "tiny-bert" / "weights.html").read_text(encoding="utf-8")
    assert "No parameter gradients in these artifacts: they need about" in page


def test_weight_statistics_use_the_hosts_cpus_beside_an_accelerator(monkeypatch):
    """Beside a corpus pass on the CPU one thread; on an accelerator every host CPU but one,
    as many as the host's free memory holds working copies of the largest tensor for."""
    from types import SimpleNamespace

    from generator.extract.capture import weight_threads
    from generator.models.device_memory import WEIGHTS_STEP_COPIES

    monkeypatch.setenv("MODELATLAS_WORKERS", "16")
    with_corpus = SimpleNamespace(corpus_path=lambda: "corpus.jsonl")
    weights_only = SimpleNamespace(corpus_path=lambda: None)
    assert weight_threads(weights_only, "cpu") == weight_threads(weights_only, "gpu") == 16
    assert weight_threads(with_corpus, "cpu") == weight_threads(with_corpus, "cpu", 10**6) == 1
    assert weight_threads(with_corpus, "gpu") == 15
    per_thread = 8 * WEIGHTS_STEP_COPIES * 10**6  # float64 copies of a 10**6-entry tensor
    monkeypatch.setattr(device_memory, "cpu_available", lambda: 3 * per_thread)
    assert weight_threads(with_corpus, "gpu", 10**6) == 3
    assert weight_threads(with_corpus, "gpu", 10**9) == 1


def test_a_build_beside_an_accelerator_keeps_weight_copies_off_the_device(tmp_path, monkeypatch):
    """The accelerator's code path, run on the CPU: layers scanned, the gradient step unrolled,
    the weight statistics' working copies not counted against the device before loading."""
    import jax

    from generator.artifacts import open_artifacts

    checks = []
    real = device_memory.check_checkpoint
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    monkeypatch.setattr(
        device_memory,
        "check_checkpoint",
        lambda *args, **kwargs: checks.append(kwargs["working_sets"]) or real(*args, **kwargs),
    )
    out, artifacts = tmp_path / "site", tmp_path / "artifacts"
    result = cli("build", write_card(tmp_path / "cards"), "--out", out, "--artifacts", artifacts)
    assert result.exit_code == 0, result.output
    assert checks == [0]
    gradients = open_artifacts(artifacts / "tiny-bert").manifest["gradients"]
    assert gradients["skipped"] is None and gradients["tensors"]
