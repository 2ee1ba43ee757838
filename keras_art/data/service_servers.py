"""The tf.data service's servers: one dispatcher and any number of workers.

Thin wrappers over ``tf.data.experimental.service.DispatchServer`` and
``WorkerServer`` with the settings keras_art's training pipeline relies on
(`keras_art.data.pipeline.service` says what runs where and what happens when a
worker dies). The command is ``python -m keras_art.data_service``.

TensorFlow's servers listen on every interface (0.0.0.0; TF 2.21 has no setting to
bind one address): run them inside the cluster's private network.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

from keras_art.errors import ParameterError
from keras_art.user_input import parse_host_port

# Seconds without a heartbeat before the dispatcher gives a worker up and the
# trainer reads on from the others. TensorFlow's defaults (workers heartbeat every
# 30 s; the dispatcher looks for missing ones every 10 min) leave a trainer waiting
# on a dead worker for minutes.
DEFAULT_WORKER_TIMEOUT = 30.0
# How often a worker heartbeats (it must beat several times per worker timeout).
DEFAULT_HEARTBEAT = 5.0


def check_free_port(port) -> int:
    """``port`` (0: any free one) if it is a TCP port nothing listens on. gRPC
    binds with SO_REUSEPORT, so a second server on a taken port would start and
    share its connections with the first: a plain bind finds out first."""
    if not isinstance(port, int) or not 0 <= port < 65536:
        raise ParameterError(
            f"{{port}} {port!r}: not a TCP port. Pass a number from 1 to 65535."
        )
    if port == 0:
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # A port a stopped server left in TIME_WAIT is free to take again.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError as e:
            raise ParameterError(
                f"{{port}} {port}: already in use ({e.strerror}). Pick a free port, "
                "or stop the server on it."
            ) from None
    return port


def start_dispatcher(
    port: int,
    *,
    work_dir: str | None = None,
    worker_timeout: float = DEFAULT_WORKER_TIMEOUT,
):
    """A running dispatcher on ``port``. With ``work_dir`` it journals its state
    there (fault-tolerant mode): restarted on the same port with the same folder,
    it recovers the registered datasets and jobs of a training run in progress."""
    check_free_port(port)
    if worker_timeout <= 0:
        raise ParameterError(
            f"{{worker_timeout}} {worker_timeout}: must be above 0 seconds."
        )
    import tensorflow as tf

    if work_dir is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
    config = tf.data.experimental.service.DispatcherConfig(
        port=port,
        work_dir=None if work_dir is None else str(work_dir),
        fault_tolerant_mode=work_dir is not None,
        worker_timeout_ms=int(worker_timeout * 1000),
        # Missing workers are looked for on this period (TF: every 10 minutes).
        job_gc_check_interval_ms=int(max(0.5, min(worker_timeout / 3, 60.0)) * 1000),
    )
    return _started(lambda: tf.data.experimental.service.DispatchServer(config), port)


def start_worker(
    dispatcher: str, *, port: int = 0, host: str, heartbeat: float = DEFAULT_HEARTBEAT
):
    """A running worker of the dispatcher at ``dispatcher`` (``HOST:PORT``) on
    ``port`` (0: any free one). ``host``: the name the trainer reaches this
    machine by; the dispatcher hands it to the trainer. ``heartbeat``: seconds
    between the worker's heartbeats (well under the dispatcher's worker timeout)."""
    if parse_host_port(dispatcher) is None:
        raise ParameterError(
            f"{{dispatcher}} {dispatcher!r}: not HOST:PORT. Pass the dispatcher's host "
            "and port, e.g. 10.0.0.5:5050."
        )
    check_free_port(port)
    if heartbeat <= 0:
        raise ParameterError(f"{{heartbeat}} {heartbeat}: must be above 0 seconds.")
    import tensorflow as tf

    config = tf.data.experimental.service.WorkerConfig(
        dispatcher_address=dispatcher,
        worker_address=f"{host}:%port%",
        port=port,
        heartbeat_interval_ms=int(heartbeat * 1000),
    )
    return _started(lambda: tf.data.experimental.service.WorkerServer(config), port)


def _started(make: Callable, port: int):
    import tensorflow as tf

    try:
        return make()
    except (tf.errors.OpError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ParameterError(
            f"{{port}} {port}: the server did not start ({first}). Pick a free port."
        ) from None


def server_port(server) -> int:
    """The port a started server listens on: a dispatcher's ``target`` is
    grpc://localhost:P; a worker has only the private ``_address`` (HOST:P)."""
    address = getattr(server, "target", None) or server._address
    return int(address.rsplit(":", 1)[1])


def serve(stop_after: float | None) -> None:
    """Keep this process (and so its servers) alive: until Ctrl-C / SIGTERM, or
    for ``stop_after`` seconds when given (a bounded run: tests, trials)."""
    try:
        while True:
            time.sleep(stop_after or 3600)
            if stop_after:
                return
    except KeyboardInterrupt:
        pass
