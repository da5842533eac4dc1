"""Paper figures: every chart of every page exported, deterministic, static data for page-filled charts."""

import json
import re
import struct
import zlib

import numpy as np
import pytest
from click.testing import CliRunner

from generator.analyze.run import analyze
from generator.artifacts import open_artifacts
from generator.cli import main
from generator.render.figures import (
    FigureError,
    canonical_svg,
    export_charts,
    export_spec,
    figure_name,
    render_figures,
    render_figures_uncached,
    static_spec,
)
from generator.render.pages import PAGES, chart
from generator.render.pages.attention import WEIGHT_SCALE


def contexts(artifacts_root, name="tiny-bert"):
    artifacts = open_artifacts(artifacts_root / name)
    tables = analyze(artifacts)
    return [(page, page.context(artifacts, tables)) for page in PAGES]


def svg_size(data: bytes) -> tuple[float, float]:
    head = data[:400].decode("utf-8")
    width = float(re.search(r'width="([\d.]+)"', head).group(1))
    height = float(re.search(r'height="([\d.]+)"', head).group(1))
    return width, height


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_every_chart_of_every_page_has_a_figure(tiny_build):
    _, out, artifacts_root = tiny_build
    folder = out / "tiny-bert"
    info = json.loads((folder / "build-info.json").read_text())
    by_chart = {(f["page"], f["chart"]): f for f in info["figures"]}
    exported = 0
    for page, context in contexts(artifacts_root):
        html = (folder / page.filename).read_text()
        for item in context.get("charts", []):
            if export_spec(item) is None:
                continue
            figure = by_chart[(page.filename, item["id"])]
            exported += 1
            assert figure["name"] == figure_name(page.title, item["id"])
            svg = (folder / f"figures/{figure['name']}.svg").read_bytes()
            png = (folder / f"figures/{figure['name']}.png").read_bytes()
            assert svg.startswith(b"<svg") and b"mark-" in svg
            width, height = svg_size(svg)
            assert png_size(png) == (round(2 * width), round(2 * height))  # scale 2
            for fmt in ("svg", "png"):  # a download link beside the chart
                assert f'href="figures/{figure["name"]}.{fmt}"' in html
    assert exported == len(info["figures"]) >= 4  # 3 overview charts + the attention heatmap


def test_heatmap_figure_shows_the_pages_first_view(tiny_build):
    _, _, artifacts_root = tiny_build
    charts = dict(contexts(artifacts_root))[PAGES[1]]["charts"]
    (heatmap,) = [item for item in charts if item["id"] == "attention-heatmap"]
    assert heatmap["spec"]["datasets"]["cells"] == []  # the page fills it in
    cells = heatmap["figure_spec"]["datasets"]["cells"]
    artifacts = open_artifacts(artifacts_root / "tiny-bert")
    n = int(artifacts.array("showcase/attention_mask")[0].sum())
    expected = artifacts.array("showcase/attentions")[0, 0, 0, :n, :n]  # example 0, layer 0, head 0
    tokens = artifacts.array("showcase/tokens")[0, :n]
    assert len(cells) == n * n
    assert (
        cells[0]["query"] == f"0000 {tokens[0]}" and cells[-1]["key"] == f"{n - 1:04d} {tokens[-1]}"
    )
    weights = np.array([c["weight"] for c in cells]).reshape(n, n)
    np.testing.assert_allclose(weights, expected, atol=0.5 / WEIGHT_SCALE + 1e-7)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=n / WEIGHT_SCALE)


def test_export_spec_rules():
    spec = {"datasets": {"cells": []}, "mark": "rect"}
    assert export_spec(chart("a", spec, "l", "c", interactive=True)) is None
    assert export_spec(chart("a", spec, "l", "c")) is spec  # not page-filled: exported as is
    full = {"datasets": {"cells": [{"x": 1}]}}
    assert export_spec(chart("a", spec, "l", "c", interactive=True, figure_spec=full)) is full


def test_static_spec_fixes_container_sizes_and_background():
    spec = {
        "width": "container",
        "layer": [{"height": "container", "mark": "bar"}],
        "background": None,
    }
    out = static_spec(spec)
    assert out["width"] == 560 and out["layer"][0]["height"] == 300
    assert out["background"] == "white"
    assert spec["width"] == "container"  # the page's own spec is untouched


def test_duplicate_figure_names_are_refused(tmp_path):
    class FakePage:
        filename, title = "a.html", "Same"

    spec = {"data": {"values": [{"x": 1}]}, "mark": "point", "encoding": {"x": {"field": "x"}}}
    pages = [(FakePage, {"charts": [chart("c", spec, "l", "c")]})] * 2
    with pytest.raises(FigureError, match="both export as figures/same-c"):
        export_charts(pages, tmp_path, ["svg"])


def test_broken_spec_is_one_line_error(tmp_path):
    class FakePage:
        filename, title = "a.html", "A"

    bad = {"mark": "nonsense-mark", "data": {"values": [{"x": 1}]}}
    with pytest.raises(FigureError) as error:
        export_charts([(FakePage, {"charts": [chart("c", bad, "l", "c")]})], tmp_path, ["svg"])
    assert "a.html#c" in str(error.value) and "\n" not in error.value.format_message()


