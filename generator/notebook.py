"""The Python API for notebooks: read built atlases' artifacts and tables, show them inline.

    import generator
    generator.build("model_cards/my-model.md")          # into site/ and artifacts/, as the CLI
    atlas = generator.open_atlas("artifacts/my-model")  # its site: site/my-model
    atlas.arrays, atlas.array("attentions"), atlas.axes("attentions")
    atlas.tables, atlas.table("head_metrics")                 # lists of dicts, as stored
    generator.show(atlas.page("attention"))                  # the offline page, inline
    generator.show(atlas.page("overview"), chart="parameters")  # one chart: an Altair chart

`show` of a page returns an object that Jupyter displays as an `<iframe>` of the page served by a
small HTTP server on 127.0.0.1 in the kernel (the pages load their scripts and data from their
folder, which neither a file:// frame nor an inline `srcdoc` can do inside Jupyter); `show` of a
chart returns the Altair chart itself, rebuilt from the stored tables by the page's own builder,
with the exported figure's fixed size, drawn offline (see `Atlas.chart`). Nothing here needs
pandas or IPython.
"""

from __future__ import annotations

import html
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

from generator.errors import AtlasError

DEFAULT_HEIGHT = 720  # px: the inline frame of a page
_servers: dict[Path, object] = {}  # site root -> its PreviewServer, started on first show
_servers_lock = threading.Lock()


class NotebookError(AtlasError):
    """An atlas, page or chart asked for in a notebook does not exist."""


