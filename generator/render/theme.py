"""One chart theme for every page: fonts, sizes and colours shared by all chart builders."""

from __future__ import annotations

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"

CATEGORY_COLORS = [
    "#4c78a8",
    "#f58518",
    "#54a24b",
    "#e45756",
    "#72b7b2",
    "#b279a2",
    "#ff9da6",
    "#9d755d",
    "#bab0ac",
    "#eeca3b",
]

CONFIG = {
    "font": FONT,
    "background": None,
    "view": {"stroke": None},
    "axis": {"labelFontSize": 11, "titleFontSize": 12, "titleFontWeight": 600, "grid": False},
    "legend": {"labelFontSize": 11, "titleFontSize": 12, "orient": "bottom"},
    "title": {"fontSize": 14, "anchor": "start"},
    "range": {"category": CATEGORY_COLORS},
}


def themed(spec: dict) -> dict:
    """Return a Vega-Lite spec with the shared theme configuration merged in."""
    config = {**spec.get("config", {}), **CONFIG}
    return {**spec, "config": config, "background": None}
