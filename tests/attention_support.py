"""The attention page's data as one dict again: the embedded JSON plus its data files.

The page embeds the examples' tokens and settings; each head's maps and each example's
layer x head grid are `data/*.js` files (generator/render/pages/attention_files.py). Tests that
compare the page's data with the artifacts read it back whole through these helpers.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from test_render import parse

PROVIDE = re.compile(r'^window\.Atlas\.provide\(("[^"]+"), (.*)\);\n\Z', re.S)


def read_data_file(folder: Path, name: str) -> object:
    """Return the data a model folder's `data/NAME.js` registers (checking its one statement)."""
    text = (Path(folder) / "data" / f"{name}.js").read_text(encoding="utf-8")
    match = PROVIDE.match(text)
    assert match and json.loads(match.group(1)) == name, f"data/{name}.js: unexpected form"
    return json.loads(match.group(2))


def embedded(folder: Path, page: str = "attention.html") -> dict:
    """Return {id: text} of the JSON blocks of a page of a model folder."""
    return {a.get("id"): text for a, text in parse(Path(folder) / page).scripts}


def _joined(folder: Path, example: int, kind: dict, n_heads: int, field: str) -> str:
    """Return the base64 of one example's [layer, head, q, k] maps of `field`, from its files."""
    names = [
        f"attention-{example}-{kind['id']}-{layer}-{head}"
        for layer in range(kind["n_layers"])
        for head in range(n_heads)
    ]
    parts = [base64.b64decode(read_data_file(folder, name)[field]) for name in names]
    return base64.b64encode(b"".join(parts)).decode("ascii")


def attention_data(folder: Path) -> dict:
    """Return the attention page's data with each example's packed `weights` per kind."""
    data = json.loads(embedded(folder)["attention-data"])
    for example, item in enumerate(data["examples"]):
        item["weights"] = {
            kind["id"]: _joined(folder, example, kind, data["n_heads"], "weights")
            for kind in data["kinds"]
        }
    return data


def scores_data(folder: Path) -> dict:
    """Return the attention page's scores data with each example's packed `values` per kind."""
    data = json.loads(embedded(folder)["scores-data"])
    for example, packed in enumerate(data["scores"]):
        for kind in data["kinds"]:
            values = _joined(folder, example, kind, data["n_heads"], "scores")
            packed[kind["id"]]["values"] = values
    return data