def test_figures_command_is_deterministic_and_makes_pdf(tiny_build, tmp_path, monkeypatch):
    card, _, artifacts_root = tiny_build
    outputs = []
    for run in ("one", "two"):
        monkeypatch.setenv("MODELATLAS_CACHE", str(tmp_path / f"cache-{run}"))  # really render
        out = tmp_path / run
        args = ["figures", str(card), "--out", str(out), "--artifacts", str(artifacts_root)]
        result = CliRunner().invoke(
            main, [*args, "--format", "svg", "--format", "png", "--format", "pdf"]
        )
        assert result.exit_code == 0, result.output
        outputs.append(
            {p.name: p.read_bytes() for p in sorted((out / "tiny-bert/figures").iterdir())}
        )
    first, second = outputs
    assert first.keys() == second.keys()
    assert {name.rsplit(".", 1)[1] for name in first} == {"svg", "png", "pdf"}
    for name, data in first.items():
        if name.endswith(".pdf"):
            assert data.startswith(b"%PDF")  # vl-convert orders PDF font objects at random
        else:
            assert data == second[name], f"{name} differs between two exports"
    assert not (tmp_path / "one" / "tiny-bert" / "index.html").exists()  # no page was rendered


def test_site_figures_match_a_fresh_export(tiny_build, tmp_path):
    card, out, artifacts_root = tiny_build
    result = CliRunner().invoke(
        main,
        ["figures", str(card), "--out", str(tmp_path), "--artifacts", str(artifacts_root), "-q"],
    )
    assert result.exit_code == 0, result.output
    for path in (tmp_path / "tiny-bert/figures").iterdir():
        assert path.read_bytes() == (out / "tiny-bert/figures" / path.name).read_bytes(), path.name


def png_pixels(data: bytes) -> bytes:
    """Return the decompressed (still row-filtered) image data of a PNG."""
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        if kind == b"IDAT":
            chunks.append(data[offset + 8 : offset + 8 + length])
        offset += 12 + length
    return zlib.decompress(b"".join(chunks))


def test_figure_pngs_are_not_blank(tiny_build):
    _, out, _ = tiny_build
    for path in (out / "tiny-bert/figures").glob("*.png"):
        pixels = png_pixels(path.read_bytes())
        width, height = png_size(path.read_bytes())
        assert len(pixels) == height * (1 + 4 * width)  # RGBA rows, each with a filter byte
        assert len(set(pixels)) > 32, f"{path.name} looks blank"


def test_canonical_svg_renumbers_counted_ids():
    a = '<p fill="url(#gradient_7)"/><clipPath id="clip12"/><g clip-path="url(#clip12)"/><g id="gradient_7"/>'
    b = '<p fill="url(#gradient_0)"/><clipPath id="clip3"/><g clip-path="url(#clip3)"/><g id="gradient_0"/>'
    assert canonical_svg(a) == canonical_svg(b)
    assert 'id="clip0"' in canonical_svg(a) and "url(#gradient_0)" in canonical_svg(a)


def test_png_from_svg_equals_vl_converts_direct_png(tiny_build):
    import vl_convert

    _, _, artifacts_root = tiny_build
    (page, context), *_ = contexts(artifacts_root)
    spec = static_spec(export_spec(context["charts"][0]))
    rendered = render_figures_uncached(spec, ["svg", "png", "pdf"])
    assert rendered["png"] == vl_convert.vegalite_to_png(spec, scale=2)
    assert rendered["pdf"].startswith(b"%PDF")


def test_control_characters_do_not_crash_the_figure_renderer():
    """vl-convert aborts the process on ESC/BEL in text; figures show control pictures instead."""
    from generator.render.figures import render_figures

    spec = {
        "data": {"values": [{"label": "esc \x1b[0m bell \x07 nul \x00", "texts": 1}]},
        "mark": "bar",
        "encoding": {
            "y": {"field": "label", "type": "nominal"},
            "x": {"field": "texts", "type": "quantitative"},
        },
    }
    out = render_figures(spec, ["svg", "png"])
    svg = out["svg"].decode("utf-8")
    assert "\u241b" in svg and "\x1b" not in svg
    assert out["png"].startswith(b"\x89PNG")


def test_figure_cache_returns_the_rendered_bytes(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELATLAS_CACHE", str(tmp_path / "cache"))
    spec = {
        "data": {"values": [{"x": 1, "y": 2}]},
        "mark": "point",
        "encoding": {"x": {"field": "x", "type": "quantitative"}},
    }
    first = render_figures(spec, ["svg", "png"])
    assert len(list((tmp_path / "cache" / "figures").rglob("figure.*"))) == 2
    assert (
        render_figures(spec, ["svg", "png"])
        == first
        == render_figures_uncached(spec, ["svg", "png"])
    )


def test_worker_processes_render_the_same_bytes_and_name_a_broken_chart(tmp_path, monkeypatch):
    import generator.render.figures as figures

    specs = [
        (
            f"p.html#c{i}",
            {
                "mark": "bar",
                "data": {"values": [{"x": i, "y": 2 * i}]},
                "encoding": {"x": {"field": "x"}, "y": {"field": "y"}},
            },
        )
        for i in range(3)
    ]
    monkeypatch.setattr(figures, "PARALLEL_FIGURES", 0)  # workers even for three charts
    rendered = {}
    for workers in ("1", "2"):
        monkeypatch.setenv("MODELATLAS_CACHE", str(tmp_path / f"cache-{workers}"))
        monkeypatch.setenv("MODELATLAS_WORKERS", workers)
        rendered[workers] = figures.render_all(specs, ("svg", "png"))
    assert rendered["1"] == rendered["2"]
    broken = [*specs, ("p.html#bad", {"mark": "nonsense-mark", "data": {"values": [{"x": 1}]}})]
    monkeypatch.setenv("MODELATLAS_CACHE", str(tmp_path / "cache-broken"))
    with pytest.raises(FigureError, match=r"chart p\.html#bad could not be exported"):
        figures.render_all(broken, ("svg",))
