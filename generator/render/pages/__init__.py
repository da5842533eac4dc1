"""Pages of a model folder: one module per page, each a pure context builder.

A page module defines `PAGE = Page(...)`; `PAGES` lists them in navigation order. To add a page:
write `pages/NAME.py` with a context function, a template `templates/model_NAME.html`, and
(optionally) a script `templates/assets/NAME.js`, then append it below.
"""

from __future__ import annotations

from generator.render.pages.activations import PAGE as ACTIVATIONS
from generator.render.pages.attention import PAGE as ATTENTION
from generator.render.pages.attributions import PAGE as ATTRIBUTIONS
from generator.render.pages.common import Page, chart
from generator.render.pages.heads import PAGE as HEADS
from generator.render.pages.overview import PAGE as OVERVIEW
from generator.render.pages.representations import PAGE as REPRESENTATIONS
from generator.render.pages.weights import PAGE as WEIGHTS

PAGES: tuple[Page, ...] = (
    OVERVIEW,
    ATTENTION,
    HEADS,
    REPRESENTATIONS,
    WEIGHTS,
    ACTIVATIONS,
    ATTRIBUTIONS,
)

__all__ = ["PAGES", "Page", "chart"]
