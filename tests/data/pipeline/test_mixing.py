import numpy as np
import pytest
import tensorflow as tf

from keras_art.data.pipeline.mixing import cutmix_box, mix_batch, mix_labels

B, H = 6, 8


def batch():
    # Image i is flat (i + 1, 1, (i + 1)^2): a mixed pixel tells its sources.
    v = np.arange(1, B + 1, dtype="float32")
    pixel = np.stack([v, np.ones_like(v), v**2], -1)
    images = np.broadcast_to(pixel[:, None, None, :], (B, H, H, 3)).copy()
    style = np.array([0, 1, 2, 0, 1, -1])
    genre = np.array([-1, -1, 1, 0, 1, 0])
    targets = {
        "style": tf.one_hot(style, 3),
        "genre": tf.one_hot(genre, 2),
    }
    weights = {
        "style": tf.constant((style >= 0).astype("float32")),
        "genre": tf.constant((genre >= 0).astype("float32")),
    }
    return tf.constant(images), targets, weights


def run(seed, eager=True, **kw):
    images, targets, weights = batch()
    fn = lambda s: mix_batch(images, targets, weights, s, **kw)  # noqa: E731
    if eager:
        return fn(tf.constant(seed))
    return next(iter(tf.data.Dataset.from_tensors(tf.constant(seed)).map(fn)))


def partner_and_share(image, i, kind):
    """Which image j was mixed into image i, and i's share of the picture."""
    c0, c2 = image[..., 0], image[..., 2]
    if kind == "cutmix":
        own = np.isclose(c0, i + 1)
        others = np.unique(np.round(c0[~own])).astype(int)
        return (others[0] - 1 if others.size else i), own.mean()
    best = (np.inf, i, 1.0)
    for j in range(B):
        if j == i:
            continue
        lam = (c0.flat[0] - (j + 1)) / (i - j)
        err = abs(c2.flat[0] - lam * (i + 1) ** 2 - (1 - lam) * (j + 1) ** 2)
        if -1e-4 <= lam <= 1 + 1e-4 and err < best[0]:
            best = (err, j, lam)
    return (best[1], best[2]) if best[0] < 1e-3 else (i, 1.0)


def to_np(out):
    return tf.nest.map_structure(lambda t: t.numpy(), out)


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_mixed_labels_sum_to_one_and_weights_follow_the_rule(kind):
    kw = {
        "mixup_p": 1.0 if kind == "mixup" else 0.0,
        "cutmix_p": 1.0 if kind == "cutmix" else 0.0,
    }
    for seed in ([1, 2], [3, 4], [5, 6], [7, 8]):
        check_one_batch(seed, kind, kw)


def check_one_batch(seed, kind, kw):
    images, targets, weights = to_np(run(seed, **kw))
    i0, t0, w0 = to_np(batch())
    # Probability 1: the batch is mixed, pixels and labels alike.
    assert not np.array_equal(images, i0)
    assert any(((t > 0) & (t < 1)).any() for t in targets.values())
    for i in range(B):
        j, lam = partner_and_share(images[i], i, kind)
        for task in targets:
            w = lam * w0[task][i] + (1 - lam) * w0[task][j]
            np.testing.assert_allclose(weights[task][i], w, atol=2e-3)
            if weights[task][i] > 0:
                assert abs(targets[task][i].sum() - 1) < 1e-5
            else:
                assert targets[task][i].sum() == 0
            if w0[task][i] == 0 and weights[task][i] > 0:  # missing never mixed in
                np.testing.assert_allclose(targets[task][i], t0[task][j], atol=1e-6)


def test_label_rule_exactly():
    y = {"t": tf.constant([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])}
    w = {"t": tf.constant([1.0, 0.0, 2.0])}
    perm = tf.constant([1, 2, 0])
    t, ww = mix_labels(y, w, perm, tf.constant(0.7))
    t, ww = t["t"].numpy(), ww["t"].numpy()
    np.testing.assert_allclose(t[0], [1, 0])  # partner 1 unlabelled: own label only
    np.testing.assert_allclose(ww[0], 0.7)
    np.testing.assert_allclose(t[1], [0, 1])  # own label missing: partner's label
    np.testing.assert_allclose(ww[1], 0.3 * 2.0)
    np.testing.assert_allclose(t[2], [0.3, 0.7], atol=1e-6)
    np.testing.assert_allclose(ww[2], 0.7 * 2.0 + 0.3 * 1.0)


