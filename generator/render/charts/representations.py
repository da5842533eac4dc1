"""Charts of the representations page: 2-D maps, separability against depth, geometry.

Interactive charts read named datasets that the page script swaps when a control changes:
`points` / `extent` (sequence-embedding map), `tokens` (token map), `cka` (layer × layer
heatmap), `selected` (the chosen layer, marked on the depth charts).
"""

from __future__ import annotations

import altair as alt

from generator.render.charts.common import to_spec

POINTS, EXTENT, TOKENS, CKA, SELECTED = "points", "extent", "tokens", "cka", "selected"
SHAPES = ["circle", "triangle-up", "square", "diamond", "cross", "triangle-down"]
LAYER_AXIS = alt.Axis(tickMinStep=1, format="d")
# Checkpoints in order: dark to light, stopping before viridis' pale yellow end.
ORDERED = alt.SchemeParams(name="viridis", extent=[0, 0.85])


def _with_datasets(chart: alt.TopLevelMixin, **datasets: list[dict]) -> dict:
    spec = to_spec(chart)
    spec["datasets"] = {**spec.get("datasets", {}), **datasets}
    return spec


def _extent_layer(x: str = "x", y: str = "y") -> alt.Chart:
    """Invisible corner points that pin the axes to a range shared by every checkpoint."""
    return (
        alt.Chart(alt.NamedData(EXTENT))
        .mark_point(opacity=0)
        .encode(x=alt.X(f"{x}:Q"), y=alt.Y(f"{y}:Q"))
    )


def embedding_map_chart(labels: list[str], splits: list[str]) -> dict:
    """Scatter of one layer's sequence embeddings in 2-D: colour = label, shape = split.

    Rows of `points`: {x, y, label, split, text}; `extent` holds two corner rows {x, y}.
    """
    points = (
        alt.Chart(alt.NamedData(POINTS))
        .mark_point(filled=True, size=46, opacity=0.8)
        .encode(
            x=alt.X("x:Q", title="component 1", scale=alt.Scale(zero=False, nice=False)),
            y=alt.Y("y:Q", title="component 2", scale=alt.Scale(zero=False, nice=False)),
            color=alt.Color("label:N", title="label", scale=alt.Scale(domain=labels)),
            shape=alt.Shape("split:N", title="split", scale=alt.Scale(domain=splits, range=SHAPES)),
            tooltip=[
                alt.Tooltip("text:N", title="text"),
                alt.Tooltip("label:N", title="label"),
                alt.Tooltip("split:N", title="split"),
            ],
        )
    )
    chart = alt.layer(points, _extent_layer()).properties(width="container", height=460)
    return _with_datasets(chart, **{POINTS: [], EXTENT: []})


def _selected_rule() -> alt.Chart:
    return (
        alt.Chart(alt.NamedData(SELECTED))
        .mark_rule(color="#888", strokeWidth=6, opacity=0.25)
        .encode(x=alt.X("layer:Q"), tooltip=[alt.Tooltip("layer:Q", title="selected layer")])
    )


CHANCE_COLOUR, LEXICAL_COLOUR, CONSTANT_COLOUR = "#777", "#b5651d", "#c0392b"
CONSTANT_NOTE = "constant input: every text has the same vector, so a probe can only guess"
CHANCE = "chance (majority class)"


def reference_rows(chance: float, lexical: dict | None, last_layer: int) -> list[dict]:
    """Rows of the horizontal reference lines: chance, and the lexical baseline when present.

    Each row: {value, se, what, label, x} with `x` the layer its label is written at.
    """
    rows = [
        {
            "value": chance,
            "se": None,
            "what": CHANCE,
            "label": f"chance {chance:.1%}",
            "x": last_layer,
        }
    ]
    if lexical is not None:
        rows.append(
            {
                "value": lexical["accuracy"],
                "se": lexical["se"],
                "what": "bag-of-tokens baseline",
                "label": f"bag of tokens {lexical['accuracy']:.1%}",
                "x": last_layer,
            }
        )
    return rows


