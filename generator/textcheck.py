"""Characters that no page, JSON file or SVG can carry faithfully: refused at the input."""

from __future__ import annotations

import re

# NUL (dropped by HTML parsers, forbidden in XML) and lone UTF-16 surrogates (not encodable as
# UTF-8; they come from broken `\uD800`-style escapes in JSON or YAML).
_UNUSABLE = re.compile("[\x00\ud800-\udfff]")


def unusable_character(value: str) -> str | None:
    """Describe the first NUL or unpaired surrogate in `value`, or return None when there is none."""
    match = _UNUSABLE.search(value)
    if match is None:
        return None
    char = match.group()
    if char == "\x00":
        return "a NUL character"
    return f"an unpaired surrogate \\u{ord(char):04x} (a broken \\u escape)"
