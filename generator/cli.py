"""The `modelatlas` command line: a thin Click layer over generator.build."""

from __future__ import annotations

import logging
import sys
import time
import traceback
from pathlib import Path

import click

import generator
from generator.errors import AtlasError, one_line

log = logging.getLogger("generator")

DEFAULT_CARDS = Path("model_cards")
INTERRUPTED = 130  # exit status after Ctrl-C (128 + SIGINT), as shells report it


def configure_logging(verbosity: int) -> None:
    """Log to stderr: warnings by default, info with -v, debug with -vv, errors only with -q."""
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("generator")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def load_cards(paths: tuple[str, ...]) -> list:
    """Load the named cards, or every card in model_cards/ when none is named."""
    from generator.card import find_cards, load_card

    if not paths:
        found = find_cards(DEFAULT_CARDS) if DEFAULT_CARDS.is_dir() else []
        if not found:
            raise AtlasError(
                f"no model cards in {DEFAULT_CARDS}/; build a checkpoint on the bundled demo "
                "corpus with `modelatlas build --model FOLDER_OR_HUB_ID`, pass a card path, or "
                "write one with `modelatlas new-card FOLDER_OR_HUB_ID`"
            )
        paths = tuple(str(p) for p in found)
    return [load_card(path) for path in paths]


class AtlasGroup(click.Group):
    """Click group: every error is one line; --debug adds the traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AtlasError:
            if ctx.obj and ctx.obj.get("debug"):
                click.echo(traceback.format_exc().rstrip(), err=True)
            raise
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            raise click.ClickException(
                one_line(
                    f"unexpected {type(error).__name__}: {error}"
                    " (rerun with --debug for the traceback)"
                )
            ) from error


def common_options(function):
    """Options shared by commands that read cards and artifacts."""
    function = click.option(
        "--artifacts",
        "artifacts",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("artifacts"),
        show_default=True,
        help="Folder of the artifact store.",
    )(function)
    function = click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")(
        function
    )
    function = click.option("-q", "--quiet", is_flag=True, help="Only errors; no progress bars.")(
        function
    )
    return function


def out_option(function):
    """The --out option: the site folder."""
    return click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("site"),
        show_default=True,
        help="Output folder of the site.",
    )(function)


def base_url_option(function):
    """The --base-url option: where the site is hosted, for absolute links in card snippets."""
    return click.option(
        "--base-url",
        default=None,
        metavar="URL",
        help="URL of the hosted site's root (e.g. https://USER.github.io/REPO): makes the links "
        "in card-snippet.md absolute. Default: relative links.",
    )(function)


def allow_pickle_option(function):
    """The --allow-pickle flag of commands that load checkpoints."""
    return click.option(
        "--allow-pickle",
        is_flag=True,
        help="Read pytorch_model.bin checkpoints that have no safetensors file (a restricted "
        "reader that runs no code from the file).",
    )(function)


def build_flags(*, force: str, strict: str):
    """Return a decorator adding --force, --strict, --base-url and --allow-pickle (in that order)."""

    def add(function):
        function = base_url_option(allow_pickle_option(function))
        function = click.option("--strict", is_flag=True, help=strict)(function)
        return click.option("--force", is_flag=True, help=force)(function)

    return add


def mesh_option(function):
    """The --mesh option: the device mesh of the forward passes."""
    return click.option(
        "--mesh",
        "mesh",
        metavar="data=N,model=M",
        default=None,
        help="Device mesh: batch rows over data, heads/MLP over model "
        "(default: the card's mesh, else every device on data).",
    )(function)


def mesh_options(function):
    """Options of commands that run forward passes: device mesh and multi-process runs."""
    function = click.option(
        "--distributed",
        is_flag=True,
        help="Join a multi-host JAX run (jax.distributed.initialize); see docs/scaling.md.",
    )(function)
    return mesh_option(function)


def apply_mesh(cards: list, mesh: str | None, distributed: bool) -> list:
    """Join the distributed run if asked; give every card the --mesh setting if one is given."""
    import dataclasses

    from generator.extract.sharding import MeshShape

    shape = MeshShape.parse(mesh) if mesh is not None else None
    if distributed:
        from generator.extract.processes import initialize_distributed

        initialize_distributed()
    if shape is None:
        return cards
    return [dataclasses.replace(card, mesh=shape) for card in cards]


def is_primary() -> bool:
    """Return True unless this is a secondary process of a distributed run (it stays quiet)."""
    from generator.extract.processes import is_primary_process

    return is_primary_process()


def verbosity(quiet: bool, verbose: int) -> int:
    """Combine -q and -v into one level."""
    return -1 if quiet else verbose


def show_progress(quiet: bool) -> bool:
    """Draw progress bars only on a terminal: logs and pipes get the result lines alone."""
    return not quiet and sys.stderr.isatty()


@click.group(cls=AtlasGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(generator.__version__, prog_name="modelatlas")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Model Atlas: build a static website of what a transformer does inside."""
    ctx.obj = {"debug": debug}


