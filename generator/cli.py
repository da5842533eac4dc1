"""The `modelatlas` command line: a thin Click layer over generator.build."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

import generator
from generator.errors import AtlasError

log = logging.getLogger("generator")

DEFAULT_CARDS = Path("model_cards")


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
                f"no model cards in {DEFAULT_CARDS}/; pass a card path or add a NAME.md card"
            )
        paths = tuple(str(p) for p in found)
    return [load_card(path) for path in paths]


class AtlasGroup(click.Group):
    """Click group that turns unexpected exceptions into one line unless --debug is given."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            raise click.ClickException(
                f"unexpected {type(error).__name__}: {error} (rerun with --debug for the traceback)"
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


def verbosity(quiet: bool, verbose: int) -> int:
    """Combine -q and -v into one level."""
    return -1 if quiet else verbose


@click.group(cls=AtlasGroup)
@click.version_option(generator.__version__, prog_name="modelatlas")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Model Atlas: build a static website of what a transformer does inside."""
    ctx.obj = {"debug": debug}


@main.command()
@click.argument("cards", nargs=-1, type=click.Path(dir_okay=False))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("site"),
    show_default=True,
    help="Output folder of the site.",
)
@click.option(
    "--force", is_flag=True, help="Recompute every stage even if its inputs are unchanged."
)
@click.option("--strict", is_flag=True, help="Treat warnings (e.g. truncated texts) as errors.")
@common_options
def build(cards, out, force, strict, artifacts, verbose, quiet):
    """Extract, analyze and render CARDS (default: every model_cards/*.md) into --out."""
    from generator.build import build_cards

    configure_logging(verbosity(quiet, verbose))
    loaded = load_cards(cards)
    reports = build_cards(loaded, out, artifacts, force=force, strict=strict, progress=not quiet)
    if not quiet:
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
        click.echo(f"site index: {out / 'index.html'}")


@main.command()
@click.argument("card", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Recompute even if the inputs are unchanged.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@common_options
def extract(card, force, strict, artifacts, verbose, quiet):
    """Run only the extract stage of CARD into the artifact store."""
    from generator.build import extract_card

    configure_logging(verbosity(quiet, verbose))
    (loaded,) = load_cards((card,))
    result = extract_card(loaded, artifacts, force=force, strict=strict, progress=not quiet)
    if not quiet:
        state = "up to date" if result.skipped else f"written in {result.seconds:.1f} s"
        click.echo(f"{loaded.name}: artifacts {state} -> {result.folder}/")


@main.command()
@click.argument("card", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("site"),
    show_default=True,
    help="Output folder of the site.",
)
@click.option("--force", is_flag=True, help="Re-render even if nothing changed.")
@common_options
def render(card, out, force, artifacts, verbose, quiet):
    """Analyze and render CARD from existing artifacts (no forward pass)."""
    from generator.build import render_card
    from generator.render.site import render_index

    configure_logging(verbosity(quiet, verbose))
    (loaded,) = load_cards((card,))
    result = render_card(loaded, artifacts, out, force=force)
    render_index(out)
    if not quiet:
        click.echo(
            f"{loaded.name}: site {'up to date' if result.skipped else 'written'} -> {result.folder}/"
        )


if __name__ == "__main__":
    main()
