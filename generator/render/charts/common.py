"""What every chart builder shares: the one theme, and the schema check the tests turn on."""

from __future__ import annotations

import os

import altair as alt

from generator.render.theme import themed

# Altair checks every chart against the Vega-Lite JSON schema while it writes the spec: 1.3 s
# of the default site's 10.2 s re-render (jsonschema), for specs that this package's code
# builds, not users. The test suite checks them (tests/conftest.py sets this variable); builds
# skip it.
CHECK_CHARTS = "MODELATLAS_CHECK_CHARTS"


def to_spec(chart: alt.TopLevelMixin) -> dict:
    """Return an Altair chart's Vega-Lite spec with the shared theme.

    Checked against the Vega-Lite schema when `MODELATLAS_CHECK_CHARTS=1` (the tests).
    """
    return themed(chart.to_dict(validate=os.environ.get(CHECK_CHARTS) == "1"))


# Marks drawn by the thousand (attention heatmap and grid cells, head-view lines). Vega would
# evaluate, per mark and through its CSP-safe expression interpreter, an ARIA description, an
# invalid-value filter and a tooltip object: most of a dense chart's draw time. Instead: no
# per-mark ARIA (the chart's element keeps its aria-label), no invalid filter (these values are
# never NaN), and the tooltip the page builds once per row in the row's `tip` field.
DENSE_MARK = {"aria": False, "invalid": None, "tooltip": {"expr": "datum.tip"}}
# A chart that may hold more marks than this (the heatmaps and head view of a long example)
# draws on a canvas, whose tooltips work the same (atlas.js reads usermeta.renderer): an SVG
# element per mark makes the page's DOM the bottleneck. 4,096 = a heatmap of 64 x 64 tokens.
SVG_MARKS = 4096


def canvas_beyond(spec: dict, marks: int) -> dict:
    """Mark `spec` to draw on a canvas when it may hold more than SVG_MARKS marks; return it."""
    if marks > SVG_MARKS:
        spec["usermeta"] = {**spec.get("usermeta", {}), "renderer": "canvas"}
    return spec


# Many layers or heads on a narrow axis: Vega drops every other label until no two overlap
# ("parity"), so 24 layers in a 170 px panel read 0, 2, 4, ... (the tooltip gives each point's).
THINNED_LABELS = {"labelOverlap": "parity", "labelSeparation": 3}


def thinned_axis(**settings) -> alt.Axis:
    """Return an upright-label axis that thins its labels (THINNED_LABELS) instead of overlapping."""
    return alt.Axis(labelAngle=0, **THINNED_LABELS, **settings)
