"""What a command does before TensorFlow loads: quiet its C++ start-up lines.

``python -m keras_art.<command>`` imports the ``keras_art`` package (and with it Keras
and TensorFlow) before the command's own module runs, so `keras_art.cli` is too late
to keep "All log messages before absl::InitializeLog()", oneDNN and
``cpu_feature_guard`` lines off a one-line error. ``keras_art/__init__`` calls
`quiet_tensorflow_for_commands` first; it acts only for the project's commands
(``python -m keras_art.*``, ``tuning.*``, ``data_scripts.*`` and the ``keras-art-*``
console scripts), never for a notebook or a test that imports the library, and only
while TensorFlow is not yet loaded. A user's own ``TF_CPP_MIN_LOG_LEVEL`` wins.

Why the stderr filter and not only the variable: TensorFlow 2.21 honours
``TF_CPP_MIN_LOG_LEVEL`` only when the process starts with it (checked: set from
Python before ``import tensorflow`` it still prints the lines), so the variable is
set for child processes and the import itself runs with file descriptor 2 captured;
what it printed goes back to stderr less the INFO/WARNING start-up lines.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from pathlib import Path

TF_LOG_LEVEL = "2"  # warnings and info off, errors shown
CONSOLE_SCRIPT_PREFIX = "keras-art-"
COMMAND_PACKAGES = ("keras_art", "tuning", "data_scripts")


def started_as_command(argv: list[str] | None = None) -> bool:
    """True while a project command is starting. ``python -m keras_art.x`` imports
    this package while ``sys.argv[0]`` is still ``"-m"``; ``python -m tuning.x`` or
    ``data_scripts.x`` import it from the module itself, when ``sys.argv[0]`` is
    already that module's file (beside this package); a console script shows its
    own name."""
    argv = sys.argv if argv is None else argv
    if not argv:
        return False
    first = argv[0]
    if first == "-m" or Path(first).name.startswith(CONSOLE_SCRIPT_PREFIX):
        return True
    root = Path(__file__).resolve().parent.parent
    try:
        script = Path(first).resolve()
    except OSError:
        return False
    return any(script.is_relative_to(root / pkg) for pkg in COMMAND_PACKAGES)


# absl's INFO/WARNING lines ("I0000 00:00:... port.cc:153] ..."), its banner, and the
# cpu_feature_guard line's continuation; errors (E..., F...) pass through.
_NOISE = re.compile(
    r"^(?:[IW]\d{4} \S+\s+\d+ \S+:\d+\] .*"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called.*"
    r"|To enable the following instructions: .*)$"
)


def without_startup_noise(text: str) -> str:
    """``text`` less TensorFlow's INFO/WARNING start-up lines."""
    kept = [line for line in text.splitlines(True) if not _NOISE.match(line.rstrip())]
    return "".join(kept)


@contextlib.contextmanager
def stderr_filtered():
    """Capture file descriptor 2 (C++ writes there, past Python's ``sys.stderr``);
    on exit write it back less the start-up noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            rest = without_startup_noise(captured.read().decode(errors="replace"))
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()


def quiet_tensorflow_for_commands() -> None:
    if "tensorflow" in sys.modules or "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    if not started_as_command():
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = TF_LOG_LEVEL  # child processes start with it
    with stderr_filtered():
        import tensorflow  # noqa: F401
