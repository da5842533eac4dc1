"""User-facing errors: one clear line naming the problem and the fix."""

from __future__ import annotations

import click


def one_line(text: str) -> str:
    """Return `text` with its line breaks (and the blanks around them) folded into single spaces."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


class AtlasError(click.ClickException):
    """Base class of every error a user can cause; the CLI prints its one-line message."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class CardError(AtlasError):
    """The model card is missing, unreadable or invalid."""


class CorpusError(AtlasError):
    """The corpus is missing, empty or malformed."""


class ModelLoadError(AtlasError):
    """The checkpoint cannot be found, read or mapped onto our architecture."""


class ArtifactError(AtlasError):
    """The artifact store is missing, corrupt or from an incompatible version."""


class StrictModeError(AtlasError):
    """A warning was raised while `--strict` makes warnings fatal."""


def warn(message: str, warnings: list[str], strict: bool) -> None:
    """Record a warning, or fail at once under --strict."""
    if strict:
        raise StrictModeError(f"--strict: {message}")
    warnings.append(message)
