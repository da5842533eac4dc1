"""Representations page HTML: checkpoint wording only with checkpoints, constant layers said in
words, probe controls (control task, selectivity, bag-of-tokens baseline) on the page."""

import html as html_lib
import json
import re

from generator.render.charts import representations as charts
from generator.render.pages import representations as page

PAGE = "representations.html"
# every phrase that only makes sense when the card compares checkpoints
CHECKPOINT_WORDING = re.compile(
    r"checkpoint|procrustes|\bfinal\b|card's own model|slider|axes fitted on", re.I
)


def read(out, name):
    return (out / name / PAGE).read_text(encoding="utf-8")


def visible_text(html: str) -> str:
    """Return the page's text and accessible labels, without scripts, styles and markup."""
    labels = " ".join(re.findall(r'(?:aria-label|title|alt)="([^"]*)"', html))
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", body) + " " + labels)


def page_data(html: str) -> dict:
    block = re.search(r'id="representations-data">(.*?)</script>', html, re.S).group(1)
    return json.loads(block)


def test_page_without_checkpoints_says_nothing_about_checkpoints(tiny_build):
    _, out, _ = tiny_build
    html = read(out, "tiny-bert")
    text = visible_text(html)
    for corpus_text in page_data(html)["texts"]:  # the corpus may say "final"; the page may not
        text = text.replace(html_lib.unescape(corpus_text), " ")
    found = CHECKPOINT_WORDING.findall(text)
    assert not found, found
    assert 'id="select-checkpoint"' not in html


def test_checkpoint_page_explains_checkpoints_and_alignment(checkpoint_build):
    _, out, _ = checkpoint_build
    text = visible_text(read(out, "tiny-checkpoints"))
    for phrase in ("Procrustes", "checkpoint", "final", "card's own model"):
        assert phrase in text, phrase


def test_tiny_page_says_why_the_cls_layer_0_is_empty_and_shows_the_controls(tiny_build):
    _, out, artifacts_root = tiny_build
    html = read(out, "tiny-bert")
    text = visible_text(html)
    note = re.search(r'id="rep-constant">(.*?)</p>', html, re.S).group(1)
    assert "cls pooling, layer 0" in note and "[CLS]" in note and "chance" in note
    assert "bag-of-tokens baseline" in text and "Control task" in text
    assert "Hewitt &amp; Liang 2019" in html and "selectivity" in text
    assert "re-splits" in text  # how the standard errors were computed
    table = re.search(r'<table id="rep-probe-table">(.*?)</table>', html, re.S).group(1)
    data = page_data(html)
    rows = re.findall(r"<tr(?: class=\"constant\")?><td>", table)
    assert len(rows) == len(data["poolings"]) * data["layers"]
    assert table.count('class="constant"') == 1
    assert data["constant"] and data["constant"][0][1:3] == ["cls", 0]
    assert data["maps"]["cls"]["pca"][0]["constant"] == [True]
    assert data["maps"]["cls"]["tsne"][0] is None  # no t-SNE of one point


def separability_rows():
    rows = []
    for layer in range(3):
        constant = layer == 0
        for metric, value in (
            ("linear probe", 0.25 if constant else 0.8 + layer / 20),
            ("k-NN", 0.25 if constant else 0.7),
            ("silhouette", None if constant else 0.1),
            ("control task", 0.24),
            ("selectivity", (0.25 if constant else 0.8 + layer / 20) - 0.24),
        ):
            rows.append(
                {
                    "checkpoint": "final",
                    "pooling": "cls",
                    "layer": layer,
                    "metric": metric,
                    "value": value,
                    "se": None if metric == "silhouette" else 0.02,
                    "constant": constant,
                }
            )
    return rows


def test_accuracy_rows_carry_selectivity_on_linear_rows_only():
    rows = page.accuracy_rows(separability_rows(), "final")
    assert {r["metric"] for r in rows} == {"linear probe", "k-NN", "control task"}
    for row in rows:
        if row["metric"] == "linear probe":
            assert abs(row["selectivity"] - (row["value"] - 0.24)) < 1e-12
        else:
            assert row["selectivity"] is None
    assert [r["constant"] for r in rows if r["layer"] == 0] == [True] * 3


def test_probe_table_subtracts_the_lexical_baseline():
    table = page.probe_table(separability_rows(), "final", {"accuracy": 0.5, "se": 0.03})
    assert [r["layer"] for r in table] == [0, 1, 2]
    assert table[0]["constant"] and not table[1]["constant"]
    assert abs(table[2]["over_lexical"] - (0.9 - 0.5)) < 1e-12
    assert table[1]["control"] == (0.24, 0.02)
    assert page.probe_table(separability_rows(), "final", None)[1]["over_lexical"] is None
    assert page.layer_zero(separability_rows(), "final", "cls") is None  # constant: no claim


def test_reference_lines_name_chance_and_the_lexical_baseline():
    rows = charts.reference_rows(0.2, {"accuracy": 0.45, "se": 0.01}, 6)
    assert [r["label"] for r in rows] == ["chance 20.0%", "bag of tokens 45.0%"]
    assert all(r["x"] == 6 for r in rows)
    assert len(charts.reference_rows(0.2, None, 6)) == 1
    spec = json.dumps(
        charts.separability_chart(page.accuracy_rows(separability_rows(), "final"), 0.2, ["cls"])
    )
    assert "bag of tokens" not in spec and "chance 20.0%" in spec and "datum.constant" in spec


def test_map_caption_mentions_alignment_only_with_checkpoints():
    assert not CHECKPOINT_WORDING.search(page.map_caption(False))
    assert "Procrustes" in page.map_caption(True)
