"""A warning when training waits too long for its next batch.

The wait for a batch happens inside TensorFlow (an iterator's C++ ``next``), where
no timeout can be set: a tf.data service whose worker died and never came back,
a network filesystem that hangs, a stuck reader. `StallWatch` is a daemon thread
that says so while it happens, so that a stalled run is not a silent one. It never
stops the run (a slow first batch, a restarted worker, are worth waiting for).
"""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger(__name__)

# Seconds without a batch before the first warning, then between warnings.
DEFAULT_STALL_SECONDS = 120.0


class StallWatch:
    """``with StallWatch(hint) as watch:`` around a loop that calls ``watch.tick()``
    after each batch; a warning (naming ``hint``) every ``seconds`` without one."""

    def __init__(self, hint: str = "", seconds: float = DEFAULT_STALL_SECONDS):
        self.hint = hint
        self.seconds = float(seconds)
        self.warnings = 0
        self._last = time.monotonic()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> None:
        self._last = time.monotonic()

    def __enter__(self) -> StallWatch:
        self.tick()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _watch(self) -> None:
        warned = self._last  # this stall's latest warning, or its start
        while not self._done.wait(min(self.seconds / 4, 5.0)):
            now = time.monotonic()
            # ``seconds`` since the later of the last batch and the last warning.
            if now - max(self._last, warned) >= self.seconds:
                warned = now
                self.warnings += 1
                logger.warning(
                    "No training batch for %.0f s: the input may be stalled (or a "
                    "first step still compiling).%s",
                    now - self._last,
                    f" {self.hint}" if self.hint else "",
                )
