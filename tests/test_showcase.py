"""Showcase choice: held-out rows first, every label represented, deterministic."""

import numpy as np
import pytest

from generator.errors import CorpusError
from generator.extract.showcase import choose_showcase, resolve_showcase_texts


def test_prefers_validation_and_round_robins_labels():
    labels = ["a", "a", "b", "b", "c", "c", "a", "b"]
    splits = [
        "train",
        "validation",
        "train",
        "validation",
        "validation",
        "train",
        "validation",
        "validation",
    ]
    chosen = choose_showcase(len(labels), 3, labels, splits).tolist()
    assert chosen == [1, 3, 4]
    assert all(splits[i] == "validation" for i in chosen)


def test_without_labels_takes_first_rows_and_caps_count():
    assert choose_showcase(5, 3).tolist() == [0, 1, 2]
    assert choose_showcase(2, 8).tolist() == [0, 1]


def test_without_held_out_rows_uses_all():
    chosen = choose_showcase(4, 2, ["x", "y", "x", "y"], ["train"] * 4).tolist()
    assert chosen == [0, 1]


def test_named_rows_come_first_in_order_and_the_rest_is_filled_as_before():
    labels = ["a", "a", "b", "b", "c", "c", "a", "b"]
    splits = ["train", "validation", "train", "validation", "validation", "train"] + [
        "validation"
    ] * 2
    chosen = choose_showcase(len(labels), 4, labels, splits, first=[5, 9, 3]).tolist()
    # 5 (a train row) and 9 (an extra text past the corpus) as named; 3 is named, so the
    # round-robin over the remaining held-out rows (a: 1, 6; b: 7; c: 4) takes label a's first.
    assert chosen == [5, 9, 3, 1]
    assert choose_showcase(len(labels), 3, labels, splits, first=[]).tolist() == [1, 3, 4]
    assert choose_showcase(5, 2, first=[4, 3, 2]).tolist() == [4, 3]  # capped at `count`


def test_texts_resolve_to_their_first_corpus_row_or_to_extra_rows():
    texts = ["alpha", "beta", "alpha", "gamma"]
    rows, extra = resolve_showcase_texts(["alpha", 3, "delta", "epsilon"], texts)
    assert rows == [0, 3, 4, 5] and extra == ["delta", "epsilon"]
    with pytest.raises(CorpusError, match=r"showcase_texts\[0\]: row id 4 is past the corpus"):
        resolve_showcase_texts([4], texts)
    with pytest.raises(CorpusError, match=r"showcase_texts\[1\] names corpus row 1 a second"):
        resolve_showcase_texts(["beta", 1], texts)
    with pytest.raises(CorpusError, match="no target_field value"):
        resolve_showcase_texts(["delta"], texts, has_targets=True)


def test_extra_texts_get_the_corpus_centroid_as_their_reference():
    from generator.extract.attribution_capture import class_references

    pooled = np.array([[0.0, 2.0], [4.0, 0.0], [2.0, 2.0]], dtype=np.float32)
    refs = class_references(pooled, ["x", "y", "x"], np.array([1, 3]))
    np.testing.assert_allclose(refs, [[4.0, 0.0], pooled.mean(axis=0)])
