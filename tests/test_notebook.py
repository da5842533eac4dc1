"""The notebook API (generator/notebook.py) and the example notebook, executed with nbclient."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

import generator
from generator.errors import AtlasError
from generator.notebook import NotebookError, PageFrame

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "atlas_in_a_notebook.ipynb"


def chart_rows(spec: dict) -> list[dict]:
    """Every data row a Vega-Lite spec embeds (named datasets and inline values)."""
    rows = [row for values in (spec.get("datasets") or {}).values() for row in values]
    rows += (spec.get("data") or {}).get("values", [])
    for part in spec.get("layer", []):
        rows += chart_rows(part)
    return rows


@pytest.fixture(scope="module")
def atlas(tiny_build):
    _, _, artifacts = tiny_build
    return generator.open_atlas(artifacts / "tiny-bert")


def test_import_generator_stays_light():
    code = (
        "import sys, generator; "
        "print(sorted(m for m in ('numpy', 'altair', 'jax', 'generator.notebook') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr
    assert {"build", "open_atlas", "Atlas", "show"} <= set(dir(generator))


def test_build_is_the_callable_build_module(tiny_build):
    import generator.build as module

    card, site, artifacts = tiny_build
    assert generator.build is module and module.build_cards  # the module, as before
    (report,) = generator.build(card, out=site, artifacts=artifacts, strict=True)
    assert report.name == "tiny-bert" and not report.extracted and not report.rendered  # cached
    with pytest.raises(AtlasError, match="at least one card"):
        generator.build()


def test_atlas_reads_arrays_with_named_axes_and_tables(atlas, tiny_build):
    _, site, artifacts = tiny_build
    assert atlas.name == "tiny-bert" and atlas.site == site / "tiny-bert"
    manifest = json.loads((artifacts / "tiny-bert" / "manifest.json").read_text())
    entry = manifest["arrays"]["showcase/attentions"]
    attentions = atlas.array("showcase/attentions")
    assert list(attentions.shape) == entry["shape"]
    assert atlas.axes("showcase/attentions") == ["example", "layer", "head", "query", "key"]
    # post-softmax rows of real tokens sum to 1
    mask = atlas.array("showcase/attention_mask")
    sums = attentions.sum(axis=-1)[0, 0, 0][mask[0].astype(bool)]
    assert abs(sums - 1).max() < 1e-3
    stored = json.loads((artifacts / "tiny-bert" / "analyses" / "head_metrics.json").read_text())
    assert atlas.table("head_metrics") == stored and "head_metrics" in atlas.tables
    with pytest.raises(NotebookError, match="no table 'nope'"):
        atlas.table("nope")
    with pytest.raises(AtlasError, match="not in"):
        atlas.axes("nope")


def test_open_atlas_from_the_site_folder_or_a_root(atlas, tiny_build):
    _, site, artifacts = tiny_build
    assert generator.open_atlas(site / "tiny-bert").artifacts == artifacts / "tiny-bert"
    assert generator.open_atlas(artifacts).artifacts == artifacts / "tiny-bert"
    assert generator.open_atlas(site, name="tiny-bert").site == site / "tiny-bert"
    with pytest.raises(NotebookError, match="not a built model"):
        generator.open_atlas(artifacts / "tiny-bert" / "analyses")


def test_show_chart_is_the_exported_figure_as_an_altair_chart(atlas):
    import altair as alt

    chart = generator.show(atlas.page("overview"), chart="parameters")
    assert isinstance(chart, alt.TopLevelMixin)
    spec = chart.to_dict()
    # the chart's bars add up to the parameters the manifest lists
    total = sum(row["count"] for row in atlas.manifest["parameters"])
    assert sum(row["count"] for row in chart_rows(spec)) == total
    assert spec["width"] != "container"  # the figure's fixed size, not the page's
    assert atlas.charts("overview")[0] == "parameters"
    with pytest.raises(NotebookError, match="no chart 'nope'.*parameters"):
        generator.show(atlas.page("overview"), chart="nope")
    with pytest.raises(NotebookError, match="no page 'nope'"):
        atlas.page("nope")


def test_static_charts_load_as_altair_unchanged(atlas):
    """Each chart's Altair object writes back exactly the exported figure's spec.

    Three pages of bars, layers, points and heatmaps: Altair's schema validation of every chart
    of every page would take minutes.
    """
    import altair as alt

    from generator.notebook import altair_ready
    from generator.render.figures import export_spec, static_spec

    checked = 0
    consolidate = alt.data_transformers.consolidate_datasets
    alt.data_transformers.consolidate_datasets = False  # keep inline data where the spec has it
    try:
        with alt.theme.enable("none"):  # no Altair default config added to the output
            for page in ("index.html", "heads.html", "attributions.html"):
                for item in atlas._chart_items(page):
                    spec = export_spec(item)
                    if spec is None:  # filled in by the page script: show the page instead
                        with pytest.raises(NotebookError, match="show the page"):
                            atlas.chart(page, item["id"])
                        continue
                    expected = altair_ready(static_spec(spec))
                    got = atlas.chart(page, item["id"]).to_dict()
                    assert got == {**expected, "$schema": got["$schema"]}, (page, item["id"])
                    checked += 1
    finally:
        alt.data_transformers.consolidate_datasets = consolidate
    assert checked >= 8


def test_show_page_is_an_iframe_of_the_served_page(atlas):
    frame = generator.show(atlas.page("Heads"))
    assert isinstance(frame, PageFrame)
    assert frame.url.startswith("http://127.0.0.1:") and frame.url.endswith("/tiny-bert/heads.html")
    assert f'<iframe src="{frame.url}"' in frame._repr_html_()
    with urllib.request.urlopen(frame.url, timeout=30) as response:
        served = response.read()
    assert served == (atlas.site / "heads.html").read_bytes()  # as built: no reload script
    assert generator.show(atlas.site).url.endswith("/tiny-bert/index.html")
    with pytest.raises(NotebookError, match="needs the model's artifacts"):
        generator.show(atlas.site / "index.html", chart="parameters")


def test_example_notebook_runs_and_shows_the_chart(tiny_build, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    _, _, artifacts = tiny_build
    monkeypatch.setenv("MODELATLAS_EXAMPLE_ARTIFACTS", str(artifacts / "tiny-bert"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    notebook = nbformat.read(EXAMPLE, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    errors = [out for out in outputs if out.output_type == "error"]
    assert not errors, errors[0].get("evalue") if errors else ""
    bundles = [out.data for out in outputs if out.output_type in ("display_data", "execute_result")]
    html = [b["text/html"] for b in bundles if "text/html" in b]
    charts = [h for h in html if "vegaEmbed(" in h]
    assert len(charts) == 1, [list(b) for b in bundles]
    # offline: the Vega libraries are inline, nothing is loaded from elsewhere
    assert not re.findall(r"<script[^>]+src=", charts[0])
    spec = json.loads(re.search(r"const spec = (.*);\n\s*const embedOpt", charts[0]).group(1))
    manifest = json.loads((artifacts / "tiny-bert" / "manifest.json").read_text())
    assert sum(row["count"] for row in chart_rows(spec)) == sum(
        row["count"] for row in manifest["parameters"]
    )
    frames = [b["text/html"] for b in bundles if "<iframe" in b.get("text/html", "")]
    assert len(frames) == 1 and "/tiny-bert/heads.html" in frames[0]


@pytest.mark.browser
def test_page_frame_renders_the_page_and_its_charts_in_a_browser(atlas, page):
    """The iframe Jupyter shows, embedded in a page of another origin, renders the charts."""
    from playwright.sync_api import expect

    frame = generator.show(atlas.page("overview"))
    page.set_content(f"<html><body>{frame._repr_html_()}</body></html>")
    inside = page.frame_locator("iframe")
    expect(inside.get_by_text("A tiny random BERT for tests.")).to_be_visible(timeout=120_000)
    charts = inside.locator(".vega-embed")
    expect(charts.first.locator("svg, canvas").first).to_be_visible(timeout=120_000)
    assert charts.count() == len(atlas.charts("overview"))
