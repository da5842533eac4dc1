"""Chart data a page loads on demand: `data/NAME.js` classic scripts beside the pages.

A page too heavy to embed all its chart data (every head of every showcase example) keeps the
data of one view per file. Each file is one statement, `window.Atlas.provide("NAME", DATA);`,
with DATA serialised by `script_json` (the same JSON as the embedded blocks), so it loads from
file:// and over HTTP as a plain `<script src>` under the pages' CSP (`script-src 'self'`): no
fetch, no inline script. `Atlas.loadData(NAME)` in atlas.js injects the script once and
resolves with DATA.
"""

from __future__ import annotations

import json
from pathlib import Path

from generator.render.embed import script_json

DATA_DIR = "data"  # beside the pages of a model folder


def data_path(name: str) -> str:
    """Return the path of data file `name`, relative to the model folder."""
    return f"{DATA_DIR}/{name}.js"


def data_script(name: str, value: object) -> str:
    """Return the text of data file `name`: one call registering `value` with the page."""
    return f"window.Atlas.provide({json.dumps(name)}, {script_json(value)});\n"


def write_data_files(folder: Path, files: dict[str, object]) -> None:
    """Write each {name: value} as `folder/data/NAME.js`."""
    if not files:
        return
    target = folder / DATA_DIR
    target.mkdir(parents=True, exist_ok=True)
    for name, value in files.items():
        (target / f"{name}.js").write_text(data_script(name, value), encoding="utf-8")
