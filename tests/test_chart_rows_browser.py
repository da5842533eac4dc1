"""Chart rows built by a page script equal the rows the Python builders make from the same data.

Every chart whose rows a page script (templates/assets/*.js) builds in the browser has a Python
builder (generator/render/pages/*.py) that makes the exported figure's rows. Here, for every
value of every selector the chart follows (every combination, dependent option lists re-read),
the rows the page shows (`Atlas.views[chart].data(dataset)`) are compared with the Python
builder's rows made from the page's own embedded data: one source of truth, checked both ways.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from attention_support import attention_data, read_data_file
from browser_support import file_url, open_page
from test_render import parse

from generator.render.pages import activations as activation_page
from generator.render.pages import attention as attention_page
from generator.render.pages import attributions as attribution_page
from generator.render.pages import heads as heads_page
from generator.render.pages import neuron_section
from generator.render.pages import representations as representation_page
from generator.render.pages import weights as weights_page

pytestmark = pytest.mark.browser

Rows = Callable[[dict, list[str]], list[dict]]


@dataclass(frozen=True)
class Case:
    """A page-built chart: its dataset, the selectors it follows and the Python builder."""

    chart: str
    dataset: str
    selects: tuple[str, ...]
    rows: Rows  # (page data, selector values) -> the rows Python builds for that view
    # Absolute, on numbers, or `(page data, selector values) -> tolerance` for packed data the
    # script decodes.
    tolerance: float | Callable[[dict, list[str]], float] = 0.0

    def tolerance_at(self, data: dict, values: list[str]) -> float:
        """The tolerance of one view."""
        return self.tolerance(data, values) if callable(self.tolerance) else self.tolerance


def metric_rows(data: dict, values: list[str]) -> list[dict]:
    """The heads heatmap's cells of one metric (labels as the page's metric list says)."""
    label = next((m["label"] for m in data["metrics"] if m["name"] == values[0]), values[0])
    return heads_page.metric_cells(data["rows"], values[0], label)


def neuron_heatmap(data: dict, values: list[str]) -> list[dict]:
    """One example x layer of the neuron heatmap (the layer select holds layer labels)."""
    neurons = data["neurons"]
    layer = neurons["layers"].index(values[1])
    return neuron_section.heatmap_rows(neurons["showcase"], int(values[0]), layer)


def map_entry(data: dict, values: list[str]) -> dict | None:
    """The packed map of one (pooling, layer, method) view; None where the method has none."""
    pooling, layer, method = values[0], int(values[1]), values[2]
    return (data["maps"].get(pooling, {}).get(method) or [None] * (layer + 1))[layer]


def map_points(data: dict, values: list[str], *, extent: bool = False) -> list[dict]:
    """The representation map of one view, from the projections table the page packs."""
    pooling, layer, method = values[0], int(values[1]), values[2]
    checkpoint = len(data["checkpoints"]) - 1  # the tiny build has no further checkpoints
    entry = map_entry(data, values)
    if entry is None or entry["constant"][checkpoint]:
        return []  # nothing drawn: the page's note says why
    view = {"checkpoint": data["checkpoints"][checkpoint], "pooling": pooling}
    mapped = representation_page.map_rows(
        PROJECTIONS, POINTS, {**view, "method": method, "layer": layer}
    )
    return mapped["extent"] if extent else mapped["points"]


def packing_step(data: dict, values: list[str]) -> float:
    """Half an int16 step of one map's larger scale: what packing may move a point by.

    The page gets each map's coordinates as int16 steps of its own scale
    (`representations.pack`), so a map spanning a wider range (t-SNE's extent varies from
    machine to machine) is compared at a proportionally wider tolerance.
    """
    entry = map_entry(data, values)
    if entry is None:
        return 0.0
    return max(entry["scale"]) / representation_page.QUANT / 2 * (1 + 1e-9)


# The tiny build's representation tables, read once by the fixture (map coordinates are packed
# into the page as int16 steps, so the page's points are compared with the table's).
PROJECTIONS: list[dict] = []
POINTS: dict = {}

PAGES: dict[str, tuple[str, list[Case]]] = {
    "activations.html": (
        "activations-data",
        [
            Case(
                "chart-activations-bands",
                "rows",
                ("select-act-quantity",),
                lambda d, v: d["quantiles"].get(v[0], []),
            ),
            Case(
                "chart-activations-histogram",
                "rows",
                ("select-act-quantity", "select-act-layer"),
                lambda d, v: activation_page.histogram_rows(
                    d["histograms"].get(v[0], {}).get(v[1])
                ),
            ),
            Case(
                "chart-activations-profile",
                "rows",
                ("select-profile-layer",),
                lambda d, v: activation_page.profile_rows(d["profile"].get(v[0])),
            ),
            Case(
                "chart-neurons-histogram",
                "rows",
                ("select-neuron-layer",),
                lambda d, v: neuron_section.histogram_rows(d["histograms"]["mlp"].get(v[0])),
            ),
            Case(
                "chart-neurons-bars",
                "rows",
                ("select-neuron-layer",),
                lambda d, v: neuron_section.bar_rows(d["neurons"]["bars"].get(v[0])),
            ),
            Case(
                "chart-neurons-heatmap",
                "rows",
                ("select-neuron-example", "select-neuron-layer"),
                neuron_heatmap,
            ),
        ],
    ),
    "weights.html": (
        "weights-data",
        [
            Case(
                "chart-weights-histograms",
                "rows",
                ("select-hist-group",),
                lambda d, v: weights_page.histogram_rows(d["histograms"][v[0]]),
            ),
            Case(
                "chart-weights-bands",
                "rows",
                ("select-band-group",),
                lambda d, v: d["bands"].get(v[0], []),
            ),
            Case(
                "chart-weights-heads",
                "rows",
                ("select-head-role",),
                lambda d, v: d["heads"].get(v[0], []),
            ),
            Case(
                "chart-weights-heatmap",
                "rows",
                ("select-block", "select-matrix"),
                lambda d, v: weights_page.heatmap_rows(d["heatmaps"][v[1]]),
            ),
            Case(
                "chart-weights-singular",
                "rows",
                ("select-block", "select-matrix"),
                lambda d, v: weights_page.spectrum_rows(d["spectra"].get(v[1])),
            ),
            Case(
                "chart-weights-headmap",
                "rows",
                ("select-headmap-role",),
                lambda d, v: d["headmap"].get(v[0], []),
            ),
            Case(
                "chart-weights-embedding",
                "rows",
                ("select-embedding-method",),
                lambda d, v: weights_page.embedding_rows(d["embedding"], v[0]),
            ),
        ],
    ),
    "heads.html": (
        "heads-data",
        [Case("chart-heads-heatmap", "cells", ("select-metric",), metric_rows)],
    ),
    "heads.html#qk": (
        "qk-data",
        [
            Case(
                "chart-qk-geometry",
                "points",
                ("select-qk-layer", "select-qk-head"),
                lambda d, v: heads_page.qk_points(d, int(v[0]), int(v[1])),
            )
        ],
    ),
    "attributions.html": (
        "attribution-data",
        [
            Case(
                "chart-token-scores",
                "scores",
                ("select-attr-example", "select-attr-method"),
                lambda d, v: attribution_page.score_rows(d["examples"][int(v[0])], v[1]),
            ),
            Case(
                "chart-lens",
                "lens",
                ("select-attr-example",),
                lambda d, v: d["lens"].get(v[0], []),
            ),
        ],
    ),
    "representations.html": (
        "representations-data",
        [
            Case(
                "chart-rep-map",
                "points",
                ("select-pooling", "select-layer", "select-projection"),
                map_points,
                tolerance=packing_step,
            ),
            Case(
                "chart-rep-map",
                "extent",
                ("select-pooling", "select-layer", "select-projection"),
                lambda d, v: map_points(d, v, extent=True),
            ),
            Case(
                "chart-rep-cka",
                "cka",
                ("select-pooling",),
                lambda d, v: representation_page.cka_rows(d["cka"], d["checkpoints"][-1], v[0]),
            ),
            *(
                Case(
                    f"chart-rep-{key}",
                    "selected",
                    ("select-layer",),
                    lambda d, v: [{"layer": int(v[0])}],
                )
                for key in ("separability", "silhouette")
            ),
            Case(
                "chart-rep-tokens",
                "tokens",
                ("select-layer", "select-token-example"),
                lambda d, v: representation_page.token_rows(d["token_map"], int(v[0]), int(v[1])),
            ),
        ],
    ),
}

SHOWN_JS = """async ([id, name]) => {
    await new Promise((resolve) => setTimeout(resolve, 0));
    await window.Atlas.settle();  // a view whose data file is still loading
    const view = window.Atlas.views[id];
    await view.runAsync();
    return JSON.parse(JSON.stringify(view.data(name)));
}"""
OPTIONS_JS = "(id) => Array.from(document.getElementById(id).options, (o) => o.value)"


def page_data(site, page: str, data_id: str) -> dict:
    """The JSON a page embeds for its script."""
    scripts = {a.get("id"): text for a, text in parse(site / "tiny-bert" / page).scripts}
    data = json.loads(scripts[data_id])
    for entry in (data.get("heatmaps") or {}).values():  # weights: each matrix's cells, a file
        entry["q"] = read_data_file(site / "tiny-bert", entry["file"])
    for name, entry in (data.get("spectra") or {}).items():  # and its singular values
        data["spectra"][name] = read_data_file(site / "tiny-bert", entry["file"])
    showcase = (data.get("neurons") or {}).get("showcase")  # activations: a file per layer
    for index in range(len(showcase["neurons"]) if showcase else 0):
        values = read_data_file(site / "tiny-bert", f"activations-neurons-{index}")
        for item, layer in zip(showcase["examples"], values, strict=True):
            item.setdefault("values", []).append(layer)
    return data


def mismatch(shown: list, expected: list, tolerance: float) -> str | None:
    """Why the page's rows differ from Python's (None when they agree on Python's fields)."""
    if len(shown) != len(expected):
        return f"{len(shown)} rows shown, {len(expected)} built by Python"
    for i, (js, py) in enumerate(zip(shown, expected, strict=True)):
        for key, value in py.items():
            if key not in js:
                return f"row {i}: the page's row has no {key!r}"
            if isinstance(value, float) and isinstance(js[key], int | float):
                if not math.isclose(js[key], value, rel_tol=0, abs_tol=tolerance):
                    return f"row {i} {key}: page {js[key]!r}, Python {value!r}"
            elif js[key] != value:
                return f"row {i} {key}: page {js[key]!r}, Python {value!r}"
    return None


def every_view(page, case: Case, data: dict, fixed: list[str] = ()) -> tuple[list[str], int]:
    """Walk every combination of the case's selectors; return (problems, views checked)."""
    depth = len(fixed)
    if depth == len(case.selects):
        shown = page.evaluate(SHOWN_JS, [case.chart, case.dataset])
        problem = mismatch(shown, case.rows(data, list(fixed)), case.tolerance_at(data, fixed))
        return ([f"{case.chart}/{case.dataset} at {list(fixed)}: {problem}"] if problem else []), 1
    problems, checked = [], 0
    select = case.selects[depth]
    for value in page.evaluate(OPTIONS_JS, select):
        page.select_option(f"#{select}", value)
        found, count = every_view(page, case, data, [*fixed, value])
        problems += found
        checked += count
    return problems, checked


@pytest.fixture(scope="module")
def site(tiny_build):
    """The tiny build's site folder, with its representation tables loaded for the map case."""
    _, out, artifacts = tiny_build
    folder = artifacts / "tiny-bert" / "analyses"
    PROJECTIONS[:] = json.loads((folder / "representation_projections.json").read_text())
    from generator.artifacts import open_artifacts

    POINTS.update(representation_page.corpus_points(open_artifacts(artifacts / "tiny-bert")))
    return out


@pytest.mark.parametrize("page_name", list(PAGES))
def test_page_script_rows_equal_python_rows_for_every_selector_value(page, site, page_name):
    data_id, cases = PAGES[page_name]
    filename = page_name.split("#")[0]
    data = page_data(site, filename, data_id)
    problems, checked, charts = [], 0, 0
    for case in cases:
        open_page(page, file_url(site / "tiny-bert" / filename)).assert_clean()
        if not page.evaluate("(id) => !!window.Atlas.views[id]", case.chart):
            continue  # not on this model's page (e.g. no logit lens for an embedding model)
        found, count = every_view(page, case, data)
        problems += found
        checked += count
        charts += 1
        assert count >= 1, f"{case.chart}: no view checked"
    assert not problems, "\n".join(problems[:20])
    assert charts >= 1 and checked >= charts


def test_packing_step_bounds_the_decoded_map():
    """Int16 packing loses at most half a step of the map's scale: the map rows' tolerance."""
    rng = np.random.default_rng(0)
    for size in (0.5, 3.0, 40.0):  # t-SNE extents vary by machine: the step scales with them
        values = rng.uniform(-size, size, 500)
        scale = float(np.abs(values).max())
        steps = np.frombuffer(base64.b64decode(representation_page.pack(values, scale)), "<i2")
        decoded = steps.astype(np.float64) * scale / representation_page.QUANT
        error = float(np.abs(decoded - values).max())
        assert error <= scale / representation_page.QUANT / 2 * (1 + 1e-9)
        view = {"maps": {"cls": {"tsne": [{"scale": [scale, scale / 2]}]}}}
        assert packing_step(view, ["cls", "0", "tsne"]) >= error


def attention_state(page) -> dict:
    """What the attention page's three charts show now (the fields the Python rows have)."""
    return page.evaluate(
        """() => {
            const v = window.Atlas.views;
            const pick = (rows, keys) => rows.map(
                (r) => Object.fromEntries(keys.filter((k) => k in r).map((k) => [k, r[k]])));
            const hv = v['chart-attention-head-view'];
            return {
                cells: pick(v['chart-attention-heatmap'].data('cells'),
                            ['query', 'key', 'weight', 'shown', 'hidden']),
                lines: pick(hv.data('lines'),
                            ['src', 'dst', 'head', 'slot', 'weight', 'shown', 'from', 'to']),
                left: pick(hv.data('left'), ['src', 'token', 'tip']),
                right: pick(hv.data('right'), ['dst', 'token', 'tip']),
                grid: pick(window.Atlas.attentionGrid,  // the cells the grid's maps show
                           ['layer', 'head', 'q', 'k', 'weight', 'query', 'key']),
            };
        }"""
    )


def choose(page, control: str, value: str | None = None) -> None:
    """Set a select (or click a checkbox) and wait until the heatmap says it shows the new view."""
    if value is not None and page.input_value(f"#{control}") == value:
        return  # already shown
    before = page.get_attribute("#chart-attention-heatmap", "data-selection")
    if value is None:
        page.click(f"#{control}")
    else:
        page.select_option(f"#{control}", value)
    page.wait_for_function(
        "s => document.getElementById('chart-attention-heatmap').getAttribute('data-selection') !== s",
        arg=before,
    )


def attention_problems(page, data: dict, view: tuple[int, int, int, int], **options) -> list[str]:
    """Compare the heatmap, head view and grid with the Python builders at one view."""
    kind_index, example, layer, head = view
    kind, n_heads, item = data["kinds"][kind_index], data["n_heads"], data["examples"][example]
    state = attention_state(page)
    heads = data["default_heads"]
    lines = attention_page.head_view_lines(item, kind, n_heads, layer, heads, **options)
    expected = {
        "cells": attention_page.heatmap_cells(item, kind, n_heads, layer, head, **options),
        "grid": attention_page.overview_cells(item, kind, n_heads),
        **lines,
    }
    return [
        f"{name} at {kind['id']}, example {example}, layer {layer}, head {head} {options}: {problem}"
        for name, rows in expected.items()
        if (problem := mismatch(state[name], rows, 1e-12))
    ]


@pytest.mark.parametrize(("build", "name"), [("tiny_build", "tiny-bert"), ("t5_build", "tiny-t5")])
def test_attention_rows_equal_python_rows_for_every_view(page, request, build, name):
    _, site, _ = request.getfixturevalue(build)
    data = attention_data(site / name)
    n_heads, kinds = data["n_heads"], data["kinds"]
    open_page(page, file_url(site / name / "attention.html")).assert_clean()
    problems, checked = [], 0
    for k, kind in enumerate(kinds):
        if len(kinds) > 1:
            choose(page, "select-kind", str(k))
        for example in range(len(data["examples"])):
            for layer in range(kind["n_layers"]):
                for head in range(n_heads):
                    choose(page, "select-example", str(example))
                    choose(page, "select-layer", str(layer))
                    choose(page, "select-head", str(head))
                    problems += attention_problems(page, data, (k, example, layer, head))
                    checked += 1
    last = (len(kinds) - 1, len(data["examples"]) - 1, kinds[-1]["n_layers"] - 1, n_heads - 1)
    choose(page, "rescale-rows")
    problems += attention_problems(page, data, last, rescale=True)
    if data["has_special"]:
        choose(page, "hide-special")
        problems += attention_problems(page, data, last, rescale=True, hide_special=True)
    assert not problems, "\n".join(problems[:20])
    expected = sum(len(data["examples"]) * kind["n_layers"] * n_heads for kind in kinds)
    assert checked == expected >= 8


def test_weight_heatmap_tooltips_give_each_cells_ranges_and_weight(page, site):
    """The tooltip the page builds per cell (no Vega expression per mark): ranges, signed w."""
    open_page(page, file_url(site / "tiny-bert" / "weights.html")).assert_clean()
    rows = page.evaluate(SHOWN_JS, ["chart-weights-heatmap", "rows"])
    cells = [row for row in rows if row["kind"] == "cell"]
    assert cells
    for row in cells:
        tip = row["tip"]
        assert list(tip) == ["rows", "columns", "weight (block max |w|, signed)"]
        assert (tip["rows"], tip["columns"]) == (row["rows"], row["cols"])
        text = tip["weight (block max |w|, signed)"]
        assert "-" not in text  # d3's minus sign, U+2212, as the Vega tooltip wrote it
        value = float(text.replace("\u2212", "-"))
        assert math.isclose(value, row["w"], rel_tol=5e-4, abs_tol=1e-12)
        assert len(text.lstrip("\u2212").replace(".", "").lstrip("0")) == 4 or row["w"] == 0
