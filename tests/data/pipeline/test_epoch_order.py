"""`epoch_order` on WikiArt-sized catalogs (labels only, no images).

The catalogs are class-sorted, as the readers list them. Tolerances are about five
standard deviations of the quantity checked, so the tests are not flaky, yet each
is far below what the old shuffle-buffer streams produced (see each test).
"""

import numpy as np
import pytest

from keras_art.data.pipeline.class_balance import epoch_order, sampler_histogram

# One large class, as in the issue (17,000 of 20,000), then three small ones.
LARGE = np.repeat(np.arange(4), [17000, 1000, 1000, 1000])
# Ten classes of WikiArt-like, skewed sizes (largest 30 %), class-sorted.
SKEWED = np.repeat(
    np.arange(10), [6000, 4000, 3000, 2000, 1500, 1200, 900, 600, 450, 350]
)


def _class_draws(order, labels, c):
    """Positions, within class ``c``'s catalog block, of the draws from ``c``."""
    first = int(np.flatnonzero(labels == c)[0])
    return order[labels[order] == c] - first


def test_balanced_epochs_walk_the_whole_large_class():
    """Over epochs 1..5 the large class gives min(n, D) distinct files after D
    draws: the expectation for sampling it uniformly WITHOUT replacement (one
    permutation of the class after another), which is what the sampler promises.
    Uniform sampling with replacement would expect n(1 - (1 - 1/n)^D) (about 9,960
    after three epochs); the old per-epoch shuffle(2048) streams over catalog
    order reached 6,386 and never a file past position ~7,000."""
    n = 17000
    seen = np.zeros(n, np.int64)
    draws = 0
    for epoch in range(5):
        order = epoch_order(LARGE, 4, seed=7, balanced=True, epoch=epoch)
        pos = _class_draws(order, LARGE, 0)
        draws += len(pos)
        np.add.at(seen, pos, 1)
        assert np.count_nonzero(seen) == min(n, draws)
        if epoch == 0:
            # The first epoch's ~5,000 files are spread over the whole class:
            # each tenth of the catalog block gets ~500 (hypergeometric sd ~18).
            deciles = np.bincount(pos * 10 // n, minlength=10)
            assert np.all(np.abs(deciles - len(pos) / 10) < 100), deciles
        if epoch == 2:
            iid = n * (1 - (1 - 1 / n) ** draws)
            assert np.count_nonzero(seen) > iid + 3000
    # Five epochs of ~5,000 draws: every file used once or twice, never more.
    assert abs(draws - 5 * 20000 / 4) < 5 * np.sqrt(5 * 20000 * 0.25 * 0.75)
    assert seen.min() == draws // n and seen.max() == -(-draws // n)


def test_shuffled_batches_mirror_the_global_class_mix():
    """Without balancing every batch of 32 looks like a multinomial draw from the
    global proportions. Pearson's chi-square of a batch then has mean about C - 1
    (9 here; its sd over 625 batches is ~0.2), and no class holds 3/4 of a batch
    (P < 1e-6 per batch for the 30 % class). The old 2048-element buffer over
    these class-sorted files gives single-class batches (chi-square in the 100s)."""
    n, batch = len(SKEWED), 32
    p = np.bincount(SKEWED) / n
    order = epoch_order(SKEWED, 10, seed=3, balanced=False, epoch=4)
    np.testing.assert_array_equal(np.sort(order), np.arange(n))  # each file once
    batches = SKEWED[order[: n // batch * batch]].reshape(-1, batch)
    counts = np.stack([np.bincount(b, minlength=10) for b in batches])
    expected = batch * p
    chi2 = ((counts - expected) ** 2 / expected).sum(1)
    assert 0.85 * 9 < chi2.mean() < 1.15 * 9, chi2.mean()
    assert counts.max() < 0.75 * batch


def test_balanced_draws_give_each_class_its_share():
    """N draws per epoch: each of the C classes ~ (1 - m) N / C, the unlabelled
    group (-1, a share m of the data) keeps ~ m N; 5 sd tolerances."""
    labels = np.repeat(np.arange(10), [9142, 4000, 2000, 1500, 1000, 800, 500, 300,
                                       200, 100])  # fmt: skip
    labels = np.concatenate([labels, np.full(1000, -1)])
    n = len(labels)
    for epoch in (0, 3):
        order = epoch_order(labels, 10, seed=11, balanced=True, epoch=epoch)
        assert len(order) == n
        drawn = labels[order]
        share = (1 - 1000 / n) / 10
        counts = np.bincount(drawn[drawn >= 0], minlength=10)
        assert np.all(np.abs(counts - share * n) < 5 * np.sqrt(n * share)), counts
        assert abs((drawn < 0).sum() - 1000) < 5 * np.sqrt(1000)
    # The data report's histogram is the same function's, over whole epochs.
    hist = sampler_histogram(labels, 10, draws=2 * n, seed=11)
    drawn = labels[
        np.concatenate(
            [epoch_order(labels, 10, seed=11, balanced=True, epoch=e) for e in (0, 1)]
        )  # fmt: skip
    ]
    assert hist["counts"] == np.bincount(drawn[drawn >= 0], minlength=10).tolist()
    assert hist["missing"] == int((drawn < 0).sum())


@pytest.mark.parametrize("balanced", [True, False])
def test_order_is_a_function_of_seed_and_epoch(balanced):
    def order(seed, epoch):
        return epoch_order(LARGE, 4, seed=seed, balanced=balanced, epoch=epoch)

    np.testing.assert_array_equal(order(5, 2), order(5, 2))
    assert not np.array_equal(order(5, 2), order(6, 2))
    assert not np.array_equal(order(5, 2), order(5, 3))
    # Seed s at epoch 1 is not seed s + 1 at epoch 0 (no aliasing across runs).
    assert not np.array_equal(order(5, 1), order(6, 0))


def test_resume_after_epoch_k_continues_the_class_streams():
    """An uninterrupted run calls epochs 0..5 in turn; a run resumed after epoch
    2 starts at epoch 3 in a fresh process. Both see the same epochs 3..5, and
    the large class's stream carries on across the resume: the first ~17,000
    draws of class 0 over all epochs never repeat a file."""
    uninterrupted = [
        epoch_order(LARGE, 4, seed=1, balanced=True, epoch=e) for e in range(6)
    ]
    resumed = [epoch_order(LARGE, 4, seed=1, balanced=True, epoch=e) for e in (5, 4, 3)]
    for got, want in zip(resumed[::-1], uninterrupted[3:], strict=True):
        np.testing.assert_array_equal(got, want)
    stream = np.concatenate([_class_draws(o, LARGE, 0) for o in uninterrupted])
    assert len(np.unique(stream[:17000])) == 17000
