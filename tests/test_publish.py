"""Publishing: site index, page headline registry, card snippet, --base-url, new-card scaffolding."""

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest
from cards import FIXTURES, TINY_BERT
from click.testing import CliRunner

from generator.artifacts import open_artifacts
from generator.card import load_card
from generator.cli import main
from generator.render import site
from generator.render.pages import PAGES
from generator.render.snippet import SNIPPET, BaseUrlError, escape_md, normalize_base_url
from generator.scaffold import scaffold_card

MD_LINK = re.compile(r"\]\(([^)\s]+)\)")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_index_compares_models_and_links_every_page(tiny_build):
    _, out, artifacts = tiny_build
    html = (out / "index.html").read_text()
    texts = len(open_artifacts(artifacts / "tiny-bert").array("corpus/texts"))
    for value in ("Tiny BERT", "bert (bert)", "2 × 4", "38,752", f"<td>{texts}</td>"):
        assert value in html
    for page in PAGES:
        assert f'href="tiny-bert/{page.filename}"' in html and page.title in html
    assert f'href="tiny-bert/{SNIPPET}"' in html
    assert (out / "assets/theme.js").is_file() and (out / "assets/atlas.css").is_file()


def test_snippet_relative_links_resolve_inside_the_model_folder(tiny_build):
    _, out, _ = tiny_build
    folder = out / "tiny-bert"
    text = (folder / SNIPPET).read_text()
    assert text.startswith("<!-- Model Atlas ") and "## Model Atlas" in text
    assert "| parameters | 38,752 |" in text and "2 layers × 4 heads" in text
    links = MD_LINK.findall(text)
    assert {page.filename for page in PAGES} <= set(links)
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    figures = json.loads((folder / "build-info.json").read_text())["figures"]
    first_of_each_page = {}
    for figure in figures:
        first_of_each_page.setdefault(figure["page"], figure["name"])
    assert len(first_of_each_page) >= 2
    assert images == [f"figures/{name}.png" for name in first_of_each_page.values()]
    for link in links:  # a permalink (findings, figures' views) is a page and its fragment
        page = link.split("#", 1)[0]
        assert not link.startswith(("http", "/")) and (folder / page).is_file(), link
    assert any("#chart=" in link for link in links)


def test_base_url_makes_snippet_links_absolute(tiny_build, tmp_path):
    card, _, artifacts = tiny_build
    out = tmp_path / "site"
    result = run(
        "render",
        card,
        "--out",
        out,
        "--artifacts",
        artifacts,
        "--base-url",
        "https://me.github.io/atlas/",
    )
    assert result.exit_code == 0, result.output
    links = MD_LINK.findall((out / "tiny-bert" / SNIPPET).read_text())
    assert links and all(link.startswith("https://me.github.io/atlas/tiny-bert/") for link in links)
    rendered_again = run("render", card, "--out", out, "--artifacts", artifacts)
    assert "site written" in rendered_again.output  # the base URL is part of the render hash
    assert not any(
        link.startswith("http")
        for link in MD_LINK.findall((out / "tiny-bert" / SNIPPET).read_text())
    )


@pytest.mark.parametrize(
    "url", ["example.org", "ftp://x.org", "https://x.org/a?b=1", "https://x y"]
)
def test_bad_base_url_is_one_line_error(tiny_build, tmp_path, url):
    with pytest.raises(BaseUrlError):
        normalize_base_url(url)
    card, _, artifacts = tiny_build
    result = run("render", card, "--out", tmp_path, "--artifacts", artifacts, "--base-url", url)
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output


def test_escape_md_keeps_card_text_inert():
    hostile = "a|b [x](http://e.vil) <script> *bold* `code`\nnext"
    escaped = escape_md(hostile)
    assert "\n" not in escaped and "<script>" not in escaped
    assert "\\|" in escaped and "\\[x\\]" in escaped and "\\*bold\\*" in escaped


def render_with_headlines(headlines: dict, card_path, artifacts_root, tmp_path, monkeypatch):
    """Render the card and the index with only `headlines` ({page filename: fn}); return the site."""
    from generator.build import render_card
    from generator.render.site import render_index

    pages = tuple(
        dataclasses.replace(page, headline=headlines.get(page.filename)) for page in PAGES
    )
    monkeypatch.setattr(site, "PAGES", pages)
    out = tmp_path / "site"
    render_card(load_card(card_path), artifacts_root, out)
    render_index(out)
    return out


def test_page_headlines_reach_summary_index_overview_and_snippet(tiny_build, tmp_path, monkeypatch):
    card_path, _, artifacts_root = tiny_build

    def headline(artifacts, tables):
        return {
            "showcase examples": len(artifacts.array("showcase/index")),
            "layers seen": "2 of 2",
        }

    # Only the overview's headline: the other pages' own headlines are switched off here.
    out = render_with_headlines(
        {PAGES[0].filename: headline}, card_path, artifacts_root, tmp_path, monkeypatch
    )
    info = json.loads((out / "tiny-bert/build-info.json").read_text())
    assert info["model"]["headlines"] == [
        {"page": "index.html", "label": "showcase examples", "value": "4"},
        {"page": "index.html", "label": "layers seen", "value": "2 of 2"},
    ]
    index = (out / "index.html").read_text()
    assert "Findings" in index and "showcase examples:" in index and "2 of 2" in index
    assert "Headline findings" in (out / "tiny-bert/index.html").read_text()
    assert "| showcase examples | 4 |" in (out / "tiny-bert" / SNIPPET).read_text()


