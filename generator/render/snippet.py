"""`site/NAME/card-snippet.md`: a Markdown block to paste into a Hugging Face model card.

It links the hosted atlas, lists the key numbers (and every page's headline facts) and shows the
first figure of each page as an image linking to its SVG. Links are relative to the model folder
unless a base URL is given (`--base-url https://USER.github.io/REPO`), which makes them absolute:
a model card on the Hugging Face hub needs absolute image URLs.
"""

from __future__ import annotations

import re

from generator.errors import AtlasError
from generator.render.figures import Figure

SNIPPET = "card-snippet.md"
_BASE_URL = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#<>!])")


class BaseUrlError(AtlasError):
    """The --base-url value is not an absolute http(s) URL."""


def normalize_base_url(url: str | None) -> str | None:
    """Return the base URL without a trailing slash; raise BaseUrlError unless it is http(s)."""
    if url is None or url == "":
        return None
    if not _BASE_URL.fullmatch(url):
        raise BaseUrlError(
            f"--base-url {url!r} is not an absolute http(s) URL without query or fragment; "
            "pass e.g. https://USER.github.io/REPO"
        )
    return url.rstrip("/")


def escape_md(text: object) -> str:
    """Escape Markdown (and HTML) syntax so card text shows as typed, on one line."""
    flat = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", flat)


def link_prefix(name: str, base_url: str | None) -> str:
    """Return what goes before a model-folder-relative path: "" or "BASE/NAME/"."""
    return f"{base_url}/{name}/" if base_url else ""


def key_numbers(summary: dict) -> list[tuple[str, str]]:
    """Return (label, value) rows of the model's key numbers and its pages' headline facts."""
    rows = [
        (
            "architecture",
            f"{summary['family']} family ({summary['model_type']}), "
            f"{summary['layers']} layers × {summary['heads']} heads, d_model {summary['d_model']}",
        ),
        ("parameters", f"{summary['parameters']:,}"),
        ("corpus", f"{summary['texts']:,} texts" if summary.get("texts") else "none"),
    ]
    rows += [(row["label"], row["value"]) for row in summary.get("headlines", [])]
    return rows


def headline_figures(figures: list[Figure]) -> list[Figure]:
    """Return the first figure of each page, in page order."""
    first: dict[str, Figure] = {}
    for figure in figures:
        first.setdefault(figure.page, figure)
    return list(first.values())


def card_snippet(
    summary: dict,
    pages: list[tuple[str, str]],
    figures: list[Figure],
    version: str,
    base_url: str | None = None,
) -> str:
    """Return the Markdown snippet of one model.

    Args:
        summary: the model summary (`site.model_summary`).
        pages: (file name, title) of every page, in navigation order.
        figures: the exported figures of the model.
        version: the Model Atlas version, named in the snippet's comment.
        base_url: absolute URL of the hosted site (its root, holding index.html), or None.
    """
    prefix = link_prefix(summary["name"], base_url)
    title = escape_md(summary["title"])
    lines = [
        f"<!-- Model Atlas {version} snippet for {escape_md(summary['name'])}: "
        "paste into the model card's README.md -->",
        "## Model Atlas",
        "",
        f"An interactive atlas of what **{title}** does inside, built with Model Atlas: "
        + " · ".join(f"[{escape_md(t)}]({prefix}{f})" for f, t in pages)
        + ". It is a static site: every page works offline.",
        "",
        "| | |",
        "| --- | --- |",
    ]
    lines += [
        f"| {escape_md(label)} | {escape_md(value)} |" for label, value in key_numbers(summary)
    ]
    if summary.get("findings"):
        lines += ["", "### What the atlas found", "", "| finding | view |", "| --- | --- |"]
        lines += [
            f"| {escape_md(fact['text'])} | [open]({prefix}{fact['link']}) |"
            for fact in summary["findings"]
        ]
    for figure in headline_figures(figures):
        image = figure.file("png") or figure.file("svg")
        if image is None:
            continue
        target = figure.file("svg") or image
        lines += [
            "",
            f"[![{escape_md(figure.label)}]({prefix}{image})]({prefix}{target})",
            "",
            f"*{escape_md(figure.caption)}* "
            f"([interactive view]({prefix}{figure.page}#chart={figure.chart}))",
        ]
    return "\n".join(lines) + "\n"
