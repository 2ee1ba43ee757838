"""Build a cache folder exactly once, atomically, even with concurrent processes.

The folder is built under a temporary name beside its final place and renamed when
complete, so a crash leaves only a ``.tmp`` folder that is never mistaken for a
finished one. When two processes race, the first rename wins and the loser throws
its copy away and uses the winner's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from keras_art.atomic_files import atomic_dir

COMPLETE_MARKER = ".keras_art_complete"


def is_complete(folder: str | os.PathLike) -> bool:
    """True when ``folder`` was published by `build_dir_once`."""
    return (Path(folder) / COMPLETE_MARKER).is_file()


def build_dir_once(
    final: str | os.PathLike,
    build: Callable[[Path], None],
    message: str | None = None,
) -> Path:
    """Return ``final``, calling ``build(tmp_dir)`` first if it does not exist yet.

    Args:
        final: the folder to publish.
        build: writes the folder's contents into the temporary folder it is given.
        message: printed once (one line) when the folder has to be built.
    """
    final = Path(final)
    if is_complete(final):
        return final
    if message:
        print(message, flush=True)
    try:
        with atomic_dir(final, replace=False) as tmp:
            build(tmp)
            (tmp / COMPLETE_MARKER).write_text("ok\n", encoding="utf-8")
            if final.exists() and not is_complete(final):
                _discard(final)
    except OSError:
        # Another process published first (a rename onto a non-empty folder
        # fails): theirs is as good as ours.
        if not is_complete(final):
            raise
    return final


def _discard(folder: Path) -> None:
    """Move a leftover of an interrupted non-atomic copy out of the way (renamed
    first, so no reader ever sees it half-deleted), then delete it."""
    trash = folder.with_name(f".{folder.name}.{os.getpid()}.old")
    with contextlib.suppress(OSError):
        os.replace(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)
