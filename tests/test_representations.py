"""Representation tables of built sites: probes against chance, stored maps, geometry, data size."""

import json

import numpy as np
import pytest
from cards import small_corpus, write_card

from generator.analyze import probes
from generator.analyze.representations import poolings, representations
from generator.analyze.run import analyze
from generator.artifacts import open_artifacts
from generator.build import build_cards
from generator.card import load_card


def tables_of(artifacts_root, name):
    """Return the representation tables of a built card (recomputed if another test removed them)."""
    tables = analyze(open_artifacts(artifacts_root / name))
    return {key: value for key, value in tables.items() if key.startswith("representation_")}


def test_tiny_tables_cover_every_layer_pooling_and_metric(tiny_build):
    _, _, artifacts_root = tiny_build
    artifacts = open_artifacts(artifacts_root / "tiny-bert")
    tables = tables_of(artifacts_root, "tiny-bert")
    summary = tables["representation_summary"]
    layers = artifacts.manifest["model"]["config"]["n_layers"] + 1
    assert summary["checkpoints"] == ["final"] and summary["layers"] == layers
    assert summary["poolings"] == poolings(artifacts) == ["mean", "cls"]
    texts = len(artifacts.array("corpus/texts"))
    validation = int(np.sum(np.asarray(artifacts.array("corpus/splits")) == "validation"))
    assert 0 < validation < texts
    assert summary["protocol"]["kind"] == "split"
    assert summary["protocol"]["evaluated"] == validation
    # linear probe, k-NN, silhouette, control task, selectivity
    assert len(tables["representation_separability"]) == 2 * layers * 5
    methods = {
        (r["pooling"], r["layer"], r["method"]) for r in tables["representation_projections"]
    }
    expected = set()
    for pooling in ("mean", "cls"):
        pooled = np.asarray(artifacts.array(f"corpus/pooled_{pooling}"), dtype=np.float64)
        for layer in range(layers):
            expected.add((pooling, layer, "pca"))
            # t-SNE of identical points is skipped (layer 0 [CLS]: one embedding for every text)
            if not probes.is_constant(pooled[:, layer]):
                expected.add((pooling, layer, "tsne"))
    assert methods == expected and len(expected) >= 2 * layers * 2 - 1
    for row in tables["representation_projections"]:
        assert len(row["x"]) == len(row["y"]) == texts
    assert len(tables["representation_cka"]) == 2 * layers * layers


def test_shuffled_labels_on_the_tiny_build_stay_at_chance(tiny_build):
    _, _, artifacts_root = tiny_build
    artifacts = open_artifacts(artifacts_root / "tiny-bert")
    labels = np.asarray(artifacts.array("corpus/labels")).copy()
    splits = np.asarray(artifacts.array("corpus/splits"))
    rng = np.random.default_rng(0)
    for split in np.unique(splits):  # shuffle within each split: class balance is kept
        rows = np.flatnonzero(splits == split)
        labels[rows] = rng.permutation(labels[rows])
    protocol = probes.choose_protocol(labels, splits)
    held_out = labels[protocol.evaluated]
    chance = probes.chance_rate(held_out)
    se = np.sqrt(chance * (1 - chance) / len(held_out))
    for pooling in poolings(artifacts):
        x = np.asarray(artifacts.array(f"corpus/pooled_{pooling}"), dtype=np.float64)
        for layer in range(x.shape[1]):
            scores = probes.separability(x[:, layer], labels, protocol)
            for key in ("linear", "knn"):
                assert abs(scores[key][0] - chance) <= 3 * se, (pooling, layer, key, scores[key])


def test_default_model_separates_topics_well_above_chance(default_build):
    _, _, artifacts_root = default_build
    summary = tables_of(artifacts_root, "all-minilm-l6-v2")["representation_summary"]
    best = summary["best"]["mean"]
    chance = summary["protocol"]["chance"]
    print(
        f"default build: best mean-pooled layer {best['layer']}: {best['accuracy']:.3f} "
        f"± {best['se']:.3f} (chance {chance:.3f})"
    )
    assert chance == pytest.approx(0.2)
    assert best["accuracy"] - 5 * best["se"] > chance
    assert best["accuracy"] >= 0.8


