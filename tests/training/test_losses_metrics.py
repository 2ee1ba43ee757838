import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import f1_score, top_k_accuracy_score

from keras_art.training.epoch_metrics import EpochMetrics, f1_scores, step_statistics
from keras_art.training.losses import total_loss


def test_masked_soft_label_loss_with_smoothing():
    y = np.array([[1, 0, 0], [0.3, 0.7, 0], [0, 0, 1], [0, 1, 0]], "float32")
    p = np.array(
        [[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.9, 0.05, 0.05]],
        "float32",
    )
    w = np.array([1, 1, 1, 0], "float32")  # last label missing
    eps = 0.03
    ys = y * (1 - eps) + eps / 3
    per_row = -(ys * np.log(p)).sum(-1)
    expected = per_row[:3].mean()
    loss, parts = total_loss(
        {"a": tf.constant(y)},
        {"a": tf.constant(p)},
        {"a": tf.constant(w)},
        label_smoothing=eps,
    )
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    # A wildly wrong prediction on the missing row changes nothing.
    p2 = p.copy()
    p2[3] = [1e-6, 1e-6, 1 - 2e-6]
    loss2, _ = total_loss(
        {"a": tf.constant(y)},
        {"a": tf.constant(p2)},
        {"a": tf.constant(w)},
        label_smoothing=eps,
    )
    assert float(loss2) == pytest.approx(float(loss), rel=1e-6)
    assert float(parts["a"][1]) == 3.0


def test_task_weights_and_all_missing_task():
    y = tf.constant([[1.0, 0.0]])
    p = tf.constant([[0.5, 0.5]])
    loss, _ = total_loss(
        {"a": y, "b": y},
        {"a": p, "b": p},
        {"a": tf.constant([1.0]), "b": tf.constant([0.0])},
        task_weights={"a": 2.0},
    )
    assert float(loss) == pytest.approx(2 * np.log(2), rel=1e-5)


def test_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    n, c = 40, 7
    labels = rng.integers(0, c - 1, n)  # class 6 never true
    probs = rng.random((n, c)).astype("float32")
    probs /= probs.sum(1, keepdims=True)
    weights = np.ones(n, "float32")
    weights[::5] = 0
    # Soft targets: argmax must be the label.
    y = np.eye(c, dtype="float32")[labels] * 0.6 + 0.4 / c
    acc = EpochMetrics(("style",))
    for lo in range(0, n, 16):  # three batches, the last partial
        sl = slice(lo, lo + 16)
        t, o, w = {"style": y[sl]}, {"style": probs[sl]}, {"style": weights[sl]}
        stats = step_statistics(
            {"style": tf.constant(y[sl])},
            {"style": tf.constant(probs[sl])},
            {"style": tf.constant(weights[sl])},
        )
        _, parts = total_loss(t, o, w)
        acc.update(
            {k: tuple(np.asarray(x) for x in v) for k, v in parts.items()},
            {k: {kk: np.asarray(vv) for kk, vv in v.items()} for k, v in stats.items()},
        )
    logs = acc.result("val_")
    keep = weights > 0
    yt, pp = labels[keep], probs[keep]
    pred = pp.argmax(1)
    assert logs["val_top1"] == pytest.approx((pred == yt).mean())
    assert logs["val_top5"] == pytest.approx(
        top_k_accuracy_score(yt, pp, k=5, labels=range(c))
    )
    assert logs["val_macro_f1"] == pytest.approx(
        f1_score(yt, pred, average="macro", zero_division=0)
    )
    assert logs["val_weighted_f1"] == pytest.approx(
        f1_score(yt, pred, average="weighted", zero_division=0)
    )


def test_multi_task_names_and_aggregate():
    acc = EpochMetrics(("artist", "style"))
    cm_a = np.diag([2.0, 2.0])
    cm_s = np.array([[1.0, 1.0], [0.0, 2.0]])
    acc.update(
        {"artist": (1.0, 4.0), "style": (2.0, 4.0)},
        {
            "artist": {"confusion": cm_a, "topk": 4.0, "count": 4.0},
            "style": {"confusion": cm_s, "topk": 4.0, "count": 4.0},
        },
    )
    logs = acc.result("val_")
    assert logs["val_artist_macro_f1"] == pytest.approx(1.0)
    assert logs["val_style_top1"] == pytest.approx(0.75)
    assert logs["val_macro_f1"] == pytest.approx((1.0 + f1_scores(cm_s)[0]) / 2)
    assert logs["val_loss"] == pytest.approx(0.25 + 0.5)
