"""Property-based tests (Hypothesis) for the escaping of text into HTML, JSON and Markdown, and
for corpus and card parsing of arbitrary text.

Complements tests/test_card.py and tests/test_corpus.py (random card values, unknown keys, corpus
round-trips of texts with fixed labels) with: script_json on arbitrary JSON values, Jinja
autoescape in text and attribute context, card prose through Markdown, card titles and corpus
labels of arbitrary Unicode, and the line number of a broken JSONL line.
"""

from __future__ import annotations

import json
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.card import parse_card_text
from generator.corpus import load_corpus
from generator.errors import CardError, CorpusError
from generator.render.embed import script_json
from generator.render.environment import environment, render_markdown

# Fragments that try to break out of HTML, script blocks, templates and Markdown.
PAYLOADS = [
    "</script>",
    "<script>window.__pwned=1</script>",
    "<!--",
    "-->",
    "<img src=x onerror=alert(1)>",
    "{{ 7*7 }}",
    "{% raw %}",
    "${x}",
    '"',
    "'",
    "`",
    "\\",
    "&amp;",
    "&lt;",
    "&",
    "]]>",
    "\u2028",
    "\u2029",
    "\u202e",
    "\x1b[31m",
    "\x7f",
    "\r\n",
    "\t",
    "😀",
    "[x](javascript:alert(1))",
    "<javascript:alert(1)>",
    "<a href='x' onclick='y'>",
    "![i](http://example.com/x.png)",
]
hostile = st.lists(st.one_of(st.sampled_from(PAYLOADS), st.text(max_size=8)), max_size=8).map(
    "".join
)
text = st.one_of(st.text(), hostile)
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        text,
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(text, children, max_size=4)
    ),
    max_leaves=12,
)
SETTINGS = settings(max_examples=300, deadline=None)


class Parsed(HTMLParser):
    """Collect the text, start tags (with attributes) and script-block contents of a document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self._script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = True
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = False

    def handle_data(self, data):
        if self._script:
            self.scripts[-1] += data
        else:
            self.text.append(data)


def parse(html: str) -> Parsed:
    parser = Parsed()
    parser.feed(html)
    parser.close()
    return parser


# --- script_json --------------------------------------------------------------------------------


@SETTINGS
@given(json_values)
def test_script_json_is_inert_and_lossless(value):
    encoded = str(script_json(value))
    for char in "<>&\u2028\u2029":
        assert char not in encoded
    assert json.loads(encoded) == value


@SETTINGS
@given(text)
def test_script_json_block_cannot_be_closed_or_escaped(value):
    encoded = str(script_json({"text": value}))
    html = f'<script type="application/json" id="d">{encoded}</script><p>after</p>'
    parsed = parse(html)
    assert parsed.scripts == [encoded]
    assert [tag for tag, _ in parsed.tags] == ["script", "p"]
    assert json.loads(parsed.scripts[0])["text"] == value


def test_script_json_refuses_non_finite_numbers():
    for number in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError):
            script_json({"x": number})


# --- Jinja autoescape ---------------------------------------------------------------------------


@SETTINGS
@given(text)
def test_template_text_comes_back_as_typed(value):
    html = environment().from_string("<p>{{ s }}</p>").render(s=value)
    parsed = parse(html)
    assert [tag for tag, _ in parsed.tags] == ["p"]
    assert "".join(parsed.text) == value


@SETTINGS
@given(text)
def test_template_attribute_comes_back_as_typed(value):
    html = environment().from_string('<div title="{{ s }}" class="c"></div>').render(s=value)
    parsed = parse(html)
    assert parsed.tags == [("div", {"title": value, "class": "c"})]


# --- card prose through Markdown ----------------------------------------------------------------

PROSE_TAGS = {
    "p", "em", "strong", "code", "pre", "a", "ul", "ol", "li", "blockquote", "hr", "br",
    "h1", "h2", "h3", "h4", "h5", "h6",
}  # fmt: skip


@SETTINGS
@given(
    st.lists(st.one_of(hostile, st.sampled_from(["\n\n", "# ", "* ", "> ", "    "]))).map("".join)
)
def test_markdown_prose_gives_only_plain_markup(value):
    parsed = parse(str(render_markdown(value)))
    for tag, attrs in parsed.tags:
        assert tag in PROSE_TAGS, tag
        assert not [name for name in attrs if name.startswith("on")]
        assert set(attrs) <= {"href", "title", "class", "start"}, attrs
        href = (attrs.get("href") or "").strip().lower()
        assert not href.startswith(("javascript:", "vbscript:", "data:", "file:")), href


# --- cards and corpora --------------------------------------------------------------------------

card_text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))


def front_matter(data: dict) -> str:
    """Dump settings as YAML double-quoted strings (PyYAML's plain style folds NEL and U+2028)."""
    return yaml.safe_dump(data, allow_unicode=True, default_style='"')


@settings(max_examples=200, deadline=None)
@given(card_text.filter(lambda t: t.strip()))
def test_card_title_round_trips_through_yaml(title):
    front = front_matter({"name": "x", "model": "org/x", "title": title})
    card = parse_card_text(f"---\n{front}---\n", Path("/cards/x.md"))
    assert card.title == title


@settings(max_examples=100, deadline=None)
@given(st.tuples(st.text(), st.sampled_from(["\x00", "\ud800", "\udbff", "\udfff"]), st.text()))
def test_card_strings_with_unusable_characters_are_refused(parts):
    title = "".join(parts)
    data = {"name": "x", "model": "org/x", "title": title}
    with pytest.raises(CardError, match="'title' has (a NUL character|an unpaired surrogate)"):
        parse_card_text(f"---\n{front_matter(data)}---\n", Path("/cards/x.md"))


suppress = [HealthCheck.function_scoped_fixture]
no_nul = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))


@settings(max_examples=150, deadline=None, suppress_health_check=suppress)
@given(
    st.lists(
        st.tuples(st.text(no_nul, min_size=1).filter(str.strip), st.text(no_nul).filter(str.strip)),
        min_size=1,
        max_size=6,
    )
)
def test_jsonl_labels_of_any_text_round_trip(rows):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.jsonl"
        lines = [json.dumps({"text": t, "label": lab}, ensure_ascii=False) for t, lab in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        corpus = load_corpus(path, label_field="label")
    assert corpus.texts == tuple(t for t, _ in rows)
    assert corpus.labels == tuple(lab.strip() for _, lab in rows)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(min_value=1, max_value=30),
    st.data(),
)
def test_broken_jsonl_line_is_the_one_reported(n_lines, data):
    broken = data.draw(st.integers(min_value=1, max_value=n_lines))
    junk = data.draw(
        st.sampled_from(['{"text": "open', "{text: 1}", "[1, 2", "}", '{"text": "a"} x'])
    )
    lines = [json.dumps({"text": f"text {i}"}) for i in range(1, n_lines + 1)]
    lines[broken - 1] = junk
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        with pytest.raises(CorpusError) as info:
            load_corpus(path)
    message = info.value.message
    assert "\n" not in message
    assert f"line {broken} " in message, message
