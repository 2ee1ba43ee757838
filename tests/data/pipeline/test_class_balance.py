import numpy as np

from keras_art.data.pipeline.class_balance import (
    class_weights,
    sampler_histogram,
)

# 3 classes at 90 / 9 / 1 plus 10 % missing labels (-1).
IMBALANCED = np.array([0] * 810 + [1] * 81 + [2] * 9 + [-1] * 100)


def test_balanced_histogram_is_near_uniform_and_keeps_missing_share():
    hist = sampler_histogram(IMBALANCED, 3, draws=3000, seed=0)
    counts = np.array(hist["counts"])
    assert counts.sum() + hist["missing"] == 3000
    expected = 0.9 * 3000 / 3  # 900 each
    assert np.all(np.abs(counts - expected) < 0.15 * expected)
    assert abs(hist["missing"] - 300) < 75


def test_unbalanced_histogram_follows_the_data():
    hist = sampler_histogram(IMBALANCED, 3, draws=1000, balanced=False, seed=0)
    assert hist["counts"] == [810, 81, 9] and hist["missing"] == 100


def test_histogram_is_deterministic_with_a_seed():
    a = sampler_histogram(IMBALANCED, 3, draws=500, seed=3)
    b = sampler_histogram(IMBALANCED, 3, draws=500, seed=3)
    assert a == b