def test_tsne_maps_are_byte_identical_across_builds(tiny_build, tmp_path, monkeypatch):
    card_path, _, artifacts_root = tiny_build
    monkeypatch.setenv("MODELATLAS_CACHE", str(tmp_path / "cache"))  # fitted again, not read back
    tables_of(artifacts_root, "tiny-bert")  # stored again if another test removed them
    again = tmp_path / "artifacts"
    build_cards([load_card(card_path)], tmp_path / "site", again, progress=False)
    name = "representation_projections.json"
    first = (artifacts_root / "tiny-bert" / "analyses" / name).read_bytes()
    assert first == (again / "tiny-bert" / "analyses" / name).read_bytes()
    assert b'"tsne"' in first


def test_token_sums_match_the_showcase_hidden_states(tiny_build):
    _, _, artifacts_root = tiny_build
    artifacts = open_artifacts(artifacts_root / "tiny-bert")
    index = np.asarray(artifacts.array("showcase/index"))
    inside = index < len(artifacts.array("corpus/texts"))  # extra texts have no corpus rows
    index = index[inside]
    mask = np.asarray(artifacts.array("showcase/attention_mask"), dtype=bool)[inside]
    hidden = np.asarray(artifacts.array("showcase/hidden_states"), dtype=np.float64)[inside]
    units = hidden / np.linalg.norm(hidden, axis=-1, keepdims=True)
    expected = (units * mask[:, None, :, None]).sum(axis=2)
    np.testing.assert_allclose(artifacts.array("corpus/unit_token_sum")[index], expected, atol=1e-4)


def test_token_maps_hold_every_non_special_showcase_token(tiny_build):
    _, _, artifacts_root = tiny_build
    artifacts = open_artifacts(artifacts_root / "tiny-bert")
    table = tables_of(artifacts_root, "tiny-bert")["representation_tokens"]
    mask = np.asarray(artifacts.array("showcase/attention_mask")).astype(bool)
    tokens = np.asarray(artifacts.array("showcase/tokens")).astype(str)
    special = np.isin(tokens, ["[CLS]", "[SEP]", "[UNK]", "[PAD]", "[MASK]"])
    count = int(np.sum(mask & ~special))
    assert 0 < count < mask.sum()
    assert len(table["points"]) == count
    assert all(len(m["x"]) == count for m in table["maps"])
    assert not {"[CLS]", "[SEP]"} & {p["token"] for p in table["points"]}


def test_checkpoint_maps_and_probes_cover_every_checkpoint(checkpoint_build):
    _, out, artifacts_root = checkpoint_build
    tables = tables_of(artifacts_root, "tiny-checkpoints")
    summary = tables["representation_summary"]
    assert summary["checkpoints"] == ["step-1", "step-2", "final"]
    rows = tables["representation_separability"]
    assert {r["checkpoint"] for r in rows} == set(summary["checkpoints"])
    keys = {(r["checkpoint"], r["method"]) for r in tables["representation_projections"]}
    assert keys == {(c, m) for c in summary["checkpoints"] for m in ("pca", "tsne")}
    drift = tables["representation_cka_to_reference"]
    assert {r["checkpoint"] for r in drift} == {"step-1", "step-2"}
    html = (out / "tiny-checkpoints" / "representations.html").read_text(encoding="utf-8")
    assert 'id="select-checkpoint"' in html


def test_corpus_without_labels_gets_maps_but_no_probes(tmp_path):
    texts = [f"text {i} about {word}" for i in range(10) for word in ("tea", "tax", "golf")]
    corpus = small_corpus(tmp_path / "data", texts)
    card = load_card(
        write_card(tmp_path / "cards", corpus=str(corpus), label_field=None, split_field=None)
    )
    build_cards([card], tmp_path / "site", tmp_path / "artifacts", progress=False)
    artifacts = open_artifacts(tmp_path / "artifacts" / "tiny-bert")
    tables = representations(artifacts)
    assert tables["representation_summary"]["protocol"] is None
    assert tables["representation_separability"] == []
    assert tables["representation_projections"]
    html = (tmp_path / "site" / "tiny-bert" / "representations.html").read_text(encoding="utf-8")
    assert "No probes" in html


def test_page_data_stays_small(default_build):
    _, out, _ = default_build
    size = (out / "all-minilm-l6-v2" / "representations.html").stat().st_size
    assert size < 2_000_000, size


