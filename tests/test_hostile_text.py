"""Hostile text renders as inert text on every page: corpus texts, labels, card fields and tokens.

One site is built from a card whose title and prose, corpus texts, labels and tokenizer tokens
(added tokens of a copy of tiny-bert) carry HTML, `</script>`, `<!--`, Jinja syntax, quotes,
backslashes, control characters, right-to-left overrides, emoji and a 5,000-character word.
Payloads set `window.__pwned`; every page of `PAGES` (so pages added later are covered too) is
checked statically (HTML parse, embedded JSON) and in headless Chromium (no script ran, no
dialog, nothing injected into the DOM, chart tooltips hold text only, text visible as typed).

vega-tooltip builds its box with innerHTML from a formatter that escapes `&` and `<` in every
key and value (its `sanitize` option), which is enough for element content; the tests hover
marks holding the payloads to prove it.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser_support import file_url, open_page
from cards import write_card
from robust_support import copy_tiny_model

from generator.build import build_cards
from generator.card import load_card
from generator.render.pages import PAGES

NAME = "hostile"
PWN = "window.__pwned=1"
TOKENS = [
    f"</script><script>{PWN}</script>",
    f'<img src=x onerror="{PWN}">',
    "{{7*7}}{%raw%}\"'\\",
    "<!--",
    "\u202eRTL😀",
    "\x1b[31m",
    "x" * 5000,
]
TITLE = (
    f'</script><script>{PWN}</script><img src=x onerror="{PWN}"> {{{{ 7*7 }}}} {{% raw %}}'
    " \"double\" 'single' back\\slash <!-- \u202eRTL 😀"
)
PROSE = f"""# Prose {{{{ 7*7 }}}}

<script>{PWN}</script> <img src=x onerror="{PWN}"> <!-- comment

[click](javascript:{PWN}) ![image](http://example.com/x.png) \u202eright-to-left 😀
"""
TEXTS = [
    (f"alpha </script><script>{PWN}</script> omega", f'<b onmouseover="{PWN}">bold</b>'),
    (f'<img src=x onerror="{PWN}"> beta', "{{ label }}"),
    ("{{7*7}}{%raw%}\"'\\ and {{ 7*7 }} {% if true %}x{% endif %}", '"quoted" \\ label'),
    ("<!-- comment --> ]]> &amp; &lt; &", "\u202eRTL label"),
    ("\u202eevil\u202c emoji 😀 and \u202eRTL😀 joined 👩\u200d👩\u200d👧", "😀"),
    ("control \x01\x07\x1b[31m chars \x7f end", "ctl \x1b[0m"),
    ("long " + "x" * 5000 + " word", f'<b onmouseover="{PWN}">bold</b>'),
    ("a plain sentence about cats", "{{ label }}"),
]


def hostile_model(target: Path) -> Path:
    """Copy tiny-bert and turn its last vocabulary entries into the hostile TOKENS."""
    model = copy_tiny_model(target)
    path = model / "tokenizer.json"
    tokenizer = json.loads(path.read_text(encoding="utf-8"))
    vocab = tokenizer["model"]["vocab"]
    by_id = {index: token for token, index in vocab.items()}
    for n, token in enumerate(TOKENS):
        index = len(by_id) - 1 - n
        del vocab[by_id[index]]
        vocab[token] = index
        tokenizer["added_tokens"].append(
            {
                "id": index,
                "content": token,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": False,
            }
        )
    path.write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    return model


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    model = hostile_model(root / "model")
    corpus = root / "corpus.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"text": t, "label": lab}, ensure_ascii=False) + "\n" for t, lab in TEXTS
        ),
        encoding="utf-8",
    )
    card = write_card(
        root / "cards",
        prose=PROSE,
        name=NAME,
        title=TITLE,
        model=str(model),
        corpus=str(corpus),
        split_field=None,
        showcase=len(TEXTS),
        max_length=128,
    )
    out = root / "site"
    build_cards([load_card(card)], out, root / "artifacts", strict=True, progress=False)
    return out


def site_pages(out: Path) -> list[Path]:
    return [out / "index.html", *(out / NAME / page.filename for page in PAGES)]


# --- static checks --------------------------------------------------------------------------------


class Document(HTMLParser):
    """Tags, attributes, script blocks and the <title> text of one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[tuple[dict, str]] = []
        self.title = ""
        self._open: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._open = tag
        if tag == "script":
            self.scripts.append((dict(attrs), ""))

    def handle_endtag(self, tag):
        self._open = None

    def handle_data(self, data):
        if self._open == "script":
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)
        elif self._open == "title":
            self.title += data


