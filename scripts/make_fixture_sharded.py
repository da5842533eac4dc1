"""Write tests/fixtures/tiny-llama-sharded: tiny-llama saved by transformers in several shards.

Run with PyTorch's venv (`make fixtures` or /work/ref-venv/bin/python): the tiny Llama fixture is
loaded with `transformers` and saved again with `save_pretrained(max_shard_size=...)`, which writes
`model.safetensors.index.json` and `model-0000N-of-0000M.safetensors`, as hub checkpoints are
published. A README.md with hub-card YAML metadata (license, base_model, datasets, language) is
added so the overview page's hub-card facts are tested too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from transformers import AutoModelForCausalLM

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
SOURCE = FIXTURES / "tiny-llama"
TARGET = FIXTURES / "tiny-llama-sharded"
MAX_SHARD_SIZE = "60KB"  # the 175 KB checkpoint in 3 shards or more
README = """\
---
license: apache-2.0
base_model: tests/tiny-llama
datasets:
- tests/corpus-small
language:
- en
tags:
- tiny
---
# tiny-llama-sharded

The tiny random Llama of the test fixtures, saved in shards by `save_pretrained`.
"""


def main() -> None:
    """Save tiny-llama sharded, with its tokenizer files and a hub README."""
    model = AutoModelForCausalLM.from_pretrained(SOURCE)
    if TARGET.exists():
        shutil.rmtree(TARGET)
    model.save_pretrained(TARGET, max_shard_size=MAX_SHARD_SIZE)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(SOURCE / name, TARGET / name)
    (TARGET / "README.md").write_text(README, encoding="utf-8")
    shards = sorted(p.name for p in TARGET.glob("model-*.safetensors"))
    print(f"{TARGET}: {len(shards)} shards: {', '.join(shards)}")


if __name__ == "__main__":
    main()
