"""A tf.data service cluster on this machine: a dispatcher and N workers, each a
``python -m keras_art.data_service`` subprocess on 127.0.0.1.

For ``bench pipeline --data-service N`` (the workers' CPU is not the trainer
process's, which is the point) and the cluster tests. Every server is started with
``--stop-after``, so none outlives ``lifetime`` seconds even if this process dies.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time

from keras_art.errors import UserError


def free_ports(n: int) -> list[int]:
    """``n`` TCP ports on 127.0.0.1 that were free a moment ago."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class LocalCluster:
    """A dispatcher and ``workers`` workers; a context manager that stops them.

    Args:
        workers: how many workers.
        lifetime: seconds each server lives at most (``--stop-after``).
        worker_timeout, heartbeat: the dispatcher's ``--worker-timeout`` and the
            workers' ``--heartbeat`` (short, so a killed worker is noticed fast).
        ready_timeout: seconds to wait for each server's first line.
    """

    def __init__(
        self,
        workers: int,
        *,
        lifetime: float = 600.0,
        worker_timeout: float = 3.0,
        heartbeat: float = 0.5,
        ready_timeout: float = 120.0,
    ):
        self.lifetime = lifetime
        self.heartbeat = heartbeat
        self.ready_timeout = ready_timeout
        self.port, *self.worker_ports = free_ports(workers + 1)
        self.dispatcher = self._server(
            "dispatcher", "--port", str(self.port),
            "--worker-timeout", str(worker_timeout),
        )  # fmt: skip
        self.workers: list[subprocess.Popen] = []
        try:
            self._ready(self.dispatcher, "dispatcher listening")
            self.workers = [self._worker(i) for i in range(workers)]
            for w in self.workers:
                self._ready(w, "serving dispatcher")
        except BaseException:
            self.stop()
            raise

    @property
    def address(self) -> str:
        """For ``input.data_service``."""
        return f"grpc://127.0.0.1:{self.port}"

    def restart_worker(self, i: int) -> None:
        """Kill worker ``i`` and start it again on its port (as a supervisor would)."""
        self.workers[i].kill()
        self.workers[i].wait(timeout=30)
        self.workers[i].log.close()
        self.workers[i] = self._worker(i)
        self._ready(self.workers[i], "serving dispatcher")

    def stop(self) -> None:
        for p in [self.dispatcher, *self.workers]:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
            p.log.close()

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _worker(self, i: int) -> subprocess.Popen:
        return self._server(
            "worker", "--dispatcher", f"127.0.0.1:{self.port}",
            "--port", str(self.worker_ports[i]), "--host", "127.0.0.1",
            "--heartbeat", str(self.heartbeat),
        )  # fmt: skip

    def _server(self, *args: str) -> subprocess.Popen:
        argv = [sys.executable, "-m", "keras_art.data_service", *args]
        argv += ["--stop-after", str(self.lifetime)]
        # The servers' TF start-up lines are filtered by the command itself.
        env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
        # stderr to a file: a pipe nobody reads would block a chatty server.
        log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by stop()
        proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=log, text=True
        )
        proc.log = log
        return proc

    def _ready(self, proc: subprocess.Popen, words: str) -> None:
        """Wait (bounded) for the server's first line."""
        deadline = time.monotonic() + self.ready_timeout
        line = proc.stdout.readline()  # the first line comes, or EOF when it dies
        if words not in line or time.monotonic() > deadline:
            proc.kill()
            proc.wait(timeout=30)
            proc.log.seek(0)
            err = proc.log.read().strip().splitlines()
            raise UserError(
                f"A local tf.data server did not start: {err[-1] if err else line!r}"
            )