@dataclass
class Atlas:
    """One built model: its artifacts (arrays, tables) and, when known, its site folder.

    Args:
        artifacts: the model's artifact folder (`ARTIFACTS/NAME`, holding manifest.json).
        site: the model's site folder (`SITE/NAME`, holding build-info.json), or None.
    """

    artifacts: Path
    site: Path | None = None
    _store: object = field(default=None, init=False, repr=False)
    _tables: dict | None = field(default=None, init=False, repr=False)
    _charts: dict = field(default_factory=dict, init=False, repr=False)  # page -> descriptions

    def __post_init__(self) -> None:
        from generator.artifacts import open_artifacts

        self.artifacts = Path(self.artifacts)
        self.site = Path(self.site) if self.site is not None else None
        self._store = open_artifacts(self.artifacts)

    @property
    def name(self) -> str:
        """Return the model's name (its card's `name`)."""
        return self.artifacts.name

    @property
    def manifest(self) -> dict:
        """Return the artifact manifest (docs/artifacts.md)."""
        return self._store.manifest

    @property
    def arrays(self) -> list[str]:
        """Return the names of the stored arrays, sorted."""
        return sorted(self.manifest["arrays"])

    def array(self, name: str, mmap: bool = True):
        """Return array `name` (memory-mapped unless mmap=False; bfloat16 as float32).

        Args:
            name: an array name from `arrays`, e.g. "attentions".
            mmap: map the file instead of reading it into memory.

        Returns:
            A numpy array whose dimensions are named by `axes(name)`.
        """
        self._require(name)
        return self._store.array(name, mmap=mmap)

    def axes(self, name: str) -> list[str]:
        """Return the named axes of array `name`, e.g. ['example', 'layer', 'head', ...]."""
        self._require(name)
        return self._store.axes(name)

    def _require(self, name: str) -> None:
        """Refuse, in one line, an array name this model's artifacts do not hold."""
        if not self._store.has(name):
            raise NotebookError(
                f"array '{name}' is not in {self._store.root}; `arrays` lists the ones it holds"
            )

    @property
    def tables(self) -> list[str]:
        """Return the names of the analysis tables, sorted."""
        return sorted(self._analysis_tables())

    def table(self, name: str):
        """Return analysis table `name` as stored: a list of row dicts (or a dict of them)."""
        tables = self._analysis_tables()
        if name not in tables:
            raise NotebookError(
                f"no table '{name}' for {self.name}; its tables: {', '.join(sorted(tables))}"
            )
        return tables[name]

    @property
    def pages(self) -> list[str]:
        """Return the file names of the model's pages, in navigation order."""
        from generator.render.site import model_pages

        return [page.filename for page in model_pages(self._store)]

    def page(self, name: str = "index.html") -> AtlasPage:
        """Return one page by file name ("attention.html"), stem ("attention") or title.

        "overview" names the overview page (index.html).
        """
        from generator.render.site import model_pages

        wanted = name.lower().removesuffix(".html")
        for page in model_pages(self._store):
            stem = page.filename.removesuffix(".html")
            if wanted in (stem, page.title.lower()) or (wanted == "overview" and stem == "index"):
                return AtlasPage(self, page.filename, page.title)
        raise NotebookError(f"{self.name} has no page '{name}'; its pages: {', '.join(self.pages)}")

    def charts(self, page: str = "index.html") -> list[str]:
        """Return the ids of the charts on `page`, in page order."""
        return [item["id"] for item in self._chart_items(page)]

    def chart(self, page: str, chart: str):
        """Return chart `chart` of `page` as an Altair chart, rebuilt from the stored tables.

        It is the chart's exported figure: the page's static spec with fixed width and height.
        Unless an Altair renderer was chosen (`alt.renderers.enable`), this enables Altair's
        `html` renderer with its `inline` template, which embeds the Vega libraries that
        vl-convert bundles in each output (about 0.9 MB): charts draw offline, where the default
        renderer loads them from a CDN.
        """
        import altair as alt

        from generator.render.figures import export_spec, static_spec

        items = self._chart_items(page)
        item = next((item for item in items if item["id"] == chart), None)
        if item is None:
            ids = ", ".join(i["id"] for i in items) or "none"
            raise NotebookError(
                f"page '{page}' of {self.name} has no chart '{chart}'; its charts: {ids}"
            )
        spec = export_spec(item)
        if spec is None:
            raise NotebookError(
                f"chart '{chart}' gets its data from the page's script; show the page instead"
            )
        if alt.renderers.active == "default":
            alt.renderers.enable("html", template="inline")
        return alt.Chart.from_dict(altair_ready(static_spec(spec)))

    def _chart_items(self, page: str) -> list[dict]:
        """Return the chart descriptions the page's context builder makes."""
        from generator.render.pages import PAGES

        filename = self.page(page).filename
        if filename not in self._charts:
            builder = next(p for p in PAGES if p.filename == filename)
            context = builder.context(self._store, self._analysis_tables())
            self._charts[filename] = context.get("charts", [])
        return self._charts[filename]

    def _analysis_tables(self) -> dict:
        """Return every analysis table (computed once and stored if missing or out of date)."""
        if self._tables is None:
            from generator.analyze.run import analyze

            self._tables = analyze(self._store)
        return self._tables


def altair_ready(spec: dict) -> dict:
    """Return a JSON copy of a figure spec that Altair's schema accepts.

    The theme's `config.background: null` (transparent pages) is valid Vega-Lite that Altair's
    schema refuses; a figure's own top-level white background overrides it anyway.
    """
    spec = json.loads(json.dumps(spec))
    config = spec.get("config") or {}
    if "background" in config and config["background"] is None:
        del config["background"]
    return spec


@dataclass(frozen=True)
class AtlasPage:
    """One page of a built model, for `show`."""

    atlas: Atlas
    filename: str
    title: str

    @property
    def path(self) -> Path:
        """Return the page's file in the site folder."""
        if self.atlas.site is None:
            raise NotebookError(
                f"the site folder of {self.atlas.name} is not known; "
                "pass site=SITE/NAME to open_atlas"
            )
        return self.atlas.site / self.filename


class PageFrame:
    """A built page shown inline: Jupyter displays it as an iframe of the page's local URL."""

    def __init__(self, url: str, height: int = DEFAULT_HEIGHT):
        self.url = url
        self.height = height

    def _repr_html_(self) -> str:
        """Return the iframe Jupyter renders."""
        return (
            f'<iframe src="{html.escape(self.url)}" width="100%" height="{int(self.height)}"'
            ' style="border: 1px solid #ccc" loading="lazy"></iframe>'
        )

    def __repr__(self) -> str:
        return f"PageFrame({self.url!r})"