def _reference_lines(rows: list[dict]) -> alt.LayerChart:
    """Dashed chance line and dotted lexical-baseline line, each labelled at the right end."""
    data = alt.Data(values=rows)
    is_chance = f"datum.what === '{CHANCE}'"
    colour = alt.condition(is_chance, alt.value(CHANCE_COLOUR), alt.value(LEXICAL_COLOUR))
    dash = alt.condition(is_chance, alt.value([5, 4]), alt.value([2, 2]))
    tooltip = [
        alt.Tooltip("what:N", title=" "),
        alt.Tooltip("value:Q", title="accuracy", format=".1%"),
        alt.Tooltip("se:Q", title="± SE", format=".1%"),
    ]
    rules = (
        alt.Chart(data)
        .mark_rule(strokeWidth=1.5)
        .encode(y="value:Q", color=colour, strokeDash=dash, tooltip=tooltip)
    )
    # the chance label sits under its line (the control-task curve runs just above chance)
    text = alt.Chart(data).encode(x="x:Q", y="value:Q", text="label:N", color=colour)
    labels = alt.layer(
        text.transform_filter(is_chance).mark_text(align="right", baseline="top", dy=4),
        text.transform_filter(f"!({is_chance})").mark_text(align="right", baseline="bottom", dy=-4),
    )
    return alt.layer(rules, labels)


def _constant_marks(base: alt.Chart) -> alt.Chart:
    """A large red cross over the points of constant inputs (probes there can only guess)."""
    return (
        base.transform_filter("datum.constant")
        .transform_calculate(note=f"'{CONSTANT_NOTE}'")
        .mark_point(shape="cross", size=260, filled=True, opacity=0.95)
        .encode(
            y="value:Q",
            color=alt.value(CONSTANT_COLOUR),
            tooltip=[
                alt.Tooltip("layer:Q"),
                alt.Tooltip("metric:N", title="probe"),
                alt.Tooltip("pooling:N"),
                alt.Tooltip("value:Q", title="accuracy", format=".1%"),
                alt.Tooltip("note:N", title="why"),
            ],
        )
    )


def separability_chart(
    rows: list[dict],
    chance: float,
    poolings: list[str],
    lexical: dict | None = None,
    metrics: list[str] | None = None,
) -> dict:
    """Held-out accuracy against depth: probes, the control task, ±1 SE, reference lines.

    Rows: {layer, metric, pooling, value, se, constant, selectivity, selectivity_se} of the
    reference model (`selectivity` only on linear-probe rows, else null); constant inputs get
    a red cross. Dashed: chance; dotted: the lexical (bag-of-tokens) baseline when given;
    `metrics` orders the colour legend.
    """
    last_layer = max((r["layer"] for r in rows), default=0)
    base = alt.Chart(alt.Data(values=rows)).encode(
        x=alt.X("layer:Q", title="layer (0 = embeddings)", axis=LAYER_AXIS),
        color=alt.Color(
            "metric:N",
            title="probe",
            sort=metrics,
            scale=alt.Scale(domain=metrics) if metrics else alt.Undefined,
        ),
        strokeDash=alt.StrokeDash("pooling:N", title="pooling", sort=poolings),
    )
    lines = base.mark_line(point=True).encode(
        y=alt.Y("value:Q", title="held-out accuracy", scale=alt.Scale(domain=[0, 1])),
        tooltip=[
            alt.Tooltip("layer:Q"),
            alt.Tooltip("metric:N", title="probe"),
            alt.Tooltip("pooling:N"),
            alt.Tooltip("value:Q", title="accuracy", format=".1%"),
            alt.Tooltip("se:Q", title="± SE", format=".1%"),
            alt.Tooltip("selectivity:Q", title="selectivity", format=".1%"),
            alt.Tooltip("selectivity_se:Q", title="selectivity ± SE", format=".1%"),
        ],
    )
    errors = (
        base.mark_rule(opacity=0.5)
        .encode(y="low:Q", y2="high:Q")
        .transform_calculate(low="datum.value - datum.se", high="datum.value + datum.se")
    )
    chart = alt.layer(
        _selected_rule(),
        _reference_lines(reference_rows(chance, lexical, last_layer)),
        errors,
        lines,
        _constant_marks(base),
    ).properties(width="container", height=300, title="Held-out accuracy by layer")
    return _with_datasets(chart, **{SELECTED: []})


