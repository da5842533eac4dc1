"""Parity of every family (and head, and RoPE / sliding-window variant) with PyTorch `transformers`.

Reference outputs come from scripts/make_fixtures.py (tiny random checkpoints, eager attention,
float32); this test needs no PyTorch. Positions are compared where the query token is real:
padding rows carry no meaning (transformers gives a padding row that sees no key uniform weights,
we give it none).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

from generator.models import load_model

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = FIXTURES.parent.parent
META = json.loads((FIXTURES / "parity" / "meta.json").read_text())
CASES = sorted(name for name in META["models"] if name not in ("tiny-bert", "minilm"))
TOL = 1e-4
OUTPUTS = (
    "hidden_states",
    "attentions",
    "logits",
    "next_sentence_logits",
    "sentence_order_logits",
    "pooler_output",
)
HEADLESS = ("AlbertModel",)  # base-model fixtures: compared through their pooler output
DECODER_CLASSES = ("GPT2", "Llama", "Mistral", "Qwen2")
DECODERS = [c for c in CASES if META["models"][c]["class"].startswith(DECODER_CLASSES)]

_CACHE: dict[str, tuple] = {}


def case_folder(case: str, tmp_root: Path) -> Path:
    """Return the checkpoint folder of a case, writing its patched config.json when it has one."""
    entry = META["models"][case]
    folder = ROOT / entry["model"]
    if not entry.get("patch"):
        return folder
    patched = tmp_root / case
    if not patched.exists():
        shutil.copytree(folder, patched)
        config = json.loads((folder / "config.json").read_text())
        for key, value in entry["patch"].items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        (patched / "config.json").write_text(json.dumps(config))
    return patched


def run(case: str, tmp_root: Path):
    """Return (reference arrays, our outputs as numpy, loaded model) for `case`, cached."""
    if case not in _CACHE:
        ref = dict(np.load(FIXTURES / "parity" / f"{case}.npz"))
        loaded = load_model(case_folder(case, tmp_root))
        out = loaded.model(ref["input_ids"], ref["attention_mask"], ref.get("token_type_ids"))
        _CACHE[case] = ref, {key: np.asarray(value) for key, value in out.items()}, loaded
    return _CACHE[case]


@pytest.fixture(scope="module")
def tmp_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("parity-cases")


def real_positions(key: str, diff: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Keep the entries of `diff` whose query / token position is a real token."""
    real = mask.astype(bool)  # [batch, token]
    if key == "hidden_states":  # [batch, layer, token, d_model]
        return diff * real[:, None, :, None]
    if key == "attentions":  # [batch, layer, head, query, key]
        return diff * real[:, None, None, :, None]
    if key == "logits" and diff.ndim >= 2 and diff.shape[1] == real.shape[1]:
        return diff * real.reshape(*real.shape, *([1] * (diff.ndim - 2)))
    return diff


@pytest.mark.parametrize("case", CASES)
def test_matches_transformers(case, tmp_root, record_property):
    ref, out, _ = run(case, tmp_root)
    compared = [key for key in OUTPUTS if key in ref]
    headless = META["models"][case]["class"] in HEADLESS
    assert ("pooler_output" if headless else "logits") in compared, "a head or the pooler"
    for key in compared:
        assert key in out, f"{case}: our model returns no {key}"
        assert out[key].shape == ref[key].shape, f"{case} {key}"
        diff = real_positions(key, np.abs(out[key] - ref[key]), ref["attention_mask"])
        record_property(f"max_abs_diff_{key}", float(diff.max()))
        print(f"{case} {key}: max abs diff {diff.max():.3g}")
        assert diff.max() <= TOL, f"{case} {key}: {diff.max():.3g}"


PRIMARY_HEADS = {  # class name suffix -> the head whose output is `logits` (first match wins)
    "XLNetLMHeadModel": "permutation-lm",
    "BertForPreTraining": "masked-lm",
    "AlbertForPreTraining": "masked-lm",
    "ElectraForPreTraining": "replaced-token-detection",
    "ForMaskedLM": "masked-lm",
    "ForSequenceClassification": "classification",
    "ForCausalLM": "causal-lm",
    "LMHeadModel": "causal-lm",
}


@pytest.mark.parametrize("case", CASES)
def test_heads_are_recorded(case, tmp_root):
    _, out, loaded = run(case, tmp_root)
    config = loaded.config
    model_class = META["models"][case]["class"]
    if model_class in HEADLESS:
        assert config.heads == () and config.with_pooler and "logits" not in out
        return
    primary = next(head for suffix, head in PRIMARY_HEADS.items() if model_class.endswith(suffix))
    assert config.heads[0] == primary
    assert config.to_dict()["heads"] == config.heads
    if primary == "classification":
        assert config.labels == ("negative", "neutral", "positive")
        assert out["logits"].shape == (out["hidden_states"].shape[0], 3)