def open_atlas(
    path: str | Path, *, site: str | Path | None = None, name: str | None = None
) -> Atlas:
    """Open a built model from its artifact folder or its site folder.

    Args:
        path: `ARTIFACTS/NAME` or `SITE/NAME`; or the artifact store or site root itself,
            with `name` or when it holds one model.
        site: the model's site folder; default: the other half of `build`'s layout (SITE/NAME
            beside ARTIFACTS/NAME in the same parent folder), when it exists.
        name: the model to open inside a root folder.

    Returns:
        The Atlas.
    """
    from generator.artifacts import MANIFEST
    from generator.render.site import BUILD_INFO

    folder = _model_folder(Path(path), name, (MANIFEST, BUILD_INFO))
    if (folder / MANIFEST).is_file():
        artifacts = folder
        guess = folder.parent.parent / "site" / folder.name
        site = site if site is not None else (guess if (guess / BUILD_INFO).is_file() else None)
    else:
        artifacts = folder.parent.parent / "artifacts" / folder.name
        site = site if site is not None else folder
        if not (artifacts / MANIFEST).is_file():
            raise NotebookError(
                f"{folder} is a site folder, but its artifacts are not in {artifacts}; "
                "open the artifact folder instead, with site=" + str(folder)
            )
    return Atlas(artifacts, site)


def _model_folder(path: Path, name: str | None, markers: tuple[str, ...]) -> Path:
    """Return the model folder `path` names (itself, or its `name`/only model subfolder)."""
    if any((path / marker).is_file() for marker in markers):
        return path
    if name is not None and any((path / name / m).is_file() for m in markers):
        return path / name
    models = (
        sorted(
            p
            for p in path.glob("*")
            if not p.name.startswith(".") and any((p / m).is_file() for m in markers)
        )
        if path.is_dir()
        else []
    )
    if len(models) == 1 and name is None:
        return models[0]
    found = ", ".join(p.name for p in models) or "none"
    raise NotebookError(
        f"{path} is not a built model's artifact or site folder (models in it: {found}); "
        "pass ARTIFACTS/NAME, SITE/NAME or name=NAME"
    )


def show(
    page: AtlasPage | Atlas | str | Path, chart: str | None = None, *, height: int = DEFAULT_HEIGHT
):
    """Show a built page, or one of its charts, inline in Jupyter.

    Args:
        page: `atlas.page("attention")`, an Atlas (its overview), or the path of a built page
            (SITE/NAME/attention.html) or model site folder.
        chart: a chart id of that page (`atlas.charts(page)`): return that chart instead.
        height: the page frame's height in pixels.

    Returns:
        With `chart`, the Altair chart (Jupyter renders it with its Vega-Lite renderer); else a
        PageFrame, which Jupyter renders as an iframe of the page served from 127.0.0.1.
    """
    if isinstance(page, Atlas):
        page = page.page()
    if chart is not None:
        if not isinstance(page, AtlasPage):
            raise NotebookError(
                "a chart needs the model's artifacts: show(open_atlas(...).page(PAGE), chart=ID)"
            )
        return page.atlas.chart(page.filename, chart)
    file = page.path if isinstance(page, AtlasPage) else Path(page)
    if file.is_dir():
        file = file / "index.html"
    if not file.is_file():
        raise NotebookError(f"no built page at {file}; build the model first")
    root = file.resolve().parent.parent  # the site root: the model folder's links to ../ work
    url = _server_for(root).url + file.resolve().relative_to(root).as_posix()
    return PageFrame(url, height)


def _server_for(root: Path):
    """Return the running server of site folder `root`, starting it on first use."""
    from generator.serve import PreviewServer

    with _servers_lock:
        server = _servers.get(root)
        if server is None:
            server = PreviewServer(root, port=0, live=False).start()
            _servers[root] = server
        return server
