"""Serialise data for `<script type="application/json">` blocks so no text can close them."""

from __future__ import annotations

import json

from markupsafe import Markup

_UNSAFE = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def script_json(value: object) -> Markup:
    """Return compact JSON that is inert inside a script element (no `<`, `>`, `&` left).

    Object keys are sorted (byte-stable pages): anything whose order matters to a page script
    (columns, options) must be a list, never the key order of a mapping.
    """
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    for char, escaped in _UNSAFE.items():
        text = text.replace(char, escaped)
    return Markup(text)
