"""Make the parameter-gradient reference fixture: PyTorch gradient norms of tiny checkpoints.

Runs in the PyTorch reference virtualenv (see make_fixtures.py), e.g.

    /work/ref-venv/bin/python scripts/make_gradient_fixtures.py

and writes tests/fixtures/parity/gradients-<fixture>.npz for each case below: the padded batch
(input_ids, attention_mask [text, token]; T5 also labels [text, target]; BERT masked-lm also
target_position, target_id [text], input_ids holding the mask token there), the loss of
`model(**batch, labels=labels)`, the L2 norm of the gradient of that loss for every parameter
of `model.named_parameters()` (names [tensor], base-model prefix stripped, grad_norms
[tensor]) and the gradient norm of each text's own loss over the whole model
(example_norms [text]). Models run in eval mode (no dropout), float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from make_fixtures_t5 import pad_batch as pad
from transformers import (
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
TEXTS = [
    "the cat sat on the mat and looked at the dog",
    "we walked to the market to buy apples, bread and milk before the rain started",
    "hello there",
    "she reads a book by the window when it rains",
]
TARGETS = ["a cat on a mat", "apples and bread", "hi", "reading by the window"]
PREFIXES = ("transformer.", "model.", "bert.")
CASES = {
    "tiny-gpt2": "causal-lm",
    "tiny-llama": "causal-lm",
    "tiny-bert-mlm": "masked-lm",
    "tiny-t5-v1_1": "seq2seq",
}
MODEL_CLASSES = {
    "causal-lm": AutoModelForCausalLM,
    "masked-lm": AutoModelForMaskedLM,
    "seq2seq": AutoModelForSeq2SeqLM,
}


def canonical(name: str) -> str:
    """Strip the base-model prefix of a parameter name."""
    for prefix in PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def batch_for(task: str, tokenizer) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Return (model inputs incl. labels, extra arrays to store) for a task."""
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    ids, mask = pad([tokenizer(text)["input_ids"] for text in TEXTS], pad_id)
    feed = {"input_ids": ids, "attention_mask": mask}
    extra: dict[str, np.ndarray] = {}
    if task == "causal-lm":
        feed["labels"] = np.where(mask == 1, ids, -100)
    elif task == "masked-lm":
        special = np.isin(ids, tokenizer.all_special_ids) | (mask == 0)
        position = np.array([np.flatnonzero(~s)[len(np.flatnonzero(~s)) // 2] for s in special])
        rows = np.arange(len(ids))
        target = ids[rows, position].copy()
        ids = ids.copy()
        ids[rows, position] = tokenizer.mask_token_id
        labels = np.full_like(ids, -100)
        labels[rows, position] = target
        feed = {"input_ids": ids, "attention_mask": mask, "labels": labels}
        extra = {"target_position": position.astype(np.int32), "target_id": target}
    else:  # seq2seq
        targets, target_mask = pad(
            [tokenizer(text)["input_ids"] for text in TARGETS], tokenizer.pad_token_id
        )
        feed["labels"] = np.where(target_mask == 1, targets, -100)
    return feed, extra


def loss_of(model, feed: dict[str, np.ndarray], rows=slice(None)) -> torch.Tensor:
    """Return the model's loss on the rows `rows` of a batch."""
    return model(**{k: torch.from_numpy(np.asarray(v[rows])).long() for k, v in feed.items()}).loss


def reference(fixture: str, task: str) -> dict[str, np.ndarray]:
    """Compute the reference arrays of one case."""
    folder = FIXTURES / fixture
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = MODEL_CLASSES[task].from_pretrained(folder, dtype=torch.float32).eval()
    feed, extra = batch_for(task, tokenizer)
    named = list(model.named_parameters())
    model.zero_grad()
    loss = loss_of(model, feed)
    loss.backward()
    norms = {canonical(name): float(p.grad.double().norm()) for name, p in named}
    example = []
    for i in range(len(feed["input_ids"])):
        model.zero_grad()
        loss_of(model, feed, slice(i, i + 1)).backward()
        example.append(np.sqrt(sum(float(p.grad.double().square().sum()) for _, p in named)))
    names = sorted(norms)
    return {
        **{k: np.asarray(v, np.int32) for k, v in feed.items()},
        **extra,
        "loss": np.float64(loss.item()),
        "names": np.array(names),
        "grad_norms": np.array([norms[n] for n in names]),
        "example_norms": np.array(example),
    }


def main() -> None:
    """Write every case's fixture file."""
    torch.manual_seed(0)
    for fixture, task in CASES.items():
        arrays = reference(fixture, task)
        path = FIXTURES / "parity" / f"gradients-{fixture}.npz"
        np.savez_compressed(path, **arrays)
        print(
            f"{path.relative_to(ROOT)}: loss {float(arrays['loss']):.6f}, "
            f"{len(arrays['names'])} tensors"
        )


if __name__ == "__main__":
    main()
