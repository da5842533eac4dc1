"""The hub card's own metadata: license, base_model, datasets, language from README.md's YAML.

A checkpoint published on the Hugging Face hub carries a README.md whose YAML front matter
states facts the overview page shows when present. Only these four keys are read, each a string
or a list of strings (anything else is left out); the README's prose is never read.
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

log = logging.getLogger(__name__)

HUB_CARD_NAME = "README.md"
HUB_CARD_KEYS = ("license", "base_model", "datasets", "language")
MAX_BYTES = 1 << 20  # a README larger than this is not read


def read_hub_card(model_dir: Path) -> dict[str, list[str]]:
    """Return the hub card's metadata in `model_dir`, each key as a list of strings.

    Args:
        model_dir: the checkpoint folder.

    Returns:
        {key: [values]} for the keys of HUB_CARD_KEYS the README.md front matter sets (in that
        order); {} without a README.md, front matter or any of those keys.
    """
    path = Path(model_dir) / HUB_CARD_NAME
    try:
        if not path.is_file() or path.stat().st_size > MAX_BYTES:
            return {}
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return {}
    lines = text.replace("\r\n", "\n").split("\n")
    if not lines or lines[0].rstrip() != "---":
        return {}
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), None)
    if end is None:
        return {}
    try:
        data = yaml.safe_load("\n".join(lines[1:end]))
    except (yaml.YAMLError, ValueError, RecursionError) as error:
        log.warning("%s: front matter is not valid YAML (%s); hub card ignored", path, error)
        return {}
    if not isinstance(data, dict):
        return {}
    found = {}
    for key in HUB_CARD_KEYS:
        values = strings(data.get(key))
        if values:
            found[key] = values
    return found


def strings(value) -> list[str]:
    """Return a string or list of strings as a list of non-empty strings; else []."""
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) for item in items):
        return []
    return [item.strip() for item in items if item.strip()]
