"""Charts of the attention page."""

from __future__ import annotations

import altair as alt

from generator.render.charts.common import DENSE_MARK, to_spec

ATTENTION_DATASET = "cells"
# px per token: a 11 px label's box (13 px tall) fits a row, and key labels slanted at 60° sit
# 11 px apart, so no two labels overlap; longer examples scroll sideways
HEATMAP_MIN_STEP = 13
HEATMAP_MAX_STEP = 36  # px per token: short examples do not blow up
HEATMAP_WIDTH = 900  # px the heatmap may use when the page has not measured its column
HEATMAP_LABEL_ROOM = 130  # px left of the cells for the query labels and axis title


def heatmap_step(n_keys: int, available: int = HEATMAP_WIDTH) -> int:
    """Return the cell size (px) fitting `n_keys` columns in `available` px (as attention.js)."""
    room = max(available - HEATMAP_LABEL_ROOM, 0)
    return max(HEATMAP_MIN_STEP, min(HEATMAP_MAX_STEP, room // max(n_keys, 1)))


def heatmap_mode(rescale: bool, hide_special: bool) -> str:
    """Return the key of one display mode of the heatmap ("weight", "rowmax", + "-nospecial")."""
    return ("rowmax" if rescale else "weight") + ("-nospecial" if hide_special else "")


def heatmap_notes(rescale: bool, hide_special: bool, special: str = "special tokens") -> dict:
    """Return {title, legend} saying what the colour of the heatmap means in one mode."""
    if rescale:
        title = "Colour: weight ÷ the largest weight of its row"
        title += " among the tokens shown" if hide_special else ""
        title += " (every row's maximum is 1; the tooltip gives the raw weight)"
        legend = "weight ÷ row max"
    else:
        title = "Colour: attention weight"
        title += "" if hide_special else " (each row sums to 1)"
        legend = "attention weight"
    if hide_special:
        title = [
            title,
            f"{special} hidden, rows not renormalised: a row sums to 1 minus its weight on them",
        ]
    return {"title": title, "legend": legend}


def token_axes() -> dict:
    """Return the x (key) and y (query) encodings of a token × token heatmap.

    Fields `key` and `query` hold "NNNN token" labels (sorting in sequence order); the axes
    show the token only.
    """
    label = "substring(datum.value, 5)"
    return {
        "x": alt.X(
            "key:O",
            title="key (attended-to token)",
            axis=alt.Axis(orient="top", labelAngle=-60, labelExpr=label, labelLimit=90),
        ),
        "y": alt.Y(
            "query:O",
            title="query (attending token)",
            axis=alt.Axis(labelExpr=label, labelLimit=90),
        ),
    }


def attention_heatmap_chart(
    cells: list[dict],
    n_queries: int = 0,
    n_keys: int = 0,
    rescale: bool = False,
    hide_special: bool = False,
    *,
    special: str = "special tokens",
) -> dict:
    """Query × key heatmap of one head's attention; the page swaps the `cells` dataset in place.

    Rows: {query, key, weight, shown[, hidden], tip}: query/key are "NNNN token" labels so
    repeated tokens stay distinct and sort in sequence order (the axis shows only the token);
    `weight` is the stored weight, `shown` what the colour shows (the weight, or the weight ÷
    its row's max when `rescale`), `hidden` the row's weight on hidden special tokens
    (`hide_special`), `tip` the cell's tooltip (titles: `heatmap_tips`; the page builds it).
    Width and height are `heatmap_step(n_keys)` px per token; the page resizes to its column.
    """
    notes = heatmap_notes(rescale, hide_special, special)
    step = heatmap_step(n_keys)
    chart = (
        alt.Chart(alt.NamedData(ATTENTION_DATASET))
        .mark_rect(**DENSE_MARK)
        .encode(
            **token_axes(),
            color=alt.Color(
                "shown:Q",
                title=notes["legend"],
                scale=alt.Scale(domain=[0, 1], scheme="blues"),
                legend=alt.Legend(gradientLength=220),
            ),
        )
        .properties(
            width=step * max(n_keys, 1),
            height=step * max(n_queries, 1),
            title=alt.TitleParams(notes["title"], fontSize=12, fontWeight="normal"),
        )
    )
    spec = to_spec(chart)
    spec["datasets"] = {ATTENTION_DATASET: cells}
    return spec


def heatmap_tip_titles(rescale: bool, hide_special: bool, special: str) -> list[str]:
    """Return the heatmap tooltip's titles in one mode: query, key, weight[, ÷ max][, hidden]."""
    titles = ["query", "key", "attention weight"]
    if rescale:
        titles.append("÷ row max")
    if hide_special:
        titles.append(f"row's weight on {special}")
    return titles


HEATMAP_MODES = ((False, False), (False, True), (True, False), (True, True))  # (rescale, hide)


def heatmap_tips(special: str) -> dict[str, list[str]]:
    """Return the tooltip titles of every display mode, keyed by `heatmap_mode`."""
    return {
        heatmap_mode(rescale, hide): heatmap_tip_titles(rescale, hide, special)
        for rescale, hide in HEATMAP_MODES
    }


def heatmap_specs(special: str) -> dict[str, dict]:
    """Return the empty heatmap spec of every display mode, keyed by `heatmap_mode`."""
    return {
        heatmap_mode(rescale, hide): attention_heatmap_chart(
            [], rescale=rescale, hide_special=hide, special=special
        )
        for rescale, hide in HEATMAP_MODES
    }


HEAD_VIEW_DATASETS = ("lines", "left", "right")
OVERVIEW_DATASET = "grid"
# 12 categorical colours at least 37 CIELAB units apart (greedy max-min pick among Tableau,
# ColorBrewer and Kelly colours of lightness 38-78, readable on light and dark backgrounds);
# models with more heads get 8 more, then the palette repeats.
HEAD_COLORS = [
    "#0067a5",
    "#ff7f00",
    "#2ca02c",
    "#e41a1c",
    "#984ea3",
    "#a65628",
    "#e7298a",
    "#00a6a6",
    "#bcbd22",
    "#636363",
    "#ff9da6",
    "#637939",
    "#f3c300",
    "#7570b3",
    "#8c564b",
    "#b3446c",
    "#8db600",
    "#604e97",
    "#d95f02",
    "#1b9e77",
]
HEAD_VIEW_WIDTH = 820
HEAD_VIEW_MARGIN = 150  # px from each side to its token column
HEAD_VIEW_SLOT = 34  # px per head between the weight numbers shown beside the tokens


def head_colors(n_heads: int) -> list[str]:
    """Return one colour per head (20 distinct colours, repeated beyond)."""
    return [HEAD_COLORS[head % len(HEAD_COLORS)] for head in range(n_heads)]


def _weight_labels(side: str, x: int, focus: str, colors: alt.Scale) -> alt.Chart:
    """Weights (one per drawn head) beside the tokens of `side` while `focus` is hovered."""
    right = side == "right"
    return (
        alt.Chart(alt.NamedData("lines"))
        .mark_text(align="right" if right else "left", baseline="middle", fontSize=11)
        .transform_filter(alt.param(focus, empty=False))
        .transform_calculate(
            wx=f"{x} {'-' if right else '+'} datum.slot * {HEAD_VIEW_SLOT}",
            label="format(datum.weight, '.2f')",
        )
        .encode(
            x=alt.X("wx:Q", scale=None, axis=None),
            y=alt.Y("dst:O" if right else "src:O", axis=None),
            text="label:N",
            color=alt.Color("head:N", scale=colors, legend=None),
            tooltip=[
                alt.Tooltip("head:N", title="head"),
                alt.Tooltip("from:N", title="query"),
                alt.Tooltip("to:N", title="key"),
                alt.Tooltip("weight:Q", title="attention weight", format=".3f"),
            ],
        )
    )


def _token_column(side: str, x: int, focus: alt.Parameter) -> alt.Chart:
    """One column of tokens; hovering one selects it (`focus`); its tooltip is its `tip`."""
    right = side == "right"
    return (
        alt.Chart(alt.NamedData(side), name=f"hv_{side}")
        .mark_text(
            align="left" if right else "right",
            baseline="middle",
            fontSize=12,
            cursor="pointer",
            tooltip={"expr": "datum.tip"},
        )
        .encode(
            x=alt.value(x + 6 if right else x - 6),
            y=alt.Y("dst:O" if right else "src:O", axis=None),
            text="token:N",
            size=alt.condition(focus, alt.value(14), alt.value(12), empty=False),
        )
        .add_params(focus)
    )


def head_view_chart(n_heads: int, width: int = HEAD_VIEW_WIDTH) -> dict:
    """Token-to-token lines between two token columns (the bertviz head view).

    Datasets the page fills: `lines` {src, dst, head, slot, weight, shown, from, to, tip} (one
    line per query -> key weight of each drawn head; `slot` is the head's rank among the drawn
    ones, `shown` the line's opacity, `tip` its tooltip {head, query, key, attention weight}),
    `left` {src, token, tip} (queries), `right` {dst, token, tip} (keys); a token's `tip` is
    its tooltip (its largest weights per drawn head).
    Colour is the head. Hovering a query token keeps only its lines and writes each weight
    beside the keys; hovering a key token does the same for the lines into it.
    """
    left_x, right_x = HEAD_VIEW_MARGIN, width - HEAD_VIEW_MARGIN
    events = "pointerover[event.item && event.item.mark.name === 'hv_{}_marks']"
    focus_q = alt.selection_point(
        name="focus", fields=["src"], on=events.format("left"), clear="pointerout"
    )
    focus_k = alt.selection_point(
        name="focus_key", fields=["dst"], on=events.format("right"), clear="pointerout"
    )
    colors = alt.Scale(domain=list(range(n_heads)), range=head_colors(n_heads))
    lines = (
        alt.Chart(alt.NamedData("lines"))
        .mark_rule(strokeWidth=2, **DENSE_MARK)
        .encode(
            x=alt.value(left_x),
            x2=alt.value(right_x),
            y=alt.Y("src:O", axis=None, title=None),
            y2=alt.Y2("dst:O"),
            color=alt.Color("head:N", title="head", scale=colors),
            # strokeOpacity, not opacity: SVG renderers composite an element with `opacity` in
            # a layer of its own, which makes thousands of lines take a minute to rasterise.
            strokeOpacity={
                "condition": {
                    "test": {"and": [{"param": "focus"}, {"param": "focus_key"}]},
                    "field": "shown",
                    "type": "quantitative",
                    "scale": {"domain": [0, 1], "range": [0, 1]},
                    "legend": None,
                },
                "value": 0.0,
            },
        )
    )
    chart = (
        alt.layer(
            lines,
            _token_column("left", left_x, focus_q),
            _token_column("right", right_x, focus_k),
            _weight_labels("right", right_x - 4, "focus", colors),
            _weight_labels("left", left_x + 4, "focus_key", colors),
        )
        .resolve_scale(y="shared")
        .properties(width=width, height=alt.Step(18))
    )
    spec = to_spec(chart)
    spec["datasets"] = {name: [] for name in HEAD_VIEW_DATASETS}
    return spec


HIGHLIGHT_COLOR = "#ff7f00"


def attention_overview_chart(n_layers: int, n_heads: int) -> dict:
    """Every layer x head of one example as small heatmaps (rows: layers, columns: heads).

    The exported figure's form of the grid (the page draws `attention_maps_chart`). Dataset
    `grid` {layer, head, q, k, weight, query, key}: q/k are cell indices (token blocks when the
    example is long), query/key their token labels. The small map of the selected layer and
    head (params `sel_layer`, `sel_head`) gets a frame.
    """
    size = overview_map_size(n_heads)
    cells = (
        alt.Chart()
        .mark_rect(aria=False)
        .encode(
            x=alt.X("k:O", axis=None),
            y=alt.Y("q:O", axis=None),
            color=alt.Color(
                "weight:Q",
                title="attention weight",
                scale=alt.Scale(domain=[0, 1], scheme="blues"),
            ),
        )
    )
    frame = (
        alt.Chart(name="selected_frame")
        .mark_rect(filled=False, stroke=HIGHLIGHT_COLOR, strokeWidth=3)
        .transform_filter(
            "datum.q === 0 && datum.k === 0 && datum.layer === sel_layer && datum.head === sel_head"
        )
        .encode(x=alt.value(-2), x2=alt.value(size + 2), y=alt.value(-2), y2=alt.value(size + 2))
    )
    chart = (
        alt.layer(cells, frame)
        .properties(width=size, height=size)
        .facet(
            row=alt.Row("layer:O", title="layer", header=alt.Header(labelOrient="left")),
            column=alt.Column("head:O", title="head"),
            data=alt.NamedData(OVERVIEW_DATASET),
            spacing=6,
        )
        .add_params(alt.param(name="sel_layer", value=0), alt.param(name="sel_head", value=0))
    )
    spec = to_spec(chart)
    spec["datasets"] = {OVERVIEW_DATASET: []}
    return spec


MAPS_DATASET = "maps"
MAP_GAP = 6  # px between two small maps


def overview_map_size(n_heads: int) -> int:
    """Return the side (px) of one small map of the layer x head grid."""
    return max(28, min(64, 900 // max(n_heads, 1)))


def attention_maps_chart(n_layers: int, n_heads: int) -> dict:
    """The page's layer x head grid: one small image per layer and head (rows: layers).

    Dataset `maps` {layer, head, url, tip}: `url` is a PNG data URL the page paints from the
    grid's cells (`attention.js` overviewMaps: one pixel per cell, coloured by the heatmap's
    scale, scheme "blues" on [0, 1], shown unsmoothed), `tip` the map's tooltip. One mark per
    map instead of one per cell: the grid's up to OVERVIEW_CELLS cells draw in milliseconds.
    The map of the selected layer and head (params `sel_layer`, `sel_head`) gets a frame.
    """
    size = overview_map_size(n_heads)
    step = size + MAP_GAP
    band = alt.Scale(paddingInner=MAP_GAP / step, paddingOuter=0)
    plain = {"domain": False, "ticks": False, "labelAngle": 0, "labelPadding": 4}
    x = alt.X("head:O", title="head", scale=band, axis=alt.Axis(orient="top", **plain))
    y = alt.Y("layer:O", title="layer", scale=band, axis=alt.Axis(**plain))
    maps = (
        alt.Chart()
        .mark_image(
            width=size,
            height=size,
            aspect=False,
            smooth=False,
            aria=False,
            cursor="pointer",
            tooltip={"expr": "datum.tip"},
        )
        .encode(x=x, y=y, url=alt.Url("url:N"))
    )
    frame = (
        alt.Chart(name="selected_frame")
        .mark_rect(filled=False, stroke=HIGHLIGHT_COLOR, strokeWidth=3, aria=False)
        .transform_filter("datum.layer === sel_layer && datum.head === sel_head")
        .encode(x=x, y=y)
    )
    # The colour legend of the maps' pixels: the scale the heatmap uses, over no mark.
    legend = (
        alt.Chart()
        .mark_point(opacity=0, aria=False)
        .transform_filter("false")
        .encode(
            color=alt.Color(
                "weight:Q",
                title="attention weight",
                scale=alt.Scale(domain=[0, 1], scheme="blues"),
            )
        )
    )
    chart = (
        alt.layer(maps, frame, legend, data=alt.NamedData(MAPS_DATASET))
        .properties(width=alt.Step(step), height=alt.Step(step))
        .add_params(alt.param(name="sel_layer", value=0), alt.param(name="sel_head", value=0))
    )
    spec = to_spec(chart)
    spec["datasets"] = {MAPS_DATASET: []}
    return spec
