"""Who a search process is in a distributed search: the chief (it runs KerasTuner's
oracle) or a worker (it runs trials), and where the chief listens.

KerasTuner decides the role from three environment variables (``KERASTUNER_TUNER_ID``,
``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT``; any id containing "chief" is the
chief). `resolve_cluster` takes them from the search's ``chief`` and ``tuner_id``
parameters or, when neither is given, from the environment; `cluster_env` sets them
while the tuner is built and runs.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from keras_art.errors import ParameterError, UserError
from keras_art.user_input import parse_host_port

ENV_TUNER_ID = "KERASTUNER_TUNER_ID"
ENV_HOST = "KERASTUNER_ORACLE_IP"
ENV_PORT = "KERASTUNER_ORACLE_PORT"
CHIEF_ID = "chief"
_TUNER_ID = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Cluster:
    """The chief's address and this process's tuner id."""

    host: str
    port: int
    tuner_id: str

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def is_chief(self) -> bool:
        return self.tuner_id == CHIEF_ID


def resolve_cluster(
    chief: str | None,
    tuner_id: str | None,
    environ: Mapping[str, str] | None = None,
) -> Cluster | None:
    """The distributed set-up, or None for a search on its own.

    ``chief`` is ``HOST:PORT`` (where the chief listens and the workers connect),
    ``tuner_id`` ``chief`` or a worker's name (``tuner1``...); both or neither.
    Neither: KerasTuner's environment variables, if ``KERASTUNER_ORACLE_IP`` is set.
    """
    environ = os.environ if environ is None else environ
    if chief is None and tuner_id is None:
        return _from_env(environ)
    if chief is None or tuner_id is None:
        missing = "{chief} HOST:PORT" if chief is None else "{tuner_id} chief|tunerN"
        raise ParameterError(
            f"A distributed search needs both the chief's address and a tuner id; "
            f"give {missing} as well."
        )
    address = parse_host_port(chief)
    if address is None:
        raise ParameterError(
            f"{{chief}} {chief!r} is not HOST:PORT (e.g. 127.0.0.1:8000)."
        )
    return Cluster(*address, _checked_id(tuner_id, "{tuner_id}"))


def _from_env(environ: Mapping[str, str]) -> Cluster | None:
    if ENV_HOST not in environ:
        return None
    missing = [v for v in (ENV_PORT, ENV_TUNER_ID) if not environ.get(v)]
    port = environ.get(ENV_PORT, "")
    if missing or not port.isdigit():
        raise UserError(
            f"{ENV_HOST} is set, so this is a distributed search, but "
            f"{' and '.join(missing) or ENV_PORT + ' is not a port number'}"
            f"{' not set' if missing else ''}. Set all three variables, or unset "
            f"{ENV_HOST}."
        )
    return Cluster(
        environ[ENV_HOST], int(port), _checked_id(environ[ENV_TUNER_ID], ENV_TUNER_ID)
    )


def _checked_id(tuner_id: str, name: str) -> str:
    # KerasTuner takes any id containing "chief" for the chief: a worker named
    # "chief2" would start a second oracle.
    if not _TUNER_ID.fullmatch(tuner_id) or (
        CHIEF_ID in tuner_id and tuner_id != CHIEF_ID
    ):
        raise ParameterError(
            f"{name} {tuner_id!r}: use {CHIEF_ID!r} for the chief and a name of "
            f"letters, digits, '_', '-' or '.' without 'chief' for a worker "
            f"(tuner1, tuner2, ...)."
        )
    return tuner_id


@contextlib.contextmanager
def cluster_env(cluster: Cluster) -> Iterator[None]:
    """KerasTuner's three variables set to ``cluster``, and its distributed mode's
    stray output silenced (both restored afterwards)."""
    wanted = {
        ENV_TUNER_ID: cluster.tuner_id,
        ENV_HOST: cluster.host,
        ENV_PORT: str(cluster.port),
    }
    old = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        with _quiet_condition_protos():
            yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _quiet_condition_protos() -> Iterator[None]:
    # KerasTuner 1.4.8's Parent.to_proto (keras_tuner.src: no public name) prints
    # the first value of a condition each time a trial crosses the wire, a left-over
    # debug print: dozens of bare "gap" lines on the chief's and workers' output.
    # Logging keeps its own stream, so only that print is swallowed.
    from keras_tuner.src.engine.conditions import Parent

    original = Parent.to_proto

    def to_proto(self):
        with contextlib.redirect_stdout(io.StringIO()):
            return original(self)

    Parent.to_proto = to_proto
    try:
        yield
    finally:
        Parent.to_proto = original