@pytest.mark.parametrize("case", DECODERS)
def test_decoder_attention_is_causal(case, tmp_root):
    ref, out, loaded = run(case, tmp_root)
    assert loaded.config.causal
    attn = out["attentions"]  # [batch, layer, head, query, key]
    above = np.triu(np.ones(attn.shape[-2:], bool), k=1)
    assert np.all(attn[..., above] == 0.0)
    real = ref["attention_mask"].astype(bool)
    rows = attn.sum(-1)[real[:, None, None, :].repeat(attn.shape[1], 1).repeat(attn.shape[2], 2)]
    np.testing.assert_allclose(rows, 1.0, atol=1e-5)


def test_sliding_window_hides_old_keys(tmp_root):
    """Mistral's window of 4 (every layer); Qwen2's only from max_window_layers (layer 1)."""
    for case, layers in (("tiny-mistral", (0, 1)), ("tiny-qwen2", (1,))):
        ref, out, loaded = run(case, tmp_root)
        attn = out["attentions"]
        token = attn.shape[-1]
        old = np.tril(np.ones((token, token), bool), k=-4)  # key <= query - 4
        for layer in range(attn.shape[1]):
            hidden_old = np.all(attn[:, layer][..., old] == 0.0)
            assert hidden_old == (layer in layers), (case, layer)
        assert loaded.config.sliding_windows == tuple(4 if i in layers else None for i in range(2))


def test_grouped_query_keys_are_shared_within_groups(tmp_root):
    """tiny-llama has 4 query heads over 2 key/value heads; tiny-llama-mqa one for all."""
    for case, groups in (("tiny-llama", 2), ("tiny-llama-mqa", 1)):
        _, out, loaded = run(case, tmp_root)
        assert loaded.config.n_kv_heads == groups
        keys, values = out["keys"], out["values"]  # [batch, layer, head, token, d_head]
        per_group = loaded.config.n_heads // groups
        for head in range(loaded.config.n_heads):
            first = (head // per_group) * per_group
            np.testing.assert_array_equal(keys[:, :, head], keys[:, :, first])
            np.testing.assert_array_equal(values[:, :, head], values[:, :, first])
        assert not np.allclose(out["queries"][:, :, 0], out["queries"][:, :, 1])


@pytest.mark.parametrize("case", ["tiny-llama", "tiny-qwen2", "tiny-gpt2", "tiny-roberta-mlm"])
def test_queries_keys_values_reproduce_attention(case, tmp_root):
    ref, out, loaded = run(case, tmp_root)
    q, k = out["queries"], out["keys"]
    d_head = q.shape[-1]
    scores = np.einsum("blhqd,blhkd->blhqk", q, k) / np.sqrt(d_head)
    visible = out["attentions"] > 0
    scores = np.where(visible, scores, -1e30)  # finite: rows that see nothing stay NaN-free
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    real = ref["attention_mask"].astype(bool)[:, None, None, :, None]
    np.testing.assert_allclose(
        np.where(real, probs, 0), np.where(real, out["attentions"], 0), atol=1e-5
    )


@pytest.mark.parametrize(
    "case",
    [
        "tiny-gpt2",
        "tiny-qwen2",
        "tiny-roberta-mlm",
        "tiny-electra",
        "tiny-albert-pretraining",
        "tiny-xlnet",
    ],
)
def test_bfloat16_compute_is_close(case, tmp_root):
    """Every family honours dtype: bfloat16 activations, float32 softmax and parameters."""
    import jax.numpy as jnp
    from flax import nnx

    ref, _, _ = run(case, tmp_root)
    loaded = load_model(case_folder(case, tmp_root), dtype="bfloat16")
    params = nnx.state(loaded.model, nnx.Param)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))
    forward = nnx.jit(lambda m, *args: m(*args))
    out = forward(loaded.model, ref["input_ids"], ref["attention_mask"], ref.get("token_type_ids"))
    assert out["hidden_states"].dtype == jnp.bfloat16
    assert out["attentions"].dtype == jnp.float32
    real = ref["attention_mask"].astype(bool)  # [batch, token]
    hidden = np.asarray(out["hidden_states"].astype(jnp.float32)).transpose(0, 2, 1, 3)[real]
    expected = ref["hidden_states"].transpose(0, 2, 1, 3)[real]  # [real token, layer, d_model]
    relative = np.linalg.norm(hidden - expected) / np.linalg.norm(expected)
    assert relative < 0.03, relative
    attn = np.asarray(out["attentions"]).transpose(0, 3, 1, 2, 4)[real]
    expected_attn = ref["attentions"].transpose(0, 3, 1, 2, 4)[real]
    assert np.abs(attn - expected_attn).max() < 0.05


XLNET_CASES = [c for c in CASES if META["models"][c]["class"].startswith("XLNet")]


def _xlnet_diffs(out: dict, ref: dict, prefix: str) -> dict[str, float]:
    """Max abs diff of hidden states, attentions and logits at real positions of `prefix` inputs."""
    mask = ref[f"{prefix}attention_mask"]
    found = {}
    for key in ("hidden_states", "attentions", "logits"):
        diff = real_positions(key, np.abs(np.asarray(out[key]) - ref[prefix + key]), mask)
        found[key] = float(diff.max())
    return found


