"""Showcase choice: held-out rows first, every label represented, deterministic."""

from generator.extract.showcase import choose_showcase


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
