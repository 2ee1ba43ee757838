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


def _stream(*key):
    """numpy's generator for a stream key, written out here (not imported) so a
    change to the module's seed layout shows up as a failing test."""
    return np.random.default_rng([k % 2**63 for k in key])


@pytest.mark.parametrize("seed", [0, 5, 7, -1])
def test_orders_are_the_documented_seed_streams(seed):
    """The exact orders are part of the contract: a run resumed (or re-run) with a
    later version of the code must see the same epochs. The streams are
    SeedSequence([stream, seed mod 2**63, ...]) with stream 1 = the shuffle,
    2 = the group draws, 3 = a group's permutations keyed by (class, cycle)."""
    n = 12
    for epoch in (0, 1, 2):
        shuffled = epoch_order(np.arange(n) % 3, 3, seed=seed, balanced=False,
                               epoch=epoch)  # fmt: skip
        want = _stream(1, seed, epoch).permutation(n)
        np.testing.assert_array_equal(shuffled, want)
        assert shuffled.dtype == np.int64
        # One class (key 2): every draw is from it, epoch e is its cycle e.
        one = epoch_order(np.full(n, 2), 3, seed=seed, balanced=True, epoch=epoch)
        np.testing.assert_array_equal(one, _stream(3, seed, 2, epoch).permutation(n))
        # Two equal classes: which class each draw comes from is stream 2.
        two = np.repeat([0, 1], n // 2)
        order = epoch_order(two, 2, seed=seed, balanced=True, epoch=epoch)
        groups = _stream(2, seed, epoch).choice(2, size=n, p=[0.5, 0.5])
        np.testing.assert_array_equal(two[order], groups)


def test_class_draws_change_with_seed_and_epoch_even_for_same_parity():
    """Which class each position draws depends on both seed and epoch (seeds or
    epochs that differ by 2 are not folded together)."""

    def classes(seed, epoch):
        order = epoch_order(LARGE, 4, seed=seed, balanced=True, epoch=epoch)
        return LARGE[order]

    assert not np.array_equal(classes(5, 1), classes(7, 1))
    assert not np.array_equal(classes(5, 1), classes(5, 3))
    np.testing.assert_array_equal(classes(5, 1), classes(5, 1))


def test_equal_classes_get_their_own_permutations():
    """Each class walks its own permutation: two classes of the same size do not
    visit their files in the same relative order."""
    labels = np.repeat([0, 1], 50)
    order = epoch_order(labels, 2, seed=3, balanced=True)
    a = _class_draws(order, labels, 0)
    b = _class_draws(order, labels, 1)
    k = min(len(a), len(b))
    assert k > 20 and not np.array_equal(a[:k], b[:k])


def test_a_class_stream_does_not_shift_when_another_class_is_empty():
    """Class 2's permutations are keyed by its class id, not its position among
    the non-empty classes: with class 1 empty it visits its files in the same
    order (the number of draws differs, so compare the common prefix)."""
    with_1 = np.repeat([0, 1, 2], 40)
    without_1 = np.repeat([0, 2], [40, 40])
    a = _class_draws(epoch_order(with_1, 3, seed=9, balanced=True), with_1, 2)
    b = _class_draws(epoch_order(without_1, 3, seed=9, balanced=True), without_1, 2)
    k = min(len(a), len(b))
    assert k > 20
    np.testing.assert_array_equal(a[:k], b[:k])


def test_a_group_missed_by_an_earlier_epoch_still_resumes():
    """A group with a tiny share (one unlabelled file in 1,000) is often not drawn
    in an epoch; later epochs must still count the earlier draws per group."""
    labels = np.concatenate([np.repeat([0, 1], [500, 499]), [-1]])
    seed = next(
        s
        for s in range(50)
        if (labels[epoch_order(labels, 2, seed=s, balanced=True)] >= 0).all()
    )
    orders = [epoch_order(labels, 2, seed=seed, balanced=True, epoch=e) for e in (0, 1)]
    assert all(len(o) == 1000 and o.dtype == np.int64 for o in orders)


@pytest.mark.parametrize("balanced", [True, False])
def test_edge_sizes(balanced):
    empty = epoch_order([], 3, seed=0, balanced=balanced)
    assert empty.shape == (0,) and empty.dtype == np.int64
    np.testing.assert_array_equal(epoch_order([1], 3, seed=0, balanced=balanced), [0])
    # Every label missing: the one (unlabelled) group is the whole epoch.
    order = epoch_order([-1] * 6, 3, seed=0, balanced=balanced)
    np.testing.assert_array_equal(np.sort(order), np.arange(6))


@pytest.mark.parametrize("balanced", [True, False])
def test_unseeded_orders_are_valid_and_fresh(balanced):
    labels = np.repeat(np.arange(3), 20)
    a = epoch_order(labels, 3, seed=None, balanced=balanced)
    b = epoch_order(labels, 3, seed=None, balanced=balanced)
    assert len(a) == 60 and a.dtype == np.int64 and set(a) <= set(range(60))
    assert not np.array_equal(a, b)  # 60 draws agreeing by chance: P < 1e-28


def test_negative_epoch_is_refused():
    with pytest.raises(ValueError, match=r"epoch must be >= 0. Received: -1"):
        epoch_order([0, 1], 2, seed=0, balanced=True, epoch=-1)
