"""Make the T5 test fixtures: two tiny random T5 checkpoints and PyTorch reference outputs.

Like scripts/make_fixtures.py this needs PyTorch and runs in the separate reference venv:

    .venv-ref/bin/python scripts/make_fixtures_t5.py

It writes (deterministically; rerunning rewrites identical files):

    tests/fixtures/tiny-t5/              T5 v1.0 style: ReLU MLP, lm_head tied to the embedding
    tests/fixtures/tiny-t5-v1_1/         T5 v1.1 style: gated-GELU MLP, untied lm_head, d_kv *
                                         heads != d_model, more decoder than encoder layers
    tests/fixtures/parity/tiny-t5*.npz   reference outputs of each model
    tests/fixtures/parity/t5-buckets.npz relative-position buckets of transformers' T5Attention
    tests/fixtures/parity/meta-t5.json   inputs, versions and shapes

Each model .npz holds int32 input_ids, attention_mask [batch, token], decoder_input_ids,
decoder_attention_mask [batch, decoder token] (the targets shifted right, as `labels` would
give), and float32 encoder_hidden_states [batch, layer(L+1), token, d_model],
encoder_attentions [batch, layer, head, query, key], decoder_hidden_states, decoder_attentions,
cross_attentions [batch, decoder layer, head, decoder token, encoder token], logits
[batch, decoder token, vocab], plus greedy_ids [batch, 1 + max_new_tokens] from
`generate(do_sample=False, num_beams=1)` (decoder start token first, pad after </s>).
"""

from __future__ import annotations

import json
import math
import re
import string
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import tokenizers
import torch
import transformers
from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration, T5Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import TRAINING_TEXT, save_npz  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
PARITY_DIR = FIXTURES / "parity"
DEMO_CORPUS = ROOT / "generator" / "data" / "demo_corpus.jsonl"

VOCAB_SIZE = 320
GREEDY_STEPS = 12

VARIANTS = {
    "tiny-t5": dict(
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=16,
        feed_forward_proj="relu",
        tie_word_embeddings=True,
    ),
    "tiny-t5-v1_1": dict(
        d_model=32,
        d_kv=6,
        d_ff=40,
        num_layers=2,
        num_decoder_layers=3,
        num_heads=4,
        relative_attention_num_buckets=16,
        relative_attention_max_distance=24,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
    ),
}

# (encoder text, target text): lengths straddle the bucket distances, one very short pair.
INPUTS = [
    ("The cat sat on the mat.", "A cat is on the mat."),
    (
        "We walked to the market to buy apples, bread and milk before the rain.",
        "We bought food at the market before the rain.",
    ),
    ("Hello!", "Hi."),
    ("The bank raised its mortgage rate by a quarter point on Monday.", "Rates went up."),
]


def demo_texts() -> list[str]:
    """Return the texts of the bundled demo corpus (the tiny tokenizer should cover them)."""
    lines = DEMO_CORPUS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


def build_unigram_vocab(size: int) -> list[tuple[str, float]]:
    """Return a Unigram vocabulary [(piece, log-probability)]: specials, characters, pieces.

    Counted here rather than learned with UnigramTrainer so reruns give identical files. Every
    printable ASCII character (and those of the demo corpus) is a piece, so nothing maps to
    <unk>; the other pieces are the word pieces (2 to 8 characters, "▁" marking a word start)
    that save the most tokens over the training text and the demo corpus.
    """
    text = TRAINING_TEXT + "\n" + "\n".join(demo_texts())
    specials = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    chars = sorted(set(string.ascii_letters + string.digits + string.punctuation) | set(text))
    base = [("▁", -3.0)] + [(c, -14.0) for c in chars if not c.isspace()]
    candidates: Counter[str] = Counter()
    for word, count in Counter(re.findall(r"[A-Za-z]+", text)).items():
        marked = f"▁{word}"
        for start in range(len(marked)):
            for end in range(start + 2, min(len(marked), start + 8) + 1):
                candidates[marked[start:end]] += count
    total = sum(candidates.values())
    room = size - len(specials) - len(base)
    ranked = sorted(candidates, key=lambda p: (-candidates[p] * (len(p) - 1), p))[:room]
    return specials + base + [(p, math.log(candidates[p] / total)) for p in ranked]


def make_tokenizer(model_max_length: int = 512) -> T5Tokenizer:
    """Build the tiny T5 (Unigram, Metaspace) tokenizer with no sentinel tokens."""
    tokenizer = T5Tokenizer(vocab=build_unigram_vocab(VOCAB_SIZE), extra_ids=0)
    tokenizer.model_max_length = model_max_length
    return tokenizer