def test_index_without_headlines_has_no_findings_column(tiny_build, tmp_path, monkeypatch):
    card_path, built, artifacts_root = tiny_build
    assert "Findings" in (built / "index.html").read_text()  # the attributions page has one
    out = render_with_headlines({}, card_path, artifacts_root, tmp_path, monkeypatch)
    assert "Findings" not in (out / "index.html").read_text()


# --- new-card ---------------------------------------------------------------------------------


def test_new_card_scaffolds_a_loadable_card_of_config_facts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(TINY_BERT, tmp_path / "checkpoints" / "My_Model")
    result = run(
        "new-card", "checkpoints/My_Model", "--corpus", "package:generator/data/demo_corpus.jsonl"
    )
    assert result.exit_code == 0, result.output
    path = tmp_path / "model_cards" / "my_model.md"
    card = load_card(path)
    assert card.name == "my_model" and card.title == "My_Model"
    assert card.model == "../checkpoints/My_Model" and card.model_path() == (
        tmp_path / "checkpoints/My_Model"
    )
    assert card.corpus == "package:generator/data/demo_corpus.jsonl"
    config = json.loads((TINY_BERT / "config.json").read_text())
    for fact in (
        "2 layers",
        "4 attention heads",
        "head width 8",
        "d_model) of 32",
        "MLP width of 64",
        "512 tokens",
    ):
        assert fact in card.prose
    assert config["num_hidden_layers"] == 2 and config["vocab_size"] == 512
    again = run("new-card", "checkpoints/My_Model")
    assert again.exit_code == 2 and "already exists" in again.output and "--force" in again.output
    forced = run("new-card", "checkpoints/My_Model", "--force", "--title", "Mine")
    assert (
        forced.exit_code == 0 and load_card(path).title == "Mine" and load_card(path).corpus is None
    )


def test_new_card_recognises_albert_and_its_shared_layers(tmp_path, monkeypatch):
    """A random-init AlbertModel saved by transformers (the issue's first try) gets a card."""
    monkeypatch.chdir(tmp_path)
    result = run("new-card", FIXTURES / "tiny-albert", "--name", "albert")
    assert result.exit_code == 0, result.output
    card = load_card(tmp_path / "model_cards" / "albert.md")
    assert "`albert` transformer" in card.prose and "`albert` implementation" in card.prose
    assert "the 4 layers apply 2 blocks of weights" in card.prose
    assert "embeddings of width 16 are projected" in card.prose
    for other in (TINY_BERT, FIXTURES / "tiny-t5"):  # T5's config has no n_weight_blocks
        card = load_card(scaffold_card(str(other), tmp_path / "cards", name=other.name)[0])
        assert "share weights" not in card.prose


def test_new_card_outside_the_working_directory_uses_an_absolute_path(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    path, card = scaffold_card(str(TINY_BERT), tmp_path / "cards", name="tiny")
    assert card.model == TINY_BERT.resolve().as_posix()
    assert load_card(path).model_path() == TINY_BERT.resolve()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere"], "no config.json"),
        ([str(TINY_BERT), "--name", "Bad Name"], "not a slug"),
        ([str(TINY_BERT), "--corpus", "missing.jsonl"], "not found"),
    ],
)
def test_new_card_errors_are_one_line(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = run("new-card", *args)
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not list(tmp_path.rglob("*.md"))  # nothing written


def test_new_card_refuses_unsupported_model_type(tmp_path):
    folder = tmp_path / "weird"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "not-a-family"}))
    result = run("new-card", folder, "--out", tmp_path / "cards")
    assert result.exit_code == 2 and "not supported" in result.output


def test_new_card_recognises_xlnet(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    xlnet = TINY_BERT.parent / "tiny-xlnet"
    path, card = scaffold_card(str(xlnet), tmp_path / "cards", name="xl")
    assert "is a `xlnet` transformer" in card.prose and "`xlnet` implementation" in card.prose
    for fact in ("2 layers", "4 attention heads", "head width 8", "MLP width of 64", "256 tokens"):
        assert fact in card.prose
    assert "permutation-lm" in path.read_text()  # the task hint lists XLNet's objective
    assert load_card(path).model_path() == xlnet.resolve()


def test_scaffolded_card_builds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path, _ = scaffold_card(str(TINY_BERT), tmp_path / "cards", name="scaffolded")
    result = run(
        "build",
        path,
        "--out",
        tmp_path / "site",
        "--artifacts",
        tmp_path / "artifacts",
        "--strict",
        "-q",
    )
    assert result.exit_code == 0, result.output
    assert "a vocabulary of 512 tokens" in (tmp_path / "site/scaffolded/index.html").read_text()


# --- GitHub Pages workflow ----------------------------------------------------------------------


def test_github_pages_workflow_builds_and_deploys_the_site():
    import yaml

    root = Path(__file__).resolve().parents[1]
    workflow = yaml.safe_load((root / "examples/github-pages.yml").read_text())
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    uses = [step.get("uses", "").split("@")[0] for step in build["steps"]]
    assert uses[:2] == ["actions/checkout", "actions/setup-python"]
    assert "actions/upload-pages-artifact" in uses
    run = next(step["run"] for step in build["steps"] if "run" in step)
    assert run.startswith("make site") and "--base-url ${{ steps.pages.outputs.base_url }}" in run
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages"))
    assert upload["with"]["path"] == "site"
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages@")
    makefile = (root / "Makefile").read_text()
    assert "$(BIN)/modelatlas build $(SITE_FLAGS)" in makefile
