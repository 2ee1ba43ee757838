"""What the running process uses and runs on: peak memory, library versions."""

from __future__ import annotations

import platform
import resource
import sys


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in bytes on macOS and in KiB on Linux.
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def versions() -> dict[str, str]:
    """The versions a result depends on (for summary.json and benchmark JSON)."""
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_art

    return {
        "keras_art": keras_art.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }
