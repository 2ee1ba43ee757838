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
