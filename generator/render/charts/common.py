"""What every chart builder shares: validation through Altair and the one theme."""

from __future__ import annotations

import altair as alt

from generator.render.theme import themed


def to_spec(chart: alt.TopLevelMixin) -> dict:
    """Validate an Altair chart and return its Vega-Lite spec with the shared theme."""
    return themed(chart.to_dict())


# Many layers or heads on a narrow axis: Vega drops every other label until no two overlap
# ("parity"), so 24 layers in a 170 px panel read 0, 2, 4, ... (the tooltip gives each point's).
THINNED_LABELS = {"labelOverlap": "parity", "labelSeparation": 3}


def thinned_axis(**settings) -> alt.Axis:
    """Return an upright-label axis that thins its labels (THINNED_LABELS) instead of overlapping."""
    return alt.Axis(labelAngle=0, **THINNED_LABELS, **settings)