def strings_in(value) -> set[str]:
    """Every string (keys included) inside a JSON value."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set(value) | {s for v in value.values() for s in strings_in(v)}
    if isinstance(value, list):
        return {s for v in value for s in strings_in(v)}
    return set()


def test_pages_contain_no_injected_markup(hostile_site):
    for path in site_pages(hostile_site):
        doc = Document()
        doc.feed(path.read_text(encoding="utf-8"))
        doc.close()
        tags = {tag for tag, _ in doc.tags}
        assert not tags & {"img", "iframe", "object", "embed", "frame", "base", "b"}, path
        handlers = [(t, a) for t, attrs in doc.tags for a in attrs if a.lower().startswith("on")]
        assert not handlers, (path, handlers)
        for attrs, text in doc.scripts:
            assert attrs.get("src") or attrs.get("type") == "application/json", (path, attrs)
            if not attrs.get("src"):
                assert "<" not in text and ">" not in text and "&" not in text
                json.loads(text)
        if path.parent != hostile_site:  # the site index is titled "Model Atlas"
            assert TITLE in doc.title, path


def test_embedded_data_holds_the_text_exactly(hostile_site):
    """Texts, labels and tokens reach the pages' JSON data blocks unchanged."""
    found: set[str] = set()
    for path in site_pages(hostile_site):
        doc = Document()
        doc.feed(path.read_text(encoding="utf-8"))
        for attrs, text in doc.scripts:
            if attrs.get("type") == "application/json":
                found |= strings_in(json.loads(text))
    for text, label in TEXTS:
        assert text in found, text[:40]
        assert label in found, label
    for token in TOKENS:
        assert token in found, token[:40]


def test_figures_are_well_formed_svg_without_scripts(hostile_site):
    figures = sorted(hostile_site.glob("*/figures/*.svg"))
    if not figures:
        pytest.skip("this build writes no figures/ folder")
    for path in figures:
        root = ET.fromstring(path.read_bytes())  # raises on anything that is not well-formed XML
        for element in root.iter():
            local = element.tag.rsplit("}", 1)[-1].lower()
            assert local not in ("script", "foreignobject", "iframe"), (path, local)
            events = [name for name in element.attrib if name.rsplit("}", 1)[-1].startswith("on")]
            assert not events, (path, events)
            for name, value in element.attrib.items():
                if name.rsplit("}", 1)[-1] == "href":
                    assert not value.strip().lower().startswith("javascript:"), (path, value)


def test_every_chart_has_a_figure_and_figures_and_snippet_escape_the_text(hostile_site):
    """Each chart's figure is written; the heatmap's subtitle and the card snippet show the
    hostile text escaped (tests/test_figures.py checks the figures of ordinary builds)."""
    listed = json.loads((hostile_site / NAME / "build-info.json").read_text())["figures"]
    figures = sorted((hostile_site / NAME / "figures").glob("*.svg"))
    assert len(figures) == len(listed) >= 4
    heatmap = (hostile_site / NAME / "figures/attention-attention-heatmap.svg").read_text()
    assert "&lt;script&gt;" in heatmap  # the first example's text, in the subtitle
    snippet = (hostile_site / NAME / "card-snippet.md").read_text(encoding="utf-8")
    assert "<script>" not in snippet and "\\<script\\>" in snippet


# --- in the browser -------------------------------------------------------------------------------


INJECTED_JS = """() => {
  const found = [];
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      if (/^on/i.test(a.name)) found.push(el.tagName + '[' + a.name + ']');
      if (/^(href|src|xlink:href)$/i.test(a.name) && /^\\s*javascript:/i.test(a.value)) {
        found.push(el.tagName + '[' + a.name + '=javascript:]');
      }
    }
  }
  for (const el of document.body.querySelectorAll(
      'img, iframe, object, embed, frame, base, link, meta, b, style')) {
    found.push(el.tagName);
  }
  for (const el of document.querySelectorAll('script')) {
    if (!el.src && el.type !== 'application/json') found.push('inline script');
  }
  return found;
}"""

