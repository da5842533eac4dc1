"""The Jinja2 environment: templates from the package, autoescape on, StrictUndefined."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup

from generator.render.embed import script_json

# No request leaves the page: everything is 'self' (the model folder) or inline data.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'none'; base-uri 'none'; form-action 'none'"
)


def templates_dir() -> Path:
    """Return the templates folder: inside the installed wheel, or the repo's top-level one."""
    packaged = Path(__file__).resolve().parent.parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"


@lru_cache(maxsize=1)
def markdown() -> MarkdownIt:
    """CommonMark without raw HTML or images: card prose can neither run code nor fetch anything."""
    return MarkdownIt("commonmark", {"html": False}).disable("image")


def render_markdown(text: str) -> Markup:
    """Render card prose to safe HTML."""
    return Markup(markdown().render(text))


def environment() -> jinja2.Environment:
    """Build the Jinja2 environment used for every page."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["script_json"] = script_json
    env.filters["markdown"] = render_markdown
    env.filters["thousands"] = lambda n: f"{int(n):,}"
    env.globals["csp"] = CSP
    return env