def build_targets(cards: tuple[str, ...], model: str | None, corpus: str | None) -> list:
    """Return the cards to build: the named ones, model_cards/*.md, or one made for --model."""
    if model is None:
        if corpus is not None:
            raise AtlasError("--corpus needs --model; name the corpus in the card otherwise")
        return load_cards(cards)
    if cards:
        raise AtlasError("pass card paths or --model, not both")
    from generator.scaffold import card_for_model

    return [card_for_model(model, corpus)]


@main.command()
@click.argument("cards", nargs=-1, type=click.Path())
@click.option(
    "--model",
    metavar="PATH_OR_HUB_ID",
    default=None,
    help="Build this checkpoint (folder, package:MODULE/SUBDIR or hub id) without a card file.",
)
@click.option(
    "--corpus",
    type=click.Path(dir_okay=False),
    default=None,
    help="Corpus file for --model (.txt, .jsonl, .csv). Default: the bundled demo corpus.",
)
@out_option
@build_flags(
    force="Recompute every stage even if its inputs are unchanged.",
    strict="Treat warnings (e.g. truncated texts) as errors.",
)
@mesh_options
@common_options
def build(
    *,
    cards,
    model,
    corpus,
    out,
    force,
    strict,
    base_url,
    allow_pickle,
    mesh,
    distributed,
    artifacts,
    verbose,
    quiet,
):
    """Extract, analyze and render CARDS (default: every model_cards/*.md, or --model) into --out."""
    from generator.build import build_cards
    from generator.options import BuildOptions
    from generator.render.snippet import normalize_base_url
    from generator.timings import format_timings

    configure_logging(verbosity(quiet, verbose))
    options = BuildOptions(
        force=force,
        strict=strict,
        progress=show_progress(quiet),
        allow_pickle=allow_pickle,
        base_url=normalize_base_url(base_url),
        notify=None if quiet else click.echo,
    )
    loaded = apply_mesh(build_targets(cards, model, corpus), mesh, distributed)
    reports = build_cards(loaded, out, artifacts, options)
    if not quiet and is_primary():
        for report in reports:
            stages = ", ".join(
                [
                    ("extracted" if report.extracted else "artifacts cached"),
                    ("rendered" if report.rendered else "site cached"),
                ]
            )
            compiled = f" (JAX compile {report.compile_seconds:.1f} s)" if report.extracted else ""
            click.echo(
                f"{report.name}: {stages} in {report.seconds:.1f} s{compiled} -> {out / report.name}/"
            )
            for line in format_timings(report.timings):
                click.echo(f"  {line}")
        click.echo(f"site index: {out / 'index.html'}")