TOOLTIP_JS = """() => {
  const tip = document.getElementById('vg-tooltip-element');
  if (!tip) return null;
  const tags = Array.from(tip.querySelectorAll('*'), (el) => el.tagName);
  const events = Array.from(tip.querySelectorAll('*')).flatMap(
    (el) => Array.from(el.attributes).filter((a) => /^on/i.test(a.name)).map((a) => a.name));
  return {text: tip.innerText, visible: tip.classList.contains('visible'), tags, events};
}"""

SAFE_TOOLTIP_TAGS = {"TABLE", "TBODY", "TR", "TD", "H2"}


def assert_nothing_ran(page) -> None:
    assert page.evaluate("() => window.__pwned") is None, "an injected script ran"
    assert page.evaluate(INJECTED_JS) == []


def assert_tooltip_is_text(page) -> dict | None:
    tip = page.evaluate(TOOLTIP_JS)
    if tip is not None:
        assert set(tip["tags"]) <= SAFE_TOOLTIP_TAGS, tip["tags"]
        assert tip["events"] == []
    return tip


def hover_marks(page, per_chart: int = 6) -> int:
    """Hover a few marks of every chart, checking the tooltip each time; return tooltips seen."""
    shown = 0
    for chart in page.query_selector_all(".vega-embed"):
        marks = chart.query_selector_all(
            "g.role-mark:not(.mark-group):not(.mark-text) > path, "
            "g.role-mark:not(.mark-group):not(.mark-text) > rect"
        )
        if not marks:
            continue
        step = max(1, len(marks) // per_chart)
        for mark in marks[::step][:per_chart]:
            mark.scroll_into_view_if_needed()
            box = mark.bounding_box()
            if not box or box["width"] < 1 or box["height"] < 1:
                continue
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            tip = assert_tooltip_is_text(page)
            shown += bool(tip and tip["visible"])
    return shown


@pytest.mark.browser
@pytest.mark.parametrize("filename", ["../index.html", *(page.filename for page in PAGES)])
def test_every_page_runs_nothing_and_shows_the_title(page, hostile_site, filename):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    path = (hostile_site / NAME / filename).resolve()
    report = open_page(page, file_url(path), expect_charts=filename != "../index.html")
    report.assert_clean()
    assert_nothing_ran(page)
    if filename == "../index.html":
        assert page.inner_text("table.models a") == TITLE
    else:
        assert TITLE in page.title()
        assert page.inner_text("nav .model-title") == TITLE
    tooltips = hover_marks(page)
    if report.charts:
        assert tooltips > 0, "no chart showed a tooltip"
    assert_nothing_ran(page)
    assert not dialogs and not report.dialogs


@pytest.mark.browser
def test_overview_shows_title_and_prose_as_text(page, hostile_site):
    open_page(page, file_url(hostile_site / NAME / "index.html")).assert_clean()
    assert page.inner_text("main h1") == TITLE
    prose = page.inner_text("section.prose")
    assert f"<script>{PWN}</script>" in prose and "[click](javascript:" in prose
    assert page.query_selector_all("section.prose a[href^='javascript']") == []
    assert_nothing_ran(page)


def select_cell(page, example: int, token: str) -> dict:
    """Show `example` and hover the heatmap cell where `token` attends to itself."""
    data = page.evaluate("() => Atlas.readJson('attention-data')")
    tokens = data["examples"][example]["tokens"]["input"]
    index = tokens.index(token)
    if page.eval_on_selector("#select-example", "el => el.value") != str(example):
        before = page.get_attribute("#chart-attention-heatmap", "data-selection")
        page.select_option("#select-example", str(example))
        page.wait_for_function(
            "s => document.getElementById('chart-attention-heatmap')"
            ".getAttribute('data-selection') !== s",
            arg=before,
        )
    cells = page.query_selector_all("#chart-attention-heatmap g.mark-rect.role-mark > path")
    assert len(cells) == len(tokens) ** 2
    cell = cells[index * len(tokens) + index]
    page.mouse.move(0, 0)
    cell.hover()
    page.wait_for_function("() => document.querySelector('#vg-tooltip-element.visible')")
    return assert_tooltip_is_text(page)


@pytest.mark.browser
def test_attention_page_shows_texts_labels_and_tokens_as_typed(page, hostile_site):
    open_page(page, file_url(hostile_site / NAME / "attention.html")).assert_clean()
    data = page.evaluate("() => Atlas.readJson('attention-data')")
    shown = {example["text"]: i for i, example in enumerate(data["examples"])}
    assert set(shown) == {text for text, _ in TEXTS}
    for text, label in TEXTS:
        before = page.get_attribute("#chart-attention-heatmap", "data-selection")
        index = shown[text]
        if page.eval_on_selector("#select-example", "el => el.value") != str(index):
            page.select_option("#select-example", str(index))
            page.wait_for_function(
                "s => document.getElementById('chart-attention-heatmap')"
                ".getAttribute('data-selection') !== s",
                arg=before,
            )
        typed = f"[{label}] {text}"
        assert page.text_content("#example-text") == typed
        assert page.inner_text("#example-text") == typed
    for token in TOKENS:
        example = next(i for i, e in enumerate(data["examples"]) if token in e["tokens"]["input"])
        tip = select_cell(page, example, token)
        assert tip is not None and tip["visible"]
        assert token in tip["text"], (token[:40], tip["text"][:200])
    assert_nothing_ran(page)


@pytest.mark.browser
def test_hostile_site_copied_elsewhere_still_runs_nothing(page, hostile_site, tmp_path):
    alone = tmp_path / NAME
    shutil.copytree(hostile_site / NAME, alone)
    for item in PAGES:
        open_page(page, file_url(alone / item.filename)).assert_clean()
        assert_nothing_ran(page)


# --- XLNet: `<sep>` / `<cls>` at the end, left-padding tokenizer ---------------------------------

XLNET = "hostile-xlnet"


@pytest.fixture(scope="module")
def xlnet_hostile_site(tmp_path_factory):
    """The hostile texts and title through tiny-xlnet (max_length 32: the long ones truncate)."""
    root = tmp_path_factory.mktemp("hostile-xlnet")
    corpus = root / "corpus.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"text": t, "label": lab}, ensure_ascii=False) + "\n" for t, lab in TEXTS
        ),
        encoding="utf-8",
    )
    fixtures = Path(__file__).resolve().parent / "fixtures"
    card = write_card(
        root / "cards",
        prose=PROSE,
        name=XLNET,
        title=TITLE,
        model=str(fixtures / "tiny-xlnet"),
        corpus=str(corpus),
        split_field=None,
        showcase=len(TEXTS),
        max_length=32,
    )
    out = root / "site"
    build_cards([load_card(card)], out, root / "artifacts", strict=False, progress=False)
    return out


