"""What every chart builder shares: validation through Altair and the one theme."""

from __future__ import annotations

import altair as alt

from generator.render.theme import themed


def to_spec(chart: alt.TopLevelMixin) -> dict:
    """Validate an Altair chart and return its Vega-Lite spec with the shared theme."""
    return themed(chart.to_dict())
