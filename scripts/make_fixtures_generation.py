"""Reference greedy generations of the tiny decoders and T5s, from PyTorch `transformers`.

Needs PyTorch; runs in the reference venv (never in the default test run):

    /work/ref-venv/bin/python scripts/make_fixtures_generation.py

Writes tests/fixtures/parity/generation.npz. For each fixture NAME (tiny-gpt2, tiny-llama,
tiny-mistral, tiny-qwen2, tiny-t5, tiny-t5-v1_1) and each of PROMPTS random prompts (fixed
seed, different lengths), `generate(do_sample=False, num_beams=1)` runs on the prompt alone
(batch of one, no padding), for STEPS new tokens, stopping at the model's end-of-sequence id:

    NAME/prompt_ids      [prompt, token] int32, right-padded with 0
    NAME/prompt_lengths  [prompt] int32
    NAME/greedy_ids      [prompt, step] int32 generated tokens (-1 after the end)
    NAME/top_ids         [prompt, step, k] int32 the step's 10 most probable next tokens
    NAME/top_probs       [prompt, step, k] float32 their softmax probabilities
    NAME/margin          [prompt, step] float32 top-1 minus top-2 logit (near-ties: small)
    NAME/eos_token_id    [] int32 (-1: none)

Decoder-only prompts are the whole input; T5 prompts are the encoder input and the decoder
starts at its decoder_start_token_id.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
OUT = FIXTURES / "parity" / "generation.npz"
DECODERS = ("tiny-gpt2", "tiny-llama", "tiny-mistral", "tiny-qwen2")
SEQ2SEQ = ("tiny-t5", "tiny-t5-v1_1")
PROMPT_LENGTHS = (7, 3, 5)
STEPS = 8
TOP_K = 10
SEED = 14


def prompts(vocab: int, seed: int) -> list[np.ndarray]:
    """Random prompts of PROMPT_LENGTHS tokens, ids from 3 (past the usual special ids)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(3, vocab, n).astype(np.int64) for n in PROMPT_LENGTHS]


def reference(name: str, seq2seq: bool) -> dict[str, np.ndarray]:
    """Generate from every prompt of one fixture; return its arrays."""
    loader = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    model = loader.from_pretrained(FIXTURES / name, dtype=torch.float32).eval()
    eos = model.generation_config.eos_token_id
    eos = eos[0] if isinstance(eos, list) else eos
    rows = prompts(model.config.vocab_size, SEED)
    greedy = np.full((len(rows), STEPS), -1, np.int32)
    top_ids = np.zeros((len(rows), STEPS, TOP_K), np.int32)
    top_probs = np.zeros((len(rows), STEPS, TOP_K), np.float32)
    margin = np.zeros((len(rows), STEPS), np.float32)
    for r, prompt in enumerate(rows):
        ids = torch.tensor(prompt[None])
        with torch.no_grad():
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                num_beams=1,
                max_new_tokens=STEPS,
                min_new_tokens=0,
                eos_token_id=eos,
                pad_token_id=eos if eos is not None else 0,
                output_logits=True,
                use_cache=not seq2seq,  # transformers 5.23 sizes the T5 cache by encoder layers
                return_dict_in_generate=True,
            )
        new = out.sequences[0, 1:] if seq2seq else out.sequences[0, len(prompt) :]
        for s, logits in enumerate(out.logits):
            scores = logits[0].float()
            probs = torch.softmax(scores, dim=-1)
            values, order = torch.topk(probs, TOP_K)
            top_ids[r, s], top_probs[r, s] = order.numpy(), values.numpy()
            two = torch.topk(scores, 2).values
            margin[r, s] = float(two[0] - two[1])
            greedy[r, s] = int(new[s])
    padded = np.zeros((len(rows), max(PROMPT_LENGTHS)), np.int32)
    for r, prompt in enumerate(rows):
        padded[r, : len(prompt)] = prompt
    return {
        "prompt_ids": padded,
        "prompt_lengths": np.array(PROMPT_LENGTHS, np.int32),
        "greedy_ids": greedy,
        "top_ids": top_ids,
        "top_probs": top_probs,
        "margin": margin,
        "eos_token_id": np.array(-1 if eos is None else eos, np.int32),
    }


def main() -> None:
    """Write the reference arrays of every fixture."""
    arrays = {}
    for name in DECODERS + SEQ2SEQ:
        for key, value in reference(name, name in SEQ2SEQ).items():
            arrays[f"{name}/{key}"] = value
        print(name, arrays[f"{name}/greedy_ids"].tolist(), arrays[f"{name}/margin"].min())
    np.savez(OUT, **arrays)


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