@main.command()
@click.argument("card", type=click.Path())
@click.option("--force", is_flag=True, help="Recompute even if the inputs are unchanged.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@allow_pickle_option
@mesh_options
@common_options
def extract(*, card, force, strict, allow_pickle, mesh, distributed, artifacts, verbose, quiet):
    """Run only the extract stage of CARD into the artifact store."""
    from generator.build import extract_card
    from generator.options import BuildOptions

    configure_logging(verbosity(quiet, verbose))
    options = BuildOptions(
        force=force,
        strict=strict,
        progress=show_progress(quiet),
        allow_pickle=allow_pickle,
        notify=None if quiet else click.echo,
    )
    (loaded,) = apply_mesh(load_cards((card,)), mesh, distributed)
    result = extract_card(loaded, artifacts, options)
    if not quiet and is_primary():
        state = "up to date" if result.skipped else f"written in {result.seconds:.1f} s"
        click.echo(f"{loaded.name}: artifacts {state} -> {result.folder}/")


@main.command()
@click.argument("card", type=click.Path())
@out_option
@click.option("--force", is_flag=True, help="Re-render even if nothing changed.")
@base_url_option
@common_options
def render(*, card, out, force, base_url, artifacts, verbose, quiet):
    """Analyze and render CARD from existing artifacts (no forward pass)."""
    from generator.build import render_card
    from generator.options import BuildOptions
    from generator.render.site import render_index
    from generator.render.snippet import normalize_base_url

    configure_logging(verbosity(quiet, verbose))
    options = BuildOptions(force=force, base_url=normalize_base_url(base_url))
    (loaded,) = load_cards((card,))
    result = render_card(loaded, artifacts, out, options)
    render_index(out)
    if not quiet:
        click.echo(
            f"{loaded.name}: site {'up to date' if result.skipped else 'written'} -> {result.folder}/"
        )


@main.command()
@click.argument("card", type=click.Path(dir_okay=False))
@out_option
@click.option(
    "--format",
    "formats",
    type=click.Choice(["svg", "png", "pdf"]),
    multiple=True,
    help="Figure format; repeat for several. Default: svg and png.",
)
@common_options
def figures(*, card, out, formats, artifacts, verbose, quiet):
    """Export every chart of CARD to --out/NAME/figures/ from existing artifacts (no re-render)."""
    from generator.build import figures_card
    from generator.render.figures import DEFAULT_FORMATS

    configure_logging(verbosity(quiet, verbose))
    (loaded,) = load_cards((card,))
    exported = figures_card(loaded, artifacts, out, formats or DEFAULT_FORMATS)
    if not quiet:
        for figure in exported:
            click.echo(" ".join(str(out / loaded.name / f) for f in figure.files))
        click.echo(f"{loaded.name}: {len(exported)} figure(s) -> {out / loaded.name / 'figures'}/")


@main.command("new-card")
@click.argument("model")
@click.option(
    "--name", default=None, help="Card name (slug); default: from the folder or hub model name."
)
@click.option("--title", default=None, help="Page title; default: the folder or hub model name.")
@click.option(
    "--corpus", default=None, help="Corpus file (.txt, .jsonl, .csv) to name in the card."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_CARDS,
    show_default=True,
    help="Folder of the new card.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing card.")
def new_card(*, model, name, title, corpus, out, force):
    """Scaffold a model card for MODEL, a checkpoint folder or hub id (reads its config.json)."""
    from generator.scaffold import scaffold_card

    path, card = scaffold_card(model, out, name=name, corpus=corpus, title=title, force=force)
    click.echo(
        f"{card.name}: card written to {path}; edit its prose, then: modelatlas build {path}"
    )


@main.command()
@click.argument("cards", nargs=-1, type=click.Path(dir_okay=False))
@out_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--watch/--no-watch",
    default=True,
    show_default=True,
    help="Rebuild CARDS (default: every model_cards/*.md) when a card, its corpus or checkpoint "
    "folder, or a template changes, and reload the open pages.",
)
@build_flags(
    force="Recompute every stage in the first build (as build --force).",
    strict="Treat warnings as errors in every build.",
)
@mesh_option
@common_options
def serve(
    *,
    cards,
    out,
    host,
    port,
    watch,
    force,
    strict,
    base_url,
    allow_pickle,
    mesh,
    artifacts,
    verbose,
    quiet,
):
    """Preview the site at http://HOST:PORT/, rebuilding it when its inputs change."""
    import functools

    from generator.render.snippet import normalize_base_url
    from generator.serve import PreviewServer, card_rebuilder, watched_files

    configure_logging(verbosity(quiet, verbose + 1))  # rebuilds are logged at info
    paths = [Path(c) for c in cards]
    cards_dir = None if paths else DEFAULT_CARDS
    rebuild = watch_files = None
    if watch:
        rebuild = card_rebuilder(
            paths,
            cards_dir,
            out,
            artifacts,
            prepare=lambda loaded: apply_mesh(loaded, mesh, False),
            force=force,
            strict=strict,
            base_url=normalize_base_url(base_url),
            allow_pickle=allow_pickle,
        )
        watch_files = functools.partial(watched_files, paths, cards_dir)
    server = PreviewServer(out, rebuild, watch_files, host=host, port=port)
    try:
        if watch:
            server.build_once()
        server.start()
        click.echo(f"serving {out}/ at {server.url} (Ctrl-C stops)")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        raise click.exceptions.Exit(INTERRUPTED) from None
    finally:
        server.stop()


if __name__ == "__main__":
    main()