def make_model(name: str, out_dir: Path) -> None:
    """Build one tiny random T5 and its tokenizer and save both into `out_dir`."""
    settings = VARIANTS[name]
    tokenizer = make_tokenizer()
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=VOCAB_SIZE,
        decoder_start_token_id=tokenizer.pad_token_id,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **settings,
    )
    model = T5ForConditionalGeneration(config).eval()
    with torch.no_grad():  # HF sets every norm weight to 1: perturb them so they matter
        for param_name, param in model.named_parameters():
            if "layer_norm" in param_name:
                param.copy_(1.0 + 0.2 * torch.randn_like(param))
        if not settings["tie_word_embeddings"]:
            # transformers 5 ties lm_head to `shared` whatever the config says; untie it.
            model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.shared.weight))

    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.iterdir():
        stale.unlink()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    if not settings["tie_word_embeddings"]:
        # save_pretrained writes tie_word_embeddings: true even for an untied model (transformers
        # 5 keeps scale_decoder_outputs: false); restore the key real v1.1 checkpoints carry.
        path = out_dir / "config.json"
        config_dict = json.loads(path.read_text(encoding="utf-8"))
        config_dict["tie_word_embeddings"] = False
        path.write_text(json.dumps(config_dict, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def pad_batch(rows: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token id lists into [batch, token] int32 ids and mask."""
    width = max(len(row) for row in rows)
    ids = np.full((len(rows), width), pad_id, np.int32)
    mask = np.zeros((len(rows), width), np.int32)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask


def reference_outputs(model_dir: Path) -> dict[str, np.ndarray]:
    """Run PyTorch transformers on INPUTS and return inputs and outputs as numpy arrays."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = T5ForConditionalGeneration.from_pretrained(
        model_dir, attn_implementation="eager"
    ).eval()
    start = model.config.decoder_start_token_id
    sources = [tokenizer(text)["input_ids"] for text, _ in INPUTS]
    targets = [tokenizer(target)["input_ids"] for _, target in INPUTS]
    input_ids, attention_mask = pad_batch(sources, tokenizer.pad_token_id)
    shifted = [[start, *target[:-1]] for target in targets]  # what `labels` would feed
    decoder_input_ids, decoder_attention_mask = pad_batch(shifted, tokenizer.pad_token_id)

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).long()

    with torch.no_grad():
        out = model(
            input_ids=tensor(input_ids),
            attention_mask=tensor(attention_mask),
            decoder_input_ids=tensor(decoder_input_ids),
            decoder_attention_mask=tensor(decoder_attention_mask),
            output_hidden_states=True,
            output_attentions=True,
        )
        greedy = model.generate(
            input_ids=tensor(input_ids),
            attention_mask=tensor(attention_mask),
            max_new_tokens=GREEDY_STEPS,
            min_new_tokens=0,
            do_sample=False,
            num_beams=1,
            # transformers 5.23 sizes the decoder's KV cache by num_layers, not
            # num_decoder_layers (IndexError when they differ): recompute instead.
            use_cache=False,
        )
    greedy = greedy.numpy().astype(np.int32)
    if greedy.shape[1] < GREEDY_STEPS + 1:  # every row stopped early: pad to the full length
        pad = np.full((len(greedy), GREEDY_STEPS + 1 - greedy.shape[1]), model.config.pad_token_id)
        greedy = np.concatenate([greedy, pad.astype(np.int32)], axis=1)

    def stack(values) -> np.ndarray:
        return torch.stack(values, dim=1).float().numpy()

    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "decoder_input_ids": decoder_input_ids,
        "decoder_attention_mask": decoder_attention_mask,
        "encoder_hidden_states": stack(out.encoder_hidden_states),
        "encoder_attentions": stack(out.encoder_attentions),
        "decoder_hidden_states": stack(out.decoder_hidden_states),
        "decoder_attentions": stack(out.decoder_attentions),
        "cross_attentions": stack(out.cross_attentions),
        "logits": out.logits.float().numpy(),
        "greedy_ids": greedy,
    }


def bucket_reference() -> dict[str, np.ndarray]:
    """Return transformers' relative-position buckets for -70..70 under several settings."""
    from transformers.models.t5.modeling_t5 import T5Attention

    relative = torch.arange(-70, 71)
    arrays = {"relative_position": relative.numpy().astype(np.int32)}
    for buckets, distance in ((8, 16), (16, 24), (32, 128)):
        for bidirectional in (True, False):
            key = f"buckets_{buckets}_{distance}_{'bi' if bidirectional else 'uni'}"
            values = T5Attention._relative_position_bucket(
                relative, bidirectional=bidirectional, num_buckets=buckets, max_distance=distance
            )
            arrays[key] = values.numpy().astype(np.int32)
    return arrays


def main() -> None:
    """Write both tiny checkpoints and their parity fixtures."""
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    PARITY_DIR.mkdir(parents=True, exist_ok=True)
    meta = {
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
        },
        "models": {},
    }
    for name in VARIANTS:
        model_dir = FIXTURES / name
        make_model(name, model_dir)
        arrays = reference_outputs(model_dir)
        save_npz(PARITY_DIR / f"{name}.npz", arrays)
        size = sum(p.stat().st_size for p in model_dir.iterdir())
        meta["models"][name] = {
            "model": f"tests/fixtures/{name}",
            "inputs": [{"text": text, "target": target} for text, target in INPUTS],
            "greedy_steps": GREEDY_STEPS,
            "shapes": {key: list(value.shape) for key, value in arrays.items()},
        }
        print(
            f"{name} ({size / 1024:.0f} KiB): "
            + ", ".join(f"{k} {list(v.shape)}" for k, v in arrays.items())
        )
        print(f"  greedy: {arrays['greedy_ids'].tolist()}")
    save_npz(PARITY_DIR / "t5-buckets.npz", bucket_reference())
    (PARITY_DIR / "meta-t5.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
