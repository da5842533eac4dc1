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

from generator.card import HUB_ID, SLUG, ModelCard, parse_card_text
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


DEMO_CORPUS = "package:generator/data/demo_corpus.jsonl"
DEMO_FIELDS = {"label_field": "label", "split_field": "split"}


def is_hub_model(model: str) -> bool:
    """Return True when MODEL reads as a hub id (org/name) and is no local folder."""
    return bool(HUB_ID.fullmatch(model)) and not Path(model).exists()


def model_folder(model: str) -> Path:
    """Resolve MODEL (a folder, `package:MODULE/SUBDIR` or hub id) to a folder with config.json.

    For a hub id only config.json is downloaded (the rest comes at build time).
    """
    if is_hub_model(model):
        from generator.extract.source import download_config

        return download_config(model, None).parent
    try:
        folder = resolve_package_path(model) if is_package_path(model) else Path(model)
    except (FileNotFoundError, ImportError, ValueError) as error:
        raise CardError(f"{model}: {error}") from None
    if not (folder / "config.json").is_file():
        raise CardError(
            f"{model}: no config.json in {folder}; pass a checkpoint folder "
            "(config.json, tokenizer and safetensors weights) or a hub id like org/name"
        )
    return folder


def model_label(model: str, folder: Path) -> str:
    """Return the name a model goes by: the hub id's name part, else the folder's name."""
    return model.rsplit("/", 1)[-1] if is_hub_model(model) else folder.name


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


def default_name(label: str) -> str:
    """Return a card name (slug) made from a folder or model name."""
    name = re.sub(r"[^a-z0-9._-]+", "-", label.lower()).strip("-._")
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
        model: checkpoint folder, `package:MODULE/SUBDIR`, or a hub id (only its config.json
            is downloaded).
        out_dir: folder of the new card (created if missing).
        name: card name (slug); default: made from the folder (or hub model) name.
        corpus: corpus file (.txt, .jsonl, .csv) to name in the card, if any.
        title: page title; default: the checkpoint folder's (or hub model's) name.
        force: overwrite an existing card.

    Raises:
        CardError: no config.json, bad name, existing card without `force`, or the written
            card would not load (e.g. a missing corpus).
        ModelLoadError: config.json names an unsupported model_type, or the hub download failed.
    """
    out_dir = Path(out_dir)
    text, card = card_text(model, out_dir, name=name, corpus=corpus, title=title)
    if card.path.exists() and not force:
        raise CardError(f"{card.path} already exists; pass --force to overwrite it or --name NAME")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{card.name}.md"
    path.write_text(text, encoding="utf-8")
    return path, card


def card_for_model(model: str, corpus: str | None = None) -> ModelCard:
    """Return an unwritten card for `build --model`: the bundled demo corpus unless one is given.

    Args:
        model: checkpoint folder, `package:MODULE/SUBDIR` or hub id.
        corpus: corpus file; None for the demo corpus (with its labels and splits).

    Returns:
        The validated card, as if written to ./NAME.md.
    """
    extra = {} if corpus else DEMO_FIELDS
    _, card = card_text(model, Path.cwd(), corpus=corpus or DEMO_CORPUS, settings=extra)
    return card


def card_text(
    model: str,
    out_dir: Path,
    name: str | None = None,
    *,
    corpus: str | None = None,
    title: str | None = None,
    settings: dict | None = None,
) -> tuple[str, ModelCard]:
    """Return the text of a card for MODEL in `out_dir` and the card it parses to."""
    folder = model_folder(model)
    _, config = read_config(folder)
    label = model_label(model, folder)
    name = name or default_name(label)
    if not SLUG.fullmatch(name):
        raise CardError(
            f"card name {name!r} is not a slug; use lowercase letters, digits, '.', '_' and '-'"
        )
    title = title or label
    front: dict = {"name": name, "title": title}
    local = not (is_package_path(model) or is_hub_model(model))
    front["model"] = card_path_value(folder, out_dir) if local else model
    if corpus:
        front["corpus"] = (
            corpus if is_package_path(corpus) else card_path_value(Path(corpus), out_dir)
        )
    front.update(settings or {})
    text = (
        "---\n"
        + yaml.safe_dump(front, sort_keys=False, allow_unicode=True)
        + OPTIONAL_KEYS
        + "---\n"
        + prose(title, config)
    )
    return text, parse_card_text(text, out_dir / f"{name}.md")  # refuse a card that won't load
