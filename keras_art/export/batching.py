"""TF Serving batching parameters from a measured throughput-vs-batch-size curve.

TF Serving batches concurrent requests when started with ``--enable_batching
--batching_parameters_file=FILE``; FILE is a text-format ``BatchingParameters`` proto.
TF Serving's batching guide leaves the values to the user ("a function of your
workload and system"); `suggest_batching` turns ``bench serve``'s measurements into
a starting point, each value with its reason:

- ``max_batch_size``: the smallest measured batch size whose throughput is within
  `PEAK_FRACTION` of the best one. Larger batches add waiting for little gain.
- ``num_batch_threads``: the cores the benchmark ran on (the guide's advice for
  CPU serving; on a GPU host the batches queue for one device and a few threads do).
- ``batch_timeout_micros``: the measured single-image latency, within
  [`MIN_TIMEOUT_US`, `MAX_TIMEOUT_US`]: a request that finds no company waits at
  most about its own compute time, so batching never more than doubles a lone
  request's latency.
- ``max_enqueued_batches``: about one second of work at the peak throughput (at
  least ``num_batch_threads``): beyond that, requests fail fast (UNAVAILABLE) so a
  load balancer can send them elsewhere instead of queueing for seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

from keras_art.errors import ParameterError

BATCHING_FILE = "batching_parameters.txt"
PEAK_FRACTION = 0.9
MIN_TIMEOUT_US = 1_000  # the guide: "slightly above zero, e.g. 1 millisecond"
MAX_TIMEOUT_US = 100_000
QUEUE_SECONDS = 1.0
FIELDS = (
    "max_batch_size",
    "batch_timeout_micros",
    "num_batch_threads",
    "max_enqueued_batches",
)


def suggest_batching(
    throughput: Mapping[int, float], single_latency_ms: float, cores: int
) -> dict[str, int]:
    """The four parameters of the module docstring.

    Args:
        throughput: images per second by batch size (``bench serve``'s curve).
        single_latency_ms: p50 latency of one single-image request.
        cores: CPU cores the server runs on.
    """
    if not throughput or any(v <= 0 for v in throughput.values()):
        raise ParameterError(
            f"{{throughput}} needs a positive images/s per batch size. Received: "
            f"{dict(throughput)}"
        )
    if single_latency_ms <= 0 or cores < 1:
        raise ParameterError(
            f"{{single_latency_ms}} ({single_latency_ms}) must be positive and "
            f"{{cores}} ({cores}) at least 1."
        )
    peak = max(throughput.values())
    batch = min(b for b, v in throughput.items() if v >= PEAK_FRACTION * peak)
    timeout = round(single_latency_ms * 1000)
    queue = math.ceil(QUEUE_SECONDS * peak / batch)
    return {
        "max_batch_size": int(batch),
        "batch_timeout_micros": int(min(max(timeout, MIN_TIMEOUT_US), MAX_TIMEOUT_US)),
        "num_batch_threads": int(cores),
        "max_enqueued_batches": max(int(cores), queue),
    }


def batching_parameters_text(
    params: Mapping[str, int], throughput: Mapping[int, float], source: str
) -> str:
    """``params`` as TF Serving's text-format ``BatchingParameters``, with the curve
    they came from in ``#`` comments (the text format's comment syntax)."""
    curve = ", ".join(f"{b}: {v:.1f}" for b, v in sorted(throughput.items()))
    lines = [
        f"# Suggested by {source} on {time.strftime('%Y-%m-%d')}; see",
        "# keras_art/export/batching.py for the rule behind each value.",
        f"# Measured images/s by batch size: {curve}",
    ]
    lines += [f"{name} {{ value: {int(params[name])} }}" for name in FIELDS]
    return "\n".join(lines) + "\n"


def parse_batching_parameters(text: str) -> dict[str, int]:
    """The ``name { value: N }`` lines of a batching file (for checks and tests)."""
    out = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, rest = line.partition("{")
        value = rest.replace("}", "").split(":", 1)[1]
        out[name.strip()] = int(value)
    return out
