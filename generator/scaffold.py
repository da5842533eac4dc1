"""`modelatlas new-card MODEL`: scaffold a model card from a checkpoint folder's config.json.

The card's prose states only facts read from config.json (model type, layers, heads, widths,
vocabulary); everything an author should add (what the model was trained on and for) is left to
them, with hints as YAML comments in the front matter, which the site never shows.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import yaml

from generator.card import SLUG, ModelCard, parse_card_text
from generator.errors import CardError
from generator.models.config import ModelConfig
from generator.paths import is_package_path, resolve_package_path
from generator.render.snippet import escape_md

OPTIONAL_KEYS = """\
# Optional settings (see README, "Model cards"); uncomment and edit what applies:
# text_field: text          # JSONL key / CSV column holding the text
# label_field: label        # JSONL key / CSV column holding a label
# split_field: split        # train / validation / test
# max_length: 128           # tokens per text; longer texts are truncated
# showcase: 8               # examples that keep full per-token captures
# pooling: mean             # mean | cls | last
# task: embedding           # embedding | masked-lm | causal-lm | permutation-lm | classification | seq2seq
"""


def model_folder(model: str) -> Path:
    """Resolve MODEL (a folder or `package:MODULE/SUBDIR`) to a checkpoint folder with config.json."""
    try:
        folder = resolve_package_path(model) if is_package_path(model) else Path(model)
    except (FileNotFoundError, ImportError, ValueError) as error:
        raise CardError(f"{model}: {error}") from None
    if not (folder / "config.json").is_file():
        raise CardError(
            f"{model}: no config.json in {folder}; pass a checkpoint folder "
            "(config.json, tokenizer and safetensors weights)"
        )
    return folder


def read_config(folder: Path) -> tuple[dict, ModelConfig]:
    """Return config.json as a dict and as our ModelConfig (which checks it is supported)."""
    path = folder / "config.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CardError(
            f"{path} is not readable JSON ({error}); re-export the checkpoint"
        ) from None
    if not isinstance(raw, dict):
        raise CardError(f"{path} does not hold a JSON object; re-export the checkpoint")
    from generator.models.registry import parse_config  # imports the families (JAX)

    return raw, parse_config(raw)


def default_name(folder: Path) -> str:
    """Return a card name (slug) made from the folder name."""
    name = re.sub(r"[^a-z0-9._-]+", "-", folder.name.lower()).strip("-._")
    return name or "model"


def card_path_value(target: Path, card_folder: Path) -> str:
    """Return how the card should name a local path: relative when it stays loadable, else absolute."""
    target = target.resolve()
    relative = os.path.relpath(target, card_folder.resolve())
    inside = target.is_relative_to(card_folder.resolve()) or target.is_relative_to(Path.cwd())
    return Path(relative).as_posix() if inside else target.as_posix()


def prose(title: str, config: ModelConfig) -> str:
    """Return a prose stub made only of facts from config.json."""
    return (
        f"**{escape_md(title)}** is a `{config.model_type}` transformer (run by Model Atlas's "
        f"`{config.family}` implementation) with {config.n_layers} layers, {config.n_heads} "
        f"attention heads per layer (head width {config.d_head}), a hidden size (d_model) of "
        f"{config.d_model}, an MLP width of {config.d_mlp:,} and a vocabulary of "
        f"{config.vocab_size:,} tokens.{sharing(config)} These facts come from its "
        "`config.json`.\n"
    )


def sharing(config: ModelConfig) -> str:
    """Return the sentence on shared layer weights (ALBERT), or '' for other models."""
    blocks = config.n_weight_blocks
    if blocks == config.n_layers:
        return ""
    return (
        f" Its layers share weights: the {config.n_layers} layers apply {blocks} "
        f"block{'' if blocks == 1 else 's'} of weights, and its token embeddings of width "
        f"{config.embedding_size} are projected to d_model."
    )


def scaffold_card(
    model: str,
    out_dir: Path,
    name: str | None = None,
    *,
    corpus: str | None = None,
    title: str | None = None,
    force: bool = False,
) -> tuple[Path, ModelCard]:
    """Write `out_dir/NAME.md` for the checkpoint MODEL and return its path and validated card.

    Args:
        model: checkpoint folder, or `package:MODULE/SUBDIR`.
        out_dir: folder of the new card (created if missing).
        name: card name (slug); default: made from the folder name.
        corpus: corpus file (.txt, .jsonl, .csv) to name in the card, if any.
        title: page title; default: the checkpoint folder's name.
        force: overwrite an existing card.

    Raises:
        CardError: no config.json, bad name, existing card without `force`, or the written
            card would not load (e.g. a missing corpus).
        ModelLoadError: config.json names an unsupported model_type.
    """
    folder = model_folder(model)
    _, config = read_config(folder)
    name = name or default_name(folder)
    if not SLUG.fullmatch(name):
        raise CardError(
            f"card name {name!r} is not a slug; use lowercase letters, digits, '.', '_' and '-'"
        )
    out_dir = Path(out_dir)
    path = out_dir / f"{name}.md"
    if path.exists() and not force:
        raise CardError(f"{path} already exists; pass --force to overwrite it or --name NAME")
    title = title or folder.name
    front: dict = {"name": name, "title": title}
    front["model"] = model if is_package_path(model) else card_path_value(folder, out_dir)
    if corpus:
        front["corpus"] = (
            corpus if is_package_path(corpus) else card_path_value(Path(corpus), out_dir)
        )
    text = (
        "---\n"
        + yaml.safe_dump(front, sort_keys=False, allow_unicode=True)
        + OPTIONAL_KEYS
        + "---\n"
        + prose(title, config)
    )
    card = parse_card_text(text, path)  # refuse to write a card that would not load
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path, card
