"""Rendered HTML: structure, navigation, no external references, inert embedded text."""

import json
import re
from html.parser import HTMLParser

import pytest

from generator.render.embed import script_json

HOSTILE = '</script><script>alert("x")</script> {{ 7*7 }} {% raw %} "quotes" \\ \u202eevil \U0001f600 <b>bold</b>'


class Collector(HTMLParser):
    """Collect tags with their attributes and the text of script blocks."""

    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self._in_script = [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)
            self.scripts.append([dict(attrs), ""])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None

    def handle_data(self, data):
        if self._in_script is not None:
            self.scripts[-1][1] += data


def parse(path):
    collector = Collector()
    collector.feed(path.read_text(encoding="utf-8"))
    return collector


def test_script_json_cannot_close_a_script_block():
    text = script_json({"t": HOSTILE, "u": "\u2028&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(str(text)) == {"t": HOSTILE, "u": "\u2028&"}


@pytest.mark.parametrize(
    "page", ["index.html", "attention.html", "heads.html", "representations.html"]
)
def test_model_pages_are_self_contained(tiny_build, page):
    _, out, _ = tiny_build
    html = parse(out / "tiny-bert" / page)
    csp = [
        a for t, a in html.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert (
        csp
        and "default-src 'none'" in csp[0]["content"]
        and "connect-src 'none'" in csp[0]["content"]
    )
    for tag, attrs in html.tags:
        for attr in ("src", "href"):
            value = attrs.get(attr)
            if value and tag in ("script", "link", "img"):
                assert not re.match(r"^[a-z]+:|^//|^/", value), (
                    f"{tag} {attr}={value} is not relative"
                )
                assert (out / "tiny-bert" / value).is_file(), value
    charts = [a for t, a in html.tags if t == "div" and "vega-embed" in a.get("class", "")]
    assert charts, "no chart on the page"
    specs = {a["id"]: text for a, text in html.scripts if a.get("type") == "application/json"}
    for chart in charts:
        assert chart.get("aria-label"), "chart without an accessible label"
        spec = json.loads(specs[chart["data-spec"]])
        assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")


def test_navigation_links_every_page(tiny_build):
    _, out, _ = tiny_build
    for page in ("index.html", "attention.html", "heads.html"):
        links = {a.get("href") for t, a in parse(out / "tiny-bert" / page).tags if t == "a"}
        assert {"index.html", "attention.html", "heads.html", "../index.html"} <= links
    index_links = {a.get("href") for t, a in parse(out / "index.html").tags if t == "a"}
    assert "tiny-bert/index.html" in index_links


def test_attention_data_matches_artifacts(tiny_build):
    import base64

    import numpy as np

    from generator.artifacts import open_artifacts

    _, out, artifacts_root = tiny_build
    from attention_support import attention_data

    data = attention_data(out / "tiny-bert")
    artifacts = open_artifacts(artifacts_root / "tiny-bert")
    att = artifacts.array("showcase/attentions")
    mask = artifacts.array("showcase/attention_mask")
    (kind,) = data["kinds"]  # encoder-only: self-attention alone
    assert kind["id"] == "self" and kind["query"] == kind["key"] == "input"
    for example, item in enumerate(data["examples"]):
        n = int(mask[example].sum())
        assert len(item["tokens"]["input"]) == n
        packed = np.frombuffer(base64.b64decode(item["weights"]["self"]), dtype="<u2")
        weights = packed.reshape(kind["n_layers"], data["n_heads"], n, n) / data["scale"]
        np.testing.assert_allclose(
            weights, att[example, :, :, :n, :n], atol=0.5 / data["scale"] + 1e-7
        )
