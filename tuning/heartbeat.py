"""Worker heartbeats: how the chief of a distributed search tells a busy worker from a
dead one.

KerasTuner's oracle keeps a trial RUNNING for as long as its worker has not ended
it: a worker killed mid-trial (``kill -9``, out of memory, a lost machine) would hold
its trial forever and the chief would never finish. KerasTuner has no liveness
signal, so each worker sends one: a thread calls ``Beat`` with its tuner id on the
chief's gRPC server every few seconds while the worker lives (training or not), and
the chief (`tuning.chief`) takes back the trial of a worker it has not heard from
for ``tune.worker_timeout`` seconds.

The method is served beside KerasTuner's Oracle service on the chief's port, as a
generic handler on raw bytes: the request is the tuner id (UTF-8), the reply empty.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import grpc

SERVICE = "keras_art.tuning.Heartbeat"
METHOD = "Beat"


def heartbeat_handler(on_beat: Callable[[str], None]) -> grpc.GenericRpcHandler:
    """The chief's side: ``on_beat(tuner_id)`` for every beat received."""

    def beat(request: bytes, context) -> bytes:
        on_beat(request.decode("utf-8"))
        return b""

    return grpc.method_handlers_generic_handler(
        SERVICE, {METHOD: grpc.unary_unary_rpc_method_handler(beat)}
    )


class Heartbeat:
    """The worker's side: a daemon thread beating every ``interval`` seconds
    between `start` and `stop`.

    `start` first waits up to ``wait`` seconds for the chief to answer, and raises
    `grpc.RpcError` when it does not (wrong address, chief not started, or a chief
    without this service)."""

    def __init__(self, address: str, tuner_id: str, *, interval: float):
        self.address, self.tuner_id, self.interval = address, tuner_id, interval
        self._stop = threading.Event()
        self._channel = grpc.insecure_channel(address)
        self._beat = self._channel.unary_unary(f"/{SERVICE}/{METHOD}")
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{tuner_id}", daemon=True
        )

    def start(self, *, wait: float) -> Heartbeat:
        try:
            self._send(wait_for_ready=True, timeout=wait)
        except grpc.RpcError:
            self._channel.close()
            raise
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 5)
        self._channel.close()

    def _send(self, **kwargs) -> None:
        self._beat(self.tuner_id.encode("utf-8"), **kwargs)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            # A missed beat is no error: the chief may be restarting; the worker's
            # own calls to it wait (up to tune.idle_timeout) and fail the worker if
            # it never comes back.
            with contextlib.suppress(grpc.RpcError):
                self._send(timeout=self.interval)
