"""Chart specs are checked against the Vega-Lite schema in the tests, not in builds."""

import os

import altair as alt
import pytest

from generator.render.charts.common import CHECK_CHARTS, to_spec


def broken_chart() -> alt.Chart:
    """A chart whose encoding has a type Vega-Lite does not know."""
    chart = alt.Chart(alt.Data(values=[{"x": 1}])).mark_point()
    chart.encoding = alt.FacetedEncoding(x=alt.X(field="x", type="quantitative"))
    chart.encoding.x.type = "not-a-type"
    return chart


def test_the_suite_checks_every_chart():
    assert os.environ.get(CHECK_CHARTS) == "1"  # tests/conftest.py turns the check on


def test_a_chart_off_the_schema_fails_only_when_checked(monkeypatch):
    with pytest.raises(alt.utils.schemapi.SchemaValidationError):
        to_spec(broken_chart())
    monkeypatch.delenv(CHECK_CHARTS)
    spec = to_spec(broken_chart())  # a build writes the spec as it is
    assert spec["encoding"]["x"]["type"] == "not-a-type"