def test_class_weights_inverse_frequency_normalised():
    w = class_weights(IMBALANCED, 4)
    labelled = IMBALANCED[IMBALANCED >= 0]
    assert w[3] == 0  # absent class
    np.testing.assert_allclose(w[labelled].mean(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(w[0] * 810, w[2] * 9, rtol=1e-5)


def test_sampler_report_describes_the_order_that_trains():
    """data_report.json's sampler section is `epoch_order` (the pipeline's order)
    over whole epochs of the train split, with the run's seed."""
    from keras_art.data.catalog.prepare import PreparedData
    from keras_art.data.pipeline.class_balance import epoch_order, sampler_report

    split = np.where(np.arange(len(IMBALANCED)) % 10 == 0, "val", "train")
    prepared = PreparedData(
        files=[f"f{i}.jpg" for i in range(len(IMBALANCED))],
        labels={"style": IMBALANCED},
        class_names={"style": ["a", "b", "c"]},
        split=split,
        tasks=("style",),
    )
    report = sampler_report(prepared, draws=2000, seed=5)
    train = IMBALANCED[split == "train"]
    assert report["epochs"] == 3 and report["draws"] == 3 * len(train)
    drawn = train[
        np.concatenate(
            [epoch_order(train, 3, seed=5, balanced=True, epoch=e) for e in range(3)]
        )
    ]
    want = np.bincount(drawn[drawn >= 0], minlength=3) / len(drawn)
    np.testing.assert_allclose(
        list(report["sampled_fraction"].values()), want, atol=1e-4
    )
    assert report["unlabelled_draws"] == int((drawn < 0).sum())
    assert (
        list(report["train_counts"].values()) == np.bincount(train[train >= 0]).tolist()
    )
    first = epoch_order(train, 3, seed=5, balanced=True)
    assert report["largest_class"]["distinct_in_epoch_1"] == len(
        np.unique(first[train[first] == 0])
    )


def test_class_weights_by_hand():
    """counts [3, 1, 0] (one unlabelled row): 1/count = [1/3, 1, 0], scaled so the
    mean over the 4 labelled rows is 1 -> [2/3, 2, 0]. A class with a single
    example gets the largest weight; float32, as the loss weights are."""
    w = class_weights(np.array([0, 0, 1, 0, -1]), 3)
    assert w.dtype == np.float32
    np.testing.assert_allclose(w, [2 / 3, 2, 0], rtol=1e-6)
    assert class_weights(np.array([-1, -1]), 2).tolist() == [0, 0]


def test_histogram_edges_and_defaults():
    # One example: every draw is it (one epoch per draw), fractions sum to 1.
    one = sampler_histogram([0], 2, draws=5)
    assert one == {"counts": [5, 0], "missing": 0, "fraction": [1.0, 0.0]}
    assert sampler_histogram([1], 3, draws=1)["fraction"] == [0.0, 1.0, 0.0]
    # Classes missing from the labels still get their (zero) slot.
    hist = sampler_histogram([0, 1, -1], 4, draws=6, balanced=False)
    assert hist == {"counts": [2, 2, 0, 0], "missing": 2,
                    "fraction": [1 / 3, 1 / 3, 0.0, 0.0]}  # fmt: skip
    # Defaults: 10,000 draws with seed 0.
    default = sampler_histogram(IMBALANCED, 3)
    assert sum(default["counts"]) + default["missing"] == 10000
    assert default == sampler_histogram(IMBALANCED, 3, draws=10000, seed=0)
    assert default != sampler_histogram(IMBALANCED, 3, draws=10000, seed=1)


def test_unseeded_histogram_counts_every_draw():
    hist = sampler_histogram(IMBALANCED, 3, draws=2500, seed=None)
    assert sum(hist["counts"]) + hist["missing"] == 2500


def _prepared(train_labels, names=("a", "b", "c")):
    from keras_art.data.catalog.prepare import PreparedData

    labels = np.concatenate([np.asarray(train_labels, np.int64), [0]])
    return PreparedData(
        files=[f"f{i}.jpg" for i in range(len(labels))],
        labels={"style": labels},
        class_names={"style": list(names)},
        split=np.array(["train"] * (len(labels) - 1) + ["val"]),
        tasks=("style",),
    )


def test_shuffled_sampler_report_by_hand():
    """Shuffled whole epochs draw each train file once per epoch: the fractions
    are the train mix, 4/6 and 1/6 here, rounded to 4 decimals; class c is absent
    from train and still listed."""
    from keras_art.data.pipeline.class_balance import sampler_report

    report = sampler_report(_prepared([0, 0, 0, 0, 1, -1]), draws=10, balanced=False)
    largest = report.pop("largest_class")
    assert report == {
        "task": "style",
        "sampler": "shuffled",
        "draws": 12,
        "epochs": 2,
        "train_counts": {"a": 4, "b": 1, "c": 0},
        "sampled_fraction": {"a": 0.6667, "b": 0.1667, "c": 0.0},
        "unlabelled_draws": 2,
    }
    # The first (shuffled) epoch reaches every file of the largest class.
    assert largest == {"class": "a", "files": 4, "distinct_in_epoch_1": 4}


def test_sampler_report_defaults_and_epoch_count():
    from keras_art.data.pipeline.class_balance import sampler_report

    prepared = _prepared([0] * 2400 + [1] * 100)
    report = sampler_report(prepared)
    assert report["sampler"] == "class-balanced"
    assert report["epochs"] == 4 and report["draws"] == 10000  # 4 x 2,500
    assert report == sampler_report(prepared, draws=10000, seed=0, balanced=True)
    assert report != sampler_report(prepared, draws=10000, seed=1, balanced=True)
    # Fewer draws than one epoch: one whole epoch.
    assert sampler_report(prepared, draws=5)["epochs"] == 1
    # A single train file: one epoch per draw.
    single = sampler_report(_prepared([2]), draws=3)
    assert (single["epochs"], single["draws"]) == (3, 3)
    assert single["sampled_fraction"] == {"a": 0.0, "b": 0.0, "c": 1.0}


def test_sampler_report_without_labelled_train_files_has_no_largest_class():
    from keras_art.data.pipeline.class_balance import sampler_report

    report = sampler_report(_prepared([-1, -1, -1]), draws=3)
    assert "largest_class" not in report
    assert report["unlabelled_draws"] == 3
    assert report["train_counts"] == {"a": 0, "b": 0, "c": 0}
