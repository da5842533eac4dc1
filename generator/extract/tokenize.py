"""Tokenise a corpus with the checkpoint's own tokenizer, truncating to `max_length`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generator.errors import ModelLoadError

log = logging.getLogger(__name__)

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "tokenizer.model",
    "added_tokens.json",
)


def tokenizer_files(model_dir: Path) -> list[Path]:
    """Return the tokenizer files present in a checkpoint folder."""
    return [model_dir / name for name in TOKENIZER_FILES if (model_dir / name).is_file()]


def load_tokenizer(model_dir: Path):
    """Load the checkpoint's tokenizer from its folder, never from the network."""
    from transformers import AutoTokenizer

    if not tokenizer_files(model_dir):
        raise ModelLoadError(
            f"no tokenizer files in {model_dir}; save the tokenizer next to the weights "
            "(tokenizer.save_pretrained)"
        )
    try:
        return AutoTokenizer.from_pretrained(
            str(model_dir), local_files_only=True, trust_remote_code=False
        )
    except Exception as error:  # transformers raises many types here
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelLoadError(f"cannot load the tokenizer in {model_dir}: {first}") from error


@dataclass(frozen=True)
class TokenizedCorpus:
    """Token ids per text (ragged), with truncation bookkeeping."""

    ids: tuple[np.ndarray, ...]  # each [token] int32, special tokens included
    full_lengths: np.ndarray  # [text] length before truncation
    max_length: int

    @property
    def lengths(self) -> np.ndarray:
        """Return the [text] token counts after truncation."""
        return np.array([len(ids) for ids in self.ids], dtype=np.int32)

    @property
    def truncated(self) -> int:
        """Return how many texts lost tokens to `max_length`."""
        return int(np.sum(self.full_lengths > self.max_length))


def tokenize_corpus(tokenizer, texts: list[str], max_length: int) -> TokenizedCorpus:
    """Tokenise every text, truncating to `max_length` tokens (special tokens included)."""
    full = tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
    cut = tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=max_length)
    ids = tuple(np.asarray(row, dtype=np.int32) for row in cut["input_ids"])
    full_lengths = np.array([len(row) for row in full], dtype=np.int32)
    return TokenizedCorpus(ids=ids, full_lengths=full_lengths, max_length=max_length)


def token_strings(tokenizer, ids: np.ndarray) -> list[str]:
    """Return the token strings for one row of ids."""
    return [str(token) for token in tokenizer.convert_ids_to_tokens([int(i) for i in ids])]