def test_xlnet_special_tokens_reach_the_pages_as_text(xlnet_hostile_site):
    """`<sep>` and `<cls>` look like markup: they stay data, flagged special, at the end of every
    example, truncated ones included."""
    attention = xlnet_hostile_site / XLNET / "attention.html"
    doc = Document()
    doc.feed(attention.read_text(encoding="utf-8"))
    assert not {tag for tag, _ in doc.tags} & {"sep", "cls", "pad", "img", "b"}
    data = next(
        json.loads(text)
        for attrs, text in doc.scripts
        if attrs.get("type") == "application/json" and attrs.get("id") == "attention-data"
    )
    examples = data["examples"]
    assert {example["text"] for example in examples} == {text for text, _ in TEXTS}
    for example in examples:
        tokens = example["tokens"]["input"]
        assert tokens[-2:] == ["<sep>", "<cls>"], tokens[-4:]
        assert example["special"]["input"] == [len(tokens) - 2, len(tokens) - 1]
        assert "<pad>" not in tokens
    assert max(len(example["tokens"]["input"]) for example in examples) == 32


@pytest.mark.browser
@pytest.mark.parametrize("filename", ["../index.html", *(page.filename for page in PAGES)])
def test_every_xlnet_page_runs_nothing(page, xlnet_hostile_site, filename):
    path = (xlnet_hostile_site / XLNET / filename).resolve()
    report = open_page(page, file_url(path), expect_charts=filename != "../index.html")
    report.assert_clean()
    assert_nothing_ran(page)
    if filename == "attention.html":
        assert page.inner_text("#attention-note").startswith("XLNet runs here as XLNetModel")
        tip = select_cell(page, 0, "<cls>")
        assert tip is not None and "<cls>" in tip["text"]
    hover_marks(page, per_chart=2)
    assert_nothing_ran(page)
