"""A worker's link to the chief of a distributed search: KerasTuner's
``OracleClient`` (which the tuner builds itself from the environment, see
`tuning.cluster`), made to wait between IDLE answers and to give up on a chief that
has stopped answering.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from keras_tuner.engine.trial import TrialStatus


class PatientClient:
    """``client`` (a tuner's ``OracleClient``) waiting ``poll`` seconds after an
    IDLE answer: KerasTuner's worker loop asks again at once, which spins on the
    chief while it waits for a running trial (hyperband, grid, a trial that may be
    retried)."""

    def __init__(self, client, *, poll: float):
        self._client = client
        self._poll = poll

    def create_trial(self, tuner_id: str):
        trial = self._client.create_trial(tuner_id)
        if trial.status == TrialStatus.IDLE:
            time.sleep(self._poll)
        return trial

    def __getattr__(self, name):
        return getattr(self._client, name)


@contextlib.contextmanager
def client_timeout(seconds: float) -> Iterator[None]:
    """Every call to the chief fails after ``seconds`` without an answer, instead
    of KerasTuner's hour (its module constant; no parameter reaches it)."""
    from keras_tuner.src.distribute import oracle_client

    old = oracle_client.TIMEOUT
    oracle_client.TIMEOUT = seconds
    try:
        yield
    finally:
        oracle_client.TIMEOUT = old
