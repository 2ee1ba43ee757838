"""Benchmarks behind ``python -m keras_art.bench <name>``.

Each benchmark is one module here, ``keras_art/benchmarks/<name>.py`` (``-`` in the
command name becomes ``_``), that defines::

    NAME = "train-step"                      # the subcommand
    HELP = "one line for --help"
    def add_arguments(parser): ...           # its flags (besides --json)
    def run(args) -> dict: ...               # the result, written as JSON

`registry` discovers those modules, so adding a benchmark touches no other file.
Modules must not import TensorFlow at import time. Shared helpers (per-phase
peak-memory sampling, progress lines) live here; the process-wide peak and the
versions come from `keras_art.runtime_info`, the JSON writer from
`keras_art.atomic_files`.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import threading
import time
from collections.abc import Callable

BENCHMARKS: dict[str, tuple[Callable, Callable, str]] = {}

logger = logging.getLogger(__name__)


def registry() -> dict[str, tuple[Callable, Callable, str]]:
    """name -> (add_arguments, run, help) for every module in this package."""
    if not BENCHMARKS:
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if info.name.startswith("_"):
                continue
            mod = importlib.import_module(f"{__name__}.{info.name}")
            if hasattr(mod, "add_arguments") and hasattr(mod, "run"):
                name = getattr(mod, "NAME", info.name.replace("_", "-"))
                BENCHMARKS[name] = (
                    mod.add_arguments,
                    mod.run,
                    getattr(mod, "HELP", ""),
                )
    return BENCHMARKS


def progress(message: str) -> None:
    """One ``[bench HH:MM:SS] message`` progress line, logged at INFO.

    The bench CLI shows INFO lines on stderr, so stdout stays clean for the JSON.
    """
    logger.info("[bench %s] %s", time.strftime("%H:%M:%S"), message)


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS / Windows
        return os.cpu_count() or 1


class PeakRSS:
    """Samples this process's resident memory in a thread; ``with`` one phase.

    ``peak_mb`` is the highest RSS seen during the phase (sampling every
    ``interval`` s). For the process's peak so far use
    `keras_art.runtime_info.peak_rss_mb`.
    """

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        import psutil

        proc = psutil.Process()
        while True:
            self.peak_mb = max(self.peak_mb, proc.memory_info().rss / 2**20)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PeakRSS:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
