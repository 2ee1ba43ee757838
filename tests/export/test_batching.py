"""`suggest_batching`: TF Serving batching parameters from a measured curve."""

import pytest

from keras_art.errors import ParameterError
from keras_art.export.batching import (
    FIELDS,
    batching_parameters_text,
    parse_batching_parameters,
    suggest_batching,
)

# A CPU-like curve: throughput grows to batch 8, then flattens.
CURVE = {1: 10.0, 2: 16.0, 4: 21.0, 8: 23.5, 16: 24.0, 32: 23.0}


def test_each_value_follows_its_rule():
    params = suggest_batching(CURVE, single_latency_ms=95.0, cores=2)
    # 8 is the smallest batch within 90% of the peak (24.0 * 0.9 = 21.6 > 21.0).
    assert params["max_batch_size"] == 8
    assert params["batch_timeout_micros"] == 95_000  # the lone request's latency
    assert params["num_batch_threads"] == 2
    assert params["max_enqueued_batches"] == 3  # ceil(1 s * 24 img/s / 8)


def test_timeout_is_clamped_and_the_queue_holds_at_least_one_batch_per_thread():
    fast = suggest_batching({1: 2000.0, 4: 7000.0}, single_latency_ms=0.3, cores=16)
    assert fast["batch_timeout_micros"] == 1_000
    assert fast["max_enqueued_batches"] == 1750  # ceil(7000 / 4)
    slow = suggest_batching({1: 0.5, 2: 0.9}, single_latency_ms=2000.0, cores=4)
    assert slow["batch_timeout_micros"] == 100_000
    assert slow["max_enqueued_batches"] == 4


def test_text_proto_round_trips_and_keeps_the_curve_in_comments():
    params = suggest_batching(CURVE, single_latency_ms=95.0, cores=2)
    text = batching_parameters_text(params, CURVE, "a test")
    assert parse_batching_parameters(text) == params
    assert list(parse_batching_parameters(text)) == list(FIELDS)
    assert "max_batch_size { value: 8 }" in text.splitlines()
    assert "# Measured images/s by batch size: 1: 10.0, 2: 16.0" in text


@pytest.mark.parametrize(
    "curve, latency, cores",
    [({}, 10.0, 1), ({1: 0.0}, 10.0, 1), ({1: 5.0}, 0.0, 1), ({1: 5.0}, 1.0, 0)],
)
def test_bad_measurements_name_the_parameter(curve, latency, cores):
    with pytest.raises(ParameterError) as error:
        suggest_batching(curve, single_latency_ms=latency, cores=cores)
    assert set(error.value.params) & {"throughput", "single_latency_ms", "cores"}
