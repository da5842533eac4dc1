"""`BuildOptions`: the flags of one build, passed as one object from the CLI to the extract steps."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    """How to build (not what: that is the card). Every field is a CLI flag of `build`.

    Attributes:
        force: recompute every stage even when its inputs are unchanged.
        strict: turn warnings (e.g. truncated texts) into a failure before anything is written.
        progress: draw progress bars on stderr.
        allow_pickle: read a pytorch_model.bin checkpoint without safetensors (without running
            its code).
        base_url: the hosted site's root, making the card snippets' links absolute.
        notify: receives one-line notes for the user as they come (the memory estimate).
    """

    force: bool = False
    strict: bool = False
    progress: bool = True
    allow_pickle: bool = False
    base_url: str | None = None
    notify: Callable[[str], None] | None = None

    @classmethod
    def of(cls, options: BuildOptions | None = None, **flags) -> BuildOptions:
        """Return `options` (default: all defaults) with the keyword `flags` set on top.

        The public functions (`build_cards`, `extract_card`, `render_card`, `extract`) accept
        both forms, so `build_cards(cards, out, artifacts, strict=True, progress=False)` keeps
        working; an unknown flag is a TypeError naming it.
        """
        options = options if options is not None else cls()
        if not isinstance(options, cls):  # e.g. the old positional `force`
            raise TypeError(f"options must be a BuildOptions, not {options!r}")
        return dataclasses.replace(options, **flags) if flags else options