@pytest.mark.parametrize("case", XLNET_CASES)
def test_xlnet_padding_side_does_not_matter(case, tmp_root, record_property):
    """Our right-padded batch matches each text run alone in PyTorch (test_matches_transformers);
    the tokenizer's left-padded batch matches PyTorch's left-padded run, and the same texts
    right-padded give the same numbers at their real tokens."""
    ref, right, loaded = run(case, tmp_root)
    left = loaded.model(ref["left_input_ids"], ref["left_attention_mask"])
    for key, diff in _xlnet_diffs(left, ref, "left_").items():
        record_property(f"left_padded_max_abs_diff_{key}", diff)
        print(f"{case} left-padded {key}: max abs diff {diff:.3g}")
        assert diff <= TOL, (key, diff)
    mask = ref["left_attention_mask"].astype(bool)
    assert np.all(mask[:, -1]) and not np.all(mask[:, 0]), "XLNet's tokenizer pads on the left"
    for row in range(len(mask)):
        n = int(mask[row].sum())
        np.testing.assert_array_equal(ref["left_input_ids"][row, -n:], ref["input_ids"][row, :n])
        got = np.asarray(left["hidden_states"])[row, :, -n:]
        np.testing.assert_allclose(got, right["hidden_states"][row, :, :n], atol=TOL)
        got = np.asarray(left["attentions"])[row, :, :, -n:, -n:]
        np.testing.assert_allclose(got, right["attentions"][row, :, :, :n, :n], atol=TOL)
        logits = np.asarray(left["logits"])[row]
        expected = right["logits"][row]
        if logits.ndim == 2:  # [token, vocab]
            logits, expected = logits[-n:], expected[:n]
        np.testing.assert_allclose(logits, expected, atol=TOL)


@pytest.mark.parametrize("case", XLNET_CASES)
def test_xlnet_segments(case, tmp_root, record_property):
    """With token_type_ids (pair segments, `<cls>` segment 2) the segment term matches too; it
    changes the outputs, so the default (no token_type_ids, as the tokenizer gives) is tested
    against the right reference."""
    ref, plain, loaded = run(case, tmp_root)
    typed = loaded.model(
        ref["typed_input_ids"], ref["typed_attention_mask"], ref["typed_token_type_ids"]
    )
    for key, diff in _xlnet_diffs(typed, ref, "typed_").items():
        record_property(f"typed_max_abs_diff_{key}", diff)
        assert diff <= TOL, (key, diff)
    real = ref["attention_mask"].astype(bool)[:, None, :, None]
    changed = np.abs(np.asarray(typed["hidden_states"]) - plain["hidden_states"]) * real
    assert changed.max() > 1e-3, "the segment term has an effect"


def test_xlnet_tokens_end_with_sep_cls_and_classifier_reads_cls(tmp_root):
    """`text <sep> <cls>`: the classifier reads the last real token, wherever the padding is."""
    from transformers import AutoTokenizer

    ref, out, loaded = run("tiny-xlnet-cls", tmp_root)
    tokenizer = AutoTokenizer.from_pretrained(ROOT / "tests/fixtures/tiny-xlnet-cls")
    assert tokenizer.padding_side == "left"
    lengths = ref["attention_mask"].sum(1)
    for row, n in enumerate(lengths):
        ids = ref["input_ids"][row, :n]
        assert ids[-2] == tokenizer.sep_token_id and ids[-1] == tokenizer.cls_token_id
    model = loaded.model
    hidden = out["hidden_states"][:, -1]  # [batch, token, d_model]
    cls = hidden[np.arange(len(lengths)), lengths - 1]
    head = model.classifier
    np.testing.assert_allclose(
        np.asarray(head.out(np.tanh(head.dense(cls)))), out["logits"], atol=1e-5
    )
    first = np.asarray(head.out(np.tanh(head.dense(hidden[:, 0]))))
    assert np.abs(first - out["logits"]).max() > 1e-3, "index 0 is not the classification token"


def test_xlnet_permutation_objective_matches_perm_mask_recipe(tmp_root, record_property):
    """The query stream for one target (perm_mask hides it, target_mapping selects it) gives the
    logits of transformers' recipe, through the right-padded batch."""
    ref, _, loaded = run("tiny-xlnet", tmp_root)
    out = loaded.model(
        ref["input_ids"], ref["attention_mask"], target_position=ref["perm_target_position"]
    )
    diff = float(np.abs(np.asarray(out["target_logits"]) - ref["perm_logits"]).max())
    record_property("permutation_max_abs_diff_logits", diff)
    print(f"tiny-xlnet permutation-lm target logits: max abs diff {diff:.3g}")
    assert diff <= TOL
    plain = loaded.model(ref["input_ids"], ref["attention_mask"])  # the content stream ...
    np.testing.assert_allclose(out["logits"].shape, plain["logits"].shape)
    rows = np.arange(len(ref["perm_target_position"]))
    content = np.asarray(plain["logits"])[rows, ref["perm_target_position"]]
    assert np.abs(content - ref["perm_logits"]).max() > 1e-2  # ... sees the target: it differs