def silhouette_chart(rows: list[dict], poolings: list[str]) -> dict:
    """Cosine silhouette of the labels against depth, one line per pooling.

    Rows: {layer, pooling, value}.
    """
    lines = (
        alt.Chart(alt.Data(values=rows))
        .mark_line(point=True)
        .encode(
            x=alt.X("layer:Q", title="layer (0 = embeddings)", axis=LAYER_AXIS),
            y=alt.Y("value:Q", title="silhouette (cosine)"),
            color=alt.Color("pooling:N", title="pooling", sort=poolings),
            tooltip=[
                alt.Tooltip("layer:Q"),
                alt.Tooltip("pooling:N"),
                alt.Tooltip("value:Q", title="silhouette", format=".3f"),
            ],
        )
    )
    zero = alt.Chart(alt.Data(values=[{"zero": 0}])).mark_rule(color="#999").encode(y="zero:Q")
    chart = alt.layer(_selected_rule(), zero, lines).properties(
        width="container", height=220, title="Silhouette of the labels by layer"
    )
    return _with_datasets(chart, **{SELECTED: []})


def checkpoint_probe_chart(
    rows: list[dict], checkpoints: list[str], chance: float, lexical: dict | None = None
) -> dict:
    """Linear-probe held-out accuracy against depth, one line per checkpoint (and pooling).

    Rows: {checkpoint, pooling, layer, value, se}. The lexical baseline reads the corpus
    tokens only, so it is one line for every checkpoint.
    """
    lines = (
        alt.Chart(alt.Data(values=rows))
        .mark_line(point=True)
        .encode(
            x=alt.X("layer:Q", title="layer (0 = embeddings)", axis=LAYER_AXIS),
            y=alt.Y("value:Q", title="linear-probe accuracy", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color(
                "checkpoint:O",
                title="checkpoint",
                sort=checkpoints,
                scale=alt.Scale(domain=checkpoints, scheme=ORDERED),
            ),
            strokeDash=alt.StrokeDash("pooling:N", title="pooling"),
            tooltip=[
                alt.Tooltip("checkpoint:N"),
                alt.Tooltip("pooling:N"),
                alt.Tooltip("layer:Q"),
                alt.Tooltip("value:Q", title="accuracy", format=".1%"),
                alt.Tooltip("se:Q", title="± SE", format=".1%"),
            ],
        )
    )
    last_layer = max((r["layer"] for r in rows), default=0)
    references = _reference_lines(reference_rows(chance, lexical, last_layer))
    chart = alt.layer(lines, references).properties(
        width="container", height=280, title="Linear-probe accuracy by layer, per checkpoint"
    )
    return to_spec(chart)


def anisotropy_chart(rows: list[dict], checkpoints: list[str]) -> dict:
    """Mean cosine similarity of token pairs against depth, between texts and within a text.

    Rows: {checkpoint, layer, measure, value}; with one checkpoint colour is the measure,
    otherwise colour is the checkpoint and the dash the measure.
    """
    several = len(checkpoints) > 1
    colour = (
        alt.Color(
            "checkpoint:O", sort=checkpoints, scale=alt.Scale(domain=checkpoints, scheme=ORDERED)
        )
        if several
        else alt.Color("measure:N", title="token pairs")
    )
    encodings = {"strokeDash": alt.StrokeDash("measure:N", title="token pairs")} if several else {}
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_line(point=True)
        .encode(
            x=alt.X("layer:Q", title="layer (0 = embeddings)", axis=LAYER_AXIS),
            y=alt.Y("value:Q", title="mean cosine similarity", scale=alt.Scale(domain=[0, 1])),
            color=colour,
            tooltip=[
                alt.Tooltip("checkpoint:N"),
                alt.Tooltip("layer:Q"),
                alt.Tooltip("measure:N", title="token pairs"),
                alt.Tooltip("value:Q", title="mean cosine", format=".3f"),
            ],
            **encodings,
        )
        .properties(width="container", height=240, title="Anisotropy: mean cosine of token pairs")
    )
    return to_spec(chart)


