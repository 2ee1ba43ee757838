"""The chief of a distributed search: KerasTuner's oracle served to the workers over
gRPC, the result files rewritten as trials end, a lost worker's trial given back,
and an end.

KerasTuner's own chief loop (``oracle_chief.start_server``, which ``Tuner.search``
runs for the tuner id "chief") serves its Oracle service and returns only once every
worker that ever asked for a trial has been told to stop and no trial is running: a
worker killed mid-trial keeps its trial RUNNING and the chief alive forever, and the
files a search writes after each trial are never written (no tuner hook runs on the
chief). So `serve` serves the same servicer (KerasTuner's ``OracleServicer``, what its
workers' ``OracleClient`` speaks; not public API, hence `add_oracle_service`) plus
the workers' heartbeats (`tuning.heartbeat`) on one port, around a `ChiefOracle`:

- every oracle call (gRPC threads, the watch loop) runs under one lock;
- after each ended trial, ``on_end(trial_id)`` (the results, a snapshot, one line);
- a worker silent for ``worker_timeout`` seconds loses its trial: it is ended as
  INVALID, so KerasTuner's retry (``tune.max_retries``) queues it for the next free
  worker, or records it as FAILED with the reason once the retries are spent (a
  worker restarted with the same id before that gets its own trial back, as
  KerasTuner's ``create_trial`` gives a tuner id its ongoing trial);
- a worker is never told to stop while another worker's trial runs (it may come
  back): it is answered IDLE and asks again; a result that comes in for a trial
  already taken back is ignored (each trial is recorded once);
- `serve` returns when the oracle has no trial left and every worker in touch has
  been told so, and raises `UserError` after ``idle_timeout`` seconds with no
  worker in touch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path

import grpc
from keras_tuner.engine.trial import Trial, TrialStatus

from keras_art.errors import ParameterError, UserError
from tuning.heartbeat import heartbeat_handler

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5


class ChiefOracle:
    """``oracle`` as the chief serves it (see module doc); any other attribute is
    the oracle's, its methods called under the lock."""

    def __init__(
        self,
        oracle,
        *,
        project: Path,
        on_end: Callable[[str], None],
        worker_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._oracle = oracle
        self._project = Path(project)
        self._on_end = on_end
        self.worker_timeout = worker_timeout
        self._clock = clock
        self.lock = threading.RLock()
        self.started = clock()
        self.last_seen: dict[str, float] = {}  # tuner id -> last beat or call
        self.released: set[str] = set()  # the workers told to stop
        self.stopped = False  # the oracle has handed out its last trial
        self.failure: str | None = None  # why the oracle stopped the search early

    def __getattr__(self, name):
        attr = getattr(self._oracle, name)
        if not callable(attr):
            return attr

        def locked(*args, **kwargs):
            with self.lock:
                return attr(*args, **kwargs)

        return locked

    def beat(self, tuner_id: str) -> None:
        with self.lock:
            self.last_seen[tuner_id] = self._clock()

    def create_trial(self, tuner_id: str):
        with self.lock:
            self.last_seen[tuner_id] = self._clock()
            if self.failure is None:
                trial = self._oracle.create_trial(tuner_id)
                if trial.status != TrialStatus.STOPPED:
                    return trial
                if self._oracle.ongoing_trials:
                    return Trial(self._oracle.get_space(), status=TrialStatus.IDLE)
                self.stopped = True
            self.released.add(tuner_id)
            return Trial(self._oracle.get_space(), status=TrialStatus.STOPPED)

    def end_trial(self, trial) -> None:
        with self.lock:
            running = {t.trial_id for t in self._oracle.ongoing_trials.values()}
            if trial.trial_id not in running:
                # Its worker had been taken for lost and the trial ended already
                # (or given to another worker, whose result counts then).
                logger.info(
                    "search: trial %s was given up on; the late result is ignored",
                    trial.trial_id,
                )
                return
            try:
                self._oracle.end_trial(trial)
            except RuntimeError as exc:  # tune.max_failed_trials failures in a row
                self._stop_early(trial.trial_id, str(exc))
            self._on_end(trial.trial_id)

    def _stop_early(self, trial_id: str, reason: str) -> None:
        """What KerasTuner's end_trial skips when it raises: the trial leaves the
        running ones and its state is saved; no trial is handed out any more."""
        self.failure = reason.splitlines()[0]
        ongoing = self._oracle.ongoing_trials
        for tuner_id in [t for t, tr in ongoing.items() if tr.trial_id == trial_id]:
            ongoing.pop(tuner_id)
        trial = self._oracle.trials[trial_id]
        trial.save(str(self._project / f"trial_{trial_id}" / "trial.json"))
        self._oracle.save()

    def take_back_silent(self) -> list[str]:
        """End the trial of every worker not heard from for ``worker_timeout``
        seconds (retried or failed, see module doc); returns their tuner ids."""
        now = self._clock()
        lost = []
        with self.lock:
            for tuner_id, trial in list(self._oracle.ongoing_trials.items()):
                silent = now - self.last_seen.get(tuner_id, self.started)
                if silent <= self.worker_timeout:
                    continue
                trial.status = TrialStatus.INVALID
                trial.message = (
                    f"worker {tuner_id} went silent for {silent:.0f} s (stopped, "
                    f"killed or cut off) while running this trial"
                )
                self.end_trial(trial)
                self.last_seen.pop(tuner_id, None)
                lost.append(tuner_id)
                logger.info(
                    "search: %s; trial %s %s",
                    trial.message,
                    trial.trial_id,
                    "is recorded as failed"
                    if trial.status == TrialStatus.FAILED
                    else "goes to the next free worker",
                )
        return lost

    def finished(self) -> bool:
        """The oracle has no trial left, none runs, and every worker in touch
        has been told to stop (one still preparing its data is waited for)."""
        now = self._clock()
        with self.lock:
            live = {
                t for t, seen in self.last_seen.items()
                if now - seen <= self.worker_timeout
            }  # fmt: skip
            return (
                (self.stopped or self.failure is not None)
                and not self._oracle.ongoing_trials
                and live <= self.released
            )

    def quiet_for(self) -> float:
        """Seconds since any worker was last in touch (since the start if none)."""
        with self.lock:
            return self._clock() - max(self.last_seen.values(), default=self.started)


def serve(chief: ChiefOracle, address: str, *, idle_timeout: float) -> None:
    """Serve ``chief`` on ``address`` until the search is over (see module doc)."""
    # gRPC sets SO_REUSEPORT by default: a second chief on the same port would bind
    # too, and the workers' connections would be split between the two.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8), options=[("grpc.so_reuseport", 0)]
    )
    add_oracle_service(server, chief)
    server.add_generic_rpc_handlers((heartbeat_handler(chief.beat),))
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:  # grpc raises where older versions returned 0
        bound = 0
    if not bound:
        raise ParameterError(
            f"{{chief}} {address}: cannot listen there (the port is in use, or the "
            f"host is not an address of this machine)."
        )
    server.start()
    try:
        while not chief.finished():
            time.sleep(POLL_SECONDS)
            chief.take_back_silent()
            if chief.quiet_for() > idle_timeout and not chief.finished():
                raise UserError(
                    f"No worker has been in touch with the chief at {address} for "
                    f"{idle_timeout:.0f} s, and the search is not over. Start "
                    f"workers, then run the chief again: it goes on from here."
                )
    finally:
        server.stop(grace=2).wait(timeout=10)


def add_oracle_service(server: grpc.Server, oracle) -> None:
    """KerasTuner's Oracle gRPC service for ``oracle`` on ``server``."""
    # keras_tuner.src: KerasTuner has no public API for its chief's service; this is
    # the servicer its own chief runs (tests/tuning/test_distributed.py fails if it
    # moves).
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    protos.get_service_grpc().add_OracleServicer_to_server(
        OracleServicer(oracle), server
    )
