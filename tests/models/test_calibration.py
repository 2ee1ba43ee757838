"""Temperature scaling (`keras_art.models.calibration`) on synthetic logits."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_art.models.calibration import (
    TEMPERATURE_BOUNDS,
    apply_temperature,
    apply_temperature_tf,
    fit_temperature,
    mean_nll,
    rescale,
)
from keras_art.models.model_record import ModelRecord, read_model_record


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _synthetic(n, classes, true_t, seed=0):
    """Logits whose softmax is over-confident by ``true_t``: labels are drawn from
    softmax(z / true_t), the model says softmax(z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 4.0, (n, classes))
    truth = _softmax(z / true_t)
    labels = (truth.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return z, labels


def test_scaling_probabilities_equals_scaling_the_logits():
    z, _ = _synthetic(64, 7, 1.0)
    p = _softmax(z)
    for t in (0.3, 1.0, 2.5, 9.0):
        np.testing.assert_allclose(apply_temperature(p, t), _softmax(z / t), atol=1e-12)
    # float32 probabilities (the model's output) stay float32 and as close as
    # float32 allows; a probability that underflowed to 0 stays finite.
    got = apply_temperature(p.astype(np.float32), 2.5)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, _softmax(z / 2.5), atol=1e-6)
    zero = apply_temperature(np.array([[1.0, 0.0]], np.float32), 2.0)
    assert np.isfinite(zero).all() and zero[0, 1] < 1e-15


def test_tensorflow_form_equals_numpy_and_rescale_undoes_it():
    z, _ = _synthetic(32, 5, 1.0, seed=1)
    p = _softmax(z).astype(np.float32)
    graph = apply_temperature_tf(tf.constant(p), 2.5).numpy()
    np.testing.assert_allclose(graph, apply_temperature(p, 2.5), atol=1e-6)
    # p_raw ∝ p_cal^T: a model with T inside gives the raw probabilities back.
    np.testing.assert_allclose(rescale(graph, baked=2.5, wanted=None), p, atol=1e-6)
    np.testing.assert_allclose(
        rescale(p, baked=None, wanted=2.5), apply_temperature(p, 2.5), atol=1e-7
    )
    assert rescale(p, baked=2.5, wanted=2.5) is not None
    np.testing.assert_array_equal(rescale(p, baked=None, wanted=None), p)


def test_undoing_the_lowest_temperature_is_exact_in_float32():
    # T = 0.25 sharpens p to p^4 / Z: float32 loses the classes below ~1e-10,
    # yet the raw probabilities come back to within 1e-9 (and float32 rounding).
    z, _ = _synthetic(200, 10, 1.0, seed=4)
    raw = _softmax(z * 3).astype(np.float32)
    lo = TEMPERATURE_BOUNDS[0]
    calibrated = apply_temperature_tf(tf.constant(raw), lo).numpy()
    assert (calibrated == 0).any()
    undone = rescale(calibrated, baked=lo, wanted=None)
    np.testing.assert_allclose(undone, raw, rtol=1e-6, atol=1e-9)


def test_mean_nll_is_the_scaled_softmax_cross_entropy():
    z, y = _synthetic(50, 4, 2.0, seed=2)
    for t in (0.5, 1.0, 3.0):
        want = -np.log(_softmax(z / t)[np.arange(50), y]).mean()
        assert mean_nll(y, _softmax(z), t) == pytest.approx(want, rel=1e-10)


def test_fit_recovers_a_known_temperature():
    z, y = _synthetic(20000, 10, 2.5)
    t = fit_temperature(y, _softmax(z).astype(np.float32))
    # 20,000 labels pin T to about +-0.03 (2.48-2.52 over four seeds; 2.48 here).
    assert t == pytest.approx(2.5, abs=0.1)
    # Calibrated data gives T near 1; unlabelled rows are ignored.
    z1, y1 = _synthetic(20000, 10, 1.0, seed=3)
    y1[:500] = -1
    assert fit_temperature(y1, _softmax(z1)) == pytest.approx(1.0, abs=0.05)


def test_fit_stays_in_bounds_and_refuses_no_labels(caplog):
    p = np.array([[0.999, 0.001]] * 20)
    y = np.ones(20, int)  # confidently wrong every time: T as high as allowed
    lo, hi = TEMPERATURE_BOUNDS
    assert fit_temperature(y, p) == pytest.approx(hi, rel=1e-3)
    # Always right: T as low as allowed, which still undoes exactly (see below).
    assert fit_temperature(np.zeros(20, int), p) == pytest.approx(lo, rel=1e-3)
    assert caplog.text.count("stopped at its bound") == 2
    assert lo <= fit_temperature(np.zeros(20, int), np.full((20, 2), 0.5)) <= hi
    with pytest.raises(ValueError, match="No labelled rows"):
        fit_temperature(np.full(3, -1), np.full((3, 2), 0.5))


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, "x", None])
def test_a_temperature_must_be_finite_and_positive(bad):
    with pytest.raises(ValueError, match="finite number above 0"):
        apply_temperature(np.full((1, 2), 0.5), bad)


def test_model_record_keeps_temperatures_per_task(tmp_path):
    record = ModelRecord(
        tasks=["artist", "style"],
        class_names={"artist": ["a", "b"], "style": ["x", "y"]},
        image_size=32,
        eval_resize="center_crop",
        backbone="resnet50",
        head="gap",
    )
    (tmp_path / "config.json").write_text("{}")
    record.write(tmp_path)
    assert read_model_record(tmp_path).temperature is None  # older records
    record.with_temperature({"artist": 1.5, "style": 0.8}).write(tmp_path)
    assert read_model_record(tmp_path).temperature == {"artist": 1.5, "style": 0.8}
    with pytest.raises(ValueError, match="every task"):
        record.with_temperature({"artist": 1.5})
    with pytest.raises(ValueError, match="finite number above 0"):
        record.with_temperature({"artist": 1.5, "style": 0})
