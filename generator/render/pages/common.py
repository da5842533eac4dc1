"""What page builders share: the Page record and the chart description for `_chart.html`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from generator.artifacts import Artifacts

Context = Callable[[Artifacts, dict], dict]


@dataclass(frozen=True)
class Page:
    """One page of a model folder: file name, navigation title, template, context builder."""

    filename: str
    title: str
    template: str
    context: Context
    scripts: tuple[str, ...] = field(default=())  # page scripts under assets/, after atlas.js


def chart(chart_id: str, spec: dict, label: str, caption: str, interactive: bool = False) -> dict:
    """Describe one chart for the `_chart.html` partial."""
    return {
        "id": chart_id,
        "spec": spec,
        "label": label,
        "caption": caption,
        "interactive": interactive,
    }
