"""Paper figures: every chart of every page exported to `site/NAME/figures/` through vl-convert.

A chart's figure comes from its description's `figure_spec` when the page builder gave one (charts
whose data the page script fills in), else from its `spec`; an interactive chart with an empty
dataset and no `figure_spec` has nothing to draw and is skipped. Figures get a fixed width in
place of `"container"`, a white background and the light theme, so they read the same on paper
in every viewer. SVG and PNG output of a given vl-convert version (and set of installed fonts) is
byte-identical across runs: Vega numbers gradient and clip-path ids with a per-process counter,
so `canonical_svg` renumbers them per file. PDF is not byte-identical (vl-convert writes its font
objects in varying order), so PDF is only made on request.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from generator.atomic import write_bytes_atomic
from generator.errors import AtlasError

log = logging.getLogger(__name__)

FIGURES_DIR = "figures"
FORMATS = ("svg", "png", "pdf")
DEFAULT_FORMATS = ("svg", "png")
FIGURE_WIDTH = 560  # px, replaces width "container" (which has no container outside a page)
FIGURE_HEIGHT = 300  # px, replaces height "container"
PNG_SCALE = 2  # PNG pixels per CSS pixel: sharp in print and on high-density screens
BACKGROUND = "white"


class FigureError(AtlasError):
    """A chart could not be exported as a figure."""


@dataclass(frozen=True)
class Figure:
    """One exported chart: file stem, the page and chart it shows, and its files."""

    name: str
    page: str
    chart: str
    label: str
    caption: str
    files: tuple[str, ...]  # relative to the model folder, e.g. "figures/overview-parameters.svg"

    def to_dict(self) -> dict:
        """Return a JSON-ready dict (for build-info.json)."""
        return {**asdict(self), "files": list(self.files)}

    def file(self, fmt: str) -> str | None:
        """Return the relative path of this figure in format `fmt`, if it was exported."""
        return next((f for f in self.files if f.endswith(f".{fmt}")), None)


def slug(text: str) -> str:
    """Return a lowercase file-name slug of `text` ("Head metrics" -> "head-metrics")."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "page"


def figure_name(page_title: str, chart_id: str) -> str:
    """Return the file stem of a chart's figure: page slug, then chart id."""
    return f"{slug(page_title)}-{slug(chart_id)}"


def _datasets_empty(spec: dict) -> bool:
    """Tell whether any named dataset of the spec is empty (its rows come from page JS)."""
    return any(not rows for rows in (spec.get("datasets") or {}).values())


def export_spec(item: dict) -> dict | None:
    """Return the spec to export for a chart description, or None when there is nothing to draw."""
    if item.get("figure_spec") is not None:
        return item["figure_spec"]
    spec = item["spec"]
    if item.get("interactive") and _datasets_empty(spec):
        return None
    return spec


def _fix_sizes(node):
    """A copy of `node` with "container" widths and heights fixed, recursively.

    Every dict and list is new; the leaves are JSON scalars (immutable), so the copy shares
    nothing mutable with `node`.
    """
    if isinstance(node, dict):
        out = {key: _fix_sizes(value) for key, value in node.items()}
        if out.get("width") == "container":
            out["width"] = FIGURE_WIDTH
        if out.get("height") == "container":
            out["height"] = FIGURE_HEIGHT
        return out
    if isinstance(node, list):
        return [_fix_sizes(value) for value in node]
    return node


def static_spec(spec: dict) -> dict:
    """Return a copy of `spec` ready for export: fixed sizes, opaque white background."""
    out = _fix_sizes(spec)
    out["background"] = BACKGROUND
    out.setdefault("autosize", {"type": "pad"})
    return out


_COUNTED_ID = re.compile(r'(?<=["#])(gradient_|clip|pattern_)(\d+)(?=["\)])')


def canonical_svg(svg: str) -> str:
    """Renumber Vega's process-wide gradient/clip ids from 0 in order of appearance."""
    numbers: dict[str, str] = {}

    def renumber(match: re.Match) -> str:
        key = match.group(0)
        if key not in numbers:
            numbers[key] = f"{match.group(1)}{sum(k.startswith(match.group(1)) for k in numbers)}"
        return numbers[key]

    return _COUNTED_ID.sub(renumber, svg)