def test_cutmix_box_inside_image_and_lam_from_area():
    for s in range(30):
        y0, x0, y1, x1 = cutmix_box(tf.constant([s, 1]), 10, 14, 0.3).numpy()
        assert 0 <= y0 <= y1 <= 10 and 0 <= x0 <= x1 <= 14
    # In mix_batch, lam = 1 - (area of the box found in the output) / (H * W).
    i0, t0, w0 = to_np(batch())
    at_border = 0
    for s in range(12):
        images, targets, weights = to_np(run([s, 7], mixup_p=0.0, cutmix_p=1.0))
        changed = (images != i0).any(-1)  # (B, H, H): each image's pasted pixels
        box = changed.any(0)
        rows, cols = np.nonzero(box)
        assert rows.size  # the batch was mixed
        y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        assert box[y0:y1, x0:x1].all() and box.sum() == (y1 - y0) * (x1 - x0)
        at_border += y0 == 0 or x0 == 0 or y1 == H or x1 == H
        lam = 1.0 - box.sum() / (H * H)
        for i in range(B):
            assert not changed[i].any() or (changed[i] == box).all()  # one box
            j = int(round(images[i, y0, x0, 0])) - 1  # the partner's pixel
            for task in targets:
                w = lam * w0[task][i] + (1 - lam) * w0[task][j]
                np.testing.assert_allclose(weights[task][i], w, atol=1e-5)
                if w0[task][i] > 0 and w0[task][j] > 0:
                    y = lam * t0[task][i] + (1 - lam) * t0[task][j]
                    np.testing.assert_allclose(targets[task][i], y, atol=1e-5)
    assert at_border  # a box clipped by the image edge (its area is not nominal)


def test_no_mixing_when_probabilities_are_zero():
    images, targets, weights = to_np(run([0, 0], mixup_p=0.0, cutmix_p=0.0))
    i0, t0, w0 = to_np(batch())
    np.testing.assert_array_equal(images, i0)
    for task in targets:
        np.testing.assert_array_equal(targets[task], t0[task])
        np.testing.assert_array_equal(weights[task], w0[task])


def test_deterministic_and_eager_equals_dataset_map():
    a = to_np(run([5, 9]))
    b = to_np(run([5, 9], eager=False))
    tf.nest.map_structure(
        lambda x, y: np.testing.assert_allclose(x, y, atol=1e-5), a, b
    )
    c = [to_np(run([s, 3]))[0] for s in range(6)]
    assert any(not np.array_equal(c[0], x) for x in c[1:])


@pytest.mark.parametrize("eager", [True, False])
def test_compiled_mix_images_match_numpy(eager):
    from keras_art.data.pipeline.mixing import mix_images

    rng = np.random.default_rng(0)
    images = tf.constant(rng.random((4, 9, 11, 3)), tf.float32)
    perm = tf.constant([2, 0, 3, 1])
    x, partner = images.numpy(), images.numpy()[[2, 0, 3, 1]]
    boxes = [[0, 0, 9, 11], [2, 3, 5, 8], [0, 4, 9, 5], [3, 3, 3, 7], [8, 10, 9, 11]]
    cases = [("mixup", tf.constant(lam)) for lam in (0.0, 0.3, 1.0)]
    cases += [("cutmix", tf.constant(b, tf.int32)) for b in boxes]
    for kind, amount in cases:
        if eager:
            out = mix_images(images, perm, amount, kind)
        else:
            ds = tf.data.Dataset.from_tensors(amount)
            out = next(iter(ds.map(lambda a, k=kind: mix_images(images, perm, a, k))))
        if kind == "mixup":
            lam = float(amount)
            ref = lam * x + (1 - lam) * partner
        else:
            y0, x0, y1, x1 = amount.numpy()
            mask = np.zeros((1, 9, 11, 1), bool)
            mask[:, y0:y1, x0:x1] = True
            ref = np.where(mask, partner, x)
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6, atol=1e-6)
