"""What page builders share: the Page record and the chart description for `_chart.html`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from generator.artifacts import Artifacts

Context = Callable[[Artifacts, dict], dict]
Headline = Callable[[Artifacts, dict], dict]


@dataclass(frozen=True)
class Page:
    """One page of a model folder: file name, navigation title, template, context builder.

    `context(artifacts, tables)` returns the template context; the chart descriptions it lists
    under `charts` (made with `chart(...)`) are mounted, exported as figures and get a data table.
    `headline(artifacts, tables)`, when given, returns {label: value} facts shown for the model
    on the site index and in the model-card snippet (e.g. {"most focused head": "3.7"}).
    A page with an `analysis` is rendered and linked only when the card runs that analysis.
    """

    filename: str
    title: str
    template: str
    context: Context
    scripts: tuple[str, ...] = field(default=())  # page scripts under assets/, after atlas.js
    headline: Headline | None = None
    analysis: str | None = None  # the analysis it shows; None: always rendered


def chart(
    chart_id: str,
    spec: dict,
    label: str,
    caption: str,
    interactive: bool = False,
    *,
    figure_spec: dict | None = None,
) -> dict:
    """Describe one chart for the `_chart.html` partial.

    Args:
        chart_id: unique on its page; names the element (`chart-ID`) and the figure file.
        spec: the Vega-Lite spec mounted in the page.
        label: accessible description (aria-label, figure alt text).
        caption: visible caption.
        interactive: the page script swaps the chart's data (selectors).
        figure_spec: a static, fully populated spec for the exported figure, for charts whose
            data is filled in by page JS (their `spec` datasets are empty at build time).
    """
    return {
        "id": chart_id,
        "spec": spec,
        "label": label,
        "caption": caption,
        "interactive": interactive,
        "figure_spec": figure_spec,
    }