def test_packed_page_maps_decode_to_the_stored_coordinates(tiny_build):
    import base64
    import re

    _, out, artifacts_root = tiny_build
    html = (out / "tiny-bert" / "representations.html").read_text(encoding="utf-8")
    block = re.search(r'id="representations-data">(.*?)</script>', html, re.S).group(1)
    data = json.loads(block)
    texts = len(open_artifacts(artifacts_root / "tiny-bert").array("corpus/texts"))
    assert len(data["texts"]) == len(data["labels"]) == len(data["splits"]) == texts
    rows = tables_of(artifacts_root, "tiny-bert")["representation_projections"]
    for row in rows:
        entry = data["maps"][row["pooling"]][row["method"]][row["layer"]]
        packed_x, packed_y = entry["maps"][data["checkpoints"].index(row["checkpoint"])]
        for packed, scale, stored in (
            (packed_x, entry["scale"][0], row["x"]),
            (packed_y, entry["scale"][1], row["y"]),
        ):
            steps = np.frombuffer(base64.b64decode(packed), dtype="<i2")
            np.testing.assert_allclose(steps * scale / 32767, stored, atol=scale / 32767)


def test_tiny_tables_flag_the_constant_cls_layer_and_carry_controls(tiny_build):
    _, _, artifacts_root = tiny_build
    artifacts = open_artifacts(artifacts_root / "tiny-bert")
    tables = tables_of(artifacts_root, "tiny-bert")
    summary = tables["representation_summary"]
    pooled = np.asarray(artifacts.array("corpus/pooled_cls"), dtype=np.float64)
    spread = np.abs(pooled[:, 0] - pooled[:, 0].mean(axis=0)).max()
    assert spread <= 1e-5 * np.abs(pooled[:, 0]).max()  # [CLS] + position 0: one vector
    (constant,) = summary["constant"]
    assert (constant["pooling"], constant["layer"]) == ("cls", 0)
    assert "[CLS]" in constant["reason"] and "position 0" in constant["reason"]
    rows = tables["representation_separability"]
    flagged = {(r["pooling"], r["layer"]) for r in rows if r["constant"]}
    assert flagged == {("cls", 0)}
    silhouettes = [r for r in rows if r["metric"] == "silhouette" and r["constant"]]
    assert silhouettes and all(r["value"] is None for r in silhouettes)
    projections = [r for r in tables["representation_projections"] if r["constant"]]
    assert {(r["pooling"], r["layer"], r["method"]) for r in projections} == {("cls", 0, "pca")}
    by_key = {(r["pooling"], r["layer"], r["metric"]): r for r in rows}
    for (pooling, layer, metric), row in by_key.items():
        if metric == "selectivity":
            linear = by_key[(pooling, layer, "linear probe")]["value"]
            control = by_key[(pooling, layer, "control task")]["value"]
            assert row["value"] == pytest.approx(linear - control, abs=2e-6)
    lexical = summary["lexical"]
    assert 0 <= lexical["accuracy"] <= 1 and lexical["se"] >= 0
    assert "token ids" in lexical["features"]
    assert "re-splits" in summary["protocol"]["errors"]


def test_default_model_controls_and_lexical_baseline(default_build):
    _, _, artifacts_root = default_build
    tables = tables_of(artifacts_root, "all-minilm-l6-v2")
    summary = tables["representation_summary"]
    rows = {
        (r["pooling"], r["layer"], r["metric"]): r for r in tables["representation_separability"]
    }
    chance = summary["protocol"]["chance"]
    lexical = summary["lexical"]
    layer0 = rows[("mean", 0, "linear probe")]
    print(
        f"default build: mean layer 0 {layer0['value']:.3f} ± {layer0['se']:.3f}; bag of tokens "
        f"{lexical['accuracy']:.3f} ± {lexical['se']:.3f}; controls "
        + ", ".join(
            f"{r['pooling']}{r['layer']} {r['value']:.2f}"
            for k, r in rows.items()
            if k[2] == "control task"
        )
    )
    assert lexical["accuracy"] - 3 * lexical["se"] > chance
    for key, row in rows.items():
        if key[2] == "control task":  # random labels: chance within a few binomial SE
            assert abs(row["value"] - chance) <= 3.5 * row["se"], (key, row)
    assert rows[("cls", 0, "linear probe")]["constant"]
    assert not rows[("mean", 0, "linear probe")]["constant"]