def cka_heatmap_chart() -> dict:
    """Layer × layer linear CKA heatmap; rows of `cka`: {layer_a, layer_b, cka}."""
    chart = (
        alt.Chart(alt.NamedData(CKA))
        .mark_rect()
        .encode(
            x=alt.X("layer_b:O", title="layer", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("layer_a:O", title="layer", sort="descending"),
            color=alt.Color(
                "cka:Q", title="linear CKA", scale=alt.Scale(domain=[0, 1], scheme="viridis")
            ),
            tooltip=[
                alt.Tooltip("layer_a:O", title="layer"),
                alt.Tooltip("layer_b:O", title="vs layer"),
                alt.Tooltip("cka:Q", title="CKA", format=".3f"),
            ],
        )
        .properties(width=alt.Step(34), height=alt.Step(34), title="Linear CKA between layers")
    )
    return _with_datasets(chart, **{CKA: []})


def cka_to_reference_chart(rows: list[dict], checkpoints: list[str], reference: str) -> dict:
    """Linear CKA of each checkpoint's layer with the reference model's same layer.

    Rows: {checkpoint, pooling, layer, cka}.
    """
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_line(point=True)
        .encode(
            x=alt.X("layer:Q", title="layer (0 = embeddings)", axis=LAYER_AXIS),
            y=alt.Y("cka:Q", title=f"linear CKA with {reference}", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color(
                "checkpoint:O",
                sort=checkpoints,
                scale=alt.Scale(domain=checkpoints, scheme=ORDERED),
            ),
            strokeDash=alt.StrokeDash("pooling:N", title="pooling"),
            tooltip=[
                alt.Tooltip("checkpoint:N"),
                alt.Tooltip("pooling:N"),
                alt.Tooltip("layer:Q"),
                alt.Tooltip("cka:Q", title="CKA", format=".3f"),
            ],
        )
        .properties(
            width="container", height=240, title=f"How close each checkpoint is to {reference}"
        )
    )
    return to_spec(chart)


def token_map_chart(examples: list[str]) -> dict:
    """Scatter of the showcase examples' token vectors in 2-D (one layer), colour = sentence.

    Only the tokens of the sentence chosen on the page carry a text label (the others have
    an empty `label`, and are drawn fainter), so labels do not pile up; hover any point for
    its token. Rows of `tokens`: {x, y, token, example, label}.
    """
    scale = alt.Scale(domain=examples)
    base = alt.Chart(alt.NamedData(TOKENS)).encode(
        x=alt.X("x:Q", title="component 1", scale=alt.Scale(zero=False, nice=False)),
        y=alt.Y("y:Q", title="component 2", scale=alt.Scale(zero=False, nice=False)),
        tooltip=[alt.Tooltip("token:N", title="token"), alt.Tooltip("example:N", title="sentence")],
    )
    points = base.mark_point(filled=True, size=36).encode(
        color=alt.Color(
            "example:N",
            title="colour = sentence (showcase example)",
            legend=alt.Legend(
                orient="bottom", direction="vertical", columns=1, labelLimit=900, titleLimit=400
            ),
            scale=scale,
        ),
        opacity=alt.condition("datum.label !== ''", alt.value(0.95), alt.value(0.4)),
    )
    labels = (
        base.transform_filter("datum.label !== ''")
        .mark_text(align="left", dx=5, dy=-4, fontSize=10, fontWeight="bold")
        .encode(text="label:N", color=alt.Color("example:N", scale=scale, legend=None))
    )
    chart = alt.layer(points, labels).properties(width="container", height=460)
    return _with_datasets(chart, **{TOKENS: []})