# vl-convert's renderer aborts the whole process on C0 control characters in text (seen with
# ESC and BEL in vl-convert-python 1.9): figures show them as Unicode control pictures instead.
_CONTROL_PICTURES = {code: chr(0x2400 + code) for code in range(32) if code != 9}
_CONTROL_PICTURES[0x7F] = "\u2421"


def printable(value):
    """Return `value` with control characters in every string replaced by control pictures."""
    if isinstance(value, str):
        return value.translate(_CONTROL_PICTURES)
    if isinstance(value, dict):
        return {printable(key): printable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [printable(item) for item in value]
    return value


def figure_cache_dir() -> Path:
    """Folder of rendered figures keyed by spec hash, in the user's cache (`user_cache_dir`)."""
    from generator.user_cache import user_cache_dir

    return user_cache_dir() / "figures"


def figure_key(spec: dict, formats: tuple[str, ...]) -> str:
    """Return the cache key of a render: the spec, formats, vl-convert version, this source."""
    import hashlib
    import json

    import vl_convert

    return hashlib.sha256(
        json.dumps(
            [spec, formats, vl_convert.__version__, Path(__file__).read_text("utf-8")],
            sort_keys=True,
            ensure_ascii=False,
        ).encode("utf-8")
    ).hexdigest()


def _cache_paths(spec: dict, formats: tuple[str, ...]) -> dict[str, Path]:
    """Return {format: cached file} of a render."""
    key = figure_key(spec, formats)
    folder = figure_cache_dir() / key[:2] / key
    return {fmt: folder / f"figure.{fmt}" for fmt in formats}


def cached_figures(spec: dict, formats: Iterable[str]) -> dict[str, bytes] | None:
    """Return an earlier render of the identical spec in `formats`, or None."""
    cached = _cache_paths(spec, tuple(formats))
    if all(path.is_file() for path in cached.values()):
        return {fmt: path.read_bytes() for fmt, path in cached.items()}
    return None


def render_figures(spec: dict, formats: Iterable[str]) -> dict[str, bytes]:
    """Render a spec to `formats`, reusing earlier renders of the identical spec.

    Rendering is deterministic for SVG and PNG (tested), so a render is stored under the hash of
    the spec, the formats, the vl-convert version and this module's source: rebuilding an
    unchanged chart costs a file read instead of seconds of vl-convert.
    """
    formats = tuple(formats)
    found = cached_figures(spec, formats)
    return found if found is not None else store_figures(spec, formats)


def store_figures(spec: dict, formats: tuple[str, ...]) -> dict[str, bytes]:
    """Render a spec to `formats` and keep the render in the figure cache."""
    out = render_figures_uncached(spec, formats)
    try:
        for fmt, path in _cache_paths(spec, formats).items():
            write_bytes_atomic(path, out[fmt])
    except OSError:  # a read-only or full cache only costs speed
        pass
    return out


def render_figures_uncached(spec: dict, formats: Iterable[str]) -> dict[str, bytes]:
    """Render a Vega-Lite spec once to SVG with vl-convert, then to each format in `formats`.

    PNG and PDF are converted from that SVG (`svg_to_png`, `svg_to_pdf`): the same bytes as
    `vegalite_to_png` / `vegalite_to_pdf` give, without running Vega again for each format.
    No data URL may be fetched (`allowed_base_urls=[]`).
    """
    import vl_convert

    svg = canonical_svg(vl_convert.vegalite_to_svg(printable(spec), allowed_base_urls=[]))
    out = {}
    for fmt in formats:
        if fmt == "svg":
            out[fmt] = svg.encode("utf-8")
        elif fmt == "png":
            out[fmt] = vl_convert.svg_to_png(svg, scale=PNG_SCALE)
        elif fmt == "pdf":
            out[fmt] = vl_convert.svg_to_pdf(svg)
        else:
            raise FigureError(f"unknown figure format {fmt!r}; use one of {', '.join(FORMATS)}")
    return out


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """Return the formats in canonical order; raise FigureError on an unknown one."""
    wanted = set(formats)
    unknown = sorted(wanted - set(FORMATS))
    if unknown:
        raise FigureError(
            f"unknown figure format(s) {', '.join(unknown)}; use {', '.join(FORMATS)}"
        )
    return tuple(fmt for fmt in FORMATS if fmt in wanted)


def export_charts(
    pages: Iterable[tuple[object, dict]],
    model_folder: Path,
    formats: Iterable[str] = DEFAULT_FORMATS,
) -> list[Figure]:
    """Export the charts of every (Page, context) pair into `model_folder/figures/`.

    Each exported chart description gets a `figure` entry {format: relative path} that
    `_chart.html` turns into download links; skipped charts get `figure = None`.

    Args:
        pages: (Page, template context) pairs; charts are read from `context["charts"]`.
        model_folder: the model's site folder (or its staging folder).
        formats: any of "svg", "png", "pdf".

    Returns:
        The exported figures, in page and chart order.

    Raises:
        FigureError: vl-convert failed on a chart, or two charts map to the same file name.
    """
    formats = check_formats(formats)
    started = time.perf_counter()
    planned = plan_figures(pages)
    rendered = render_all([(f"{p.filename}#{i['id']}", spec) for p, i, _, spec in planned], formats)
    figures: list[Figure] = []
    for (page, item, name, _), data in zip(planned, rendered, strict=True):
        files = []
        for fmt, content in data.items():
            relative = f"{FIGURES_DIR}/{name}.{fmt}"
            write_bytes_atomic(model_folder / relative, content)
            files.append(relative)
        item["figure"] = {fmt: path for fmt, path in zip(formats, files, strict=True)}
        figures.append(
            Figure(name, page.filename, item["id"], item["label"], item["caption"], tuple(files))
        )
    log.info(
        "%d figure(s) exported as %s in %.2f s",
        len(figures),
        "/".join(formats),
        time.perf_counter() - started,
    )
    return figures


def plan_figures(pages: Iterable[tuple[object, dict]]) -> list[tuple[object, dict, str, dict]]:
    """Return (page, chart item, figure name, static spec) of every exportable chart, in order.

    Charts without a spec of their own (drawn from page JS) get `figure = None` and are left out.

    Raises:
        FigureError: two charts map to the same file name.
    """
    planned = []
    seen: dict[str, str] = {}
    for page, context in pages:
        for item in context.get("charts") or []:
            item["figure"] = None
            spec = export_spec(item)
            if spec is None:
                log.info(
                    "%s#%s: data comes from page JS and no figure_spec; no figure",
                    page.filename,
                    item["id"],
                )
                continue
            name = figure_name(page.title, item["id"])
            where = f"{page.filename}#{item['id']}"
            if name in seen:
                raise FigureError(
                    f"charts {seen[name]} and {where} both export as figures/{name}; "
                    "give one of them another id"
                )
            seen[name] = where
            planned.append((page, item, name, static_spec(spec)))
    return planned


# Starting a worker process costs about a second: below this many figures to render, one process.
PARALLEL_FIGURES = 16


def render_chart(spec: dict, formats: tuple[str, ...], where: str) -> dict[str, bytes]:
    """Render one uncached chart's figures (a worker job); a failure names the chart in one line."""
    try:
        return store_figures(spec, formats)
    except FigureError:
        raise
    except Exception as error:  # vl-convert raises ValueError with a JS message
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise FigureError(
            f"chart {where} could not be exported: {message}; check its spec (or its figure_spec)"
        ) from None


def render_all(specs: list[tuple[str, dict]], formats: tuple[str, ...]) -> list[dict[str, bytes]]:
    """Render every (page#chart, spec): cached ones read back, new ones in workers when many.

    vl-convert renders one chart at a time per process; the worker pool of
    `generator.analyze.workers` (MODELATLAS_WORKERS) spreads the uncached ones over the CPUs.
    """
    from generator.analyze.workers import run_jobs

    out: list[dict[str, bytes] | None] = [cached_figures(spec, formats) for _, spec in specs]
    missing = [i for i, found in enumerate(out) if found is None]
    jobs = [(specs[i][1], formats, specs[i][0]) for i in missing]
    fresh = run_jobs(render_chart, jobs, small=len(missing) < PARALLEL_FIGURES)
    for i, data in zip(missing, fresh, strict=True):
        out[i] = data
    return out
