"""Shared plumbing for the ``python -m keras_art.<command>`` entry points.

Every command is a thin ``main(argv=None) -> int`` around a library function of the
same name; this module turns user mistakes into one stderr line and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from keras_art.errors import UserError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports bad flags as a `UserError` (one line, exit 2)."""

    def error(self, message):  # noqa: D102 - argparse API
        raise UserError(f"{self.prog}: {message}. Run with --help for the options.")


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up chatter; call before importing TF."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def run_command(fn: Callable[[], int | None]) -> int:
    """Run ``fn``; map `UserError` to exit 2 and a single line on stderr."""
    try:
        code = fn()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return EXIT_OK if code is None else int(code)
