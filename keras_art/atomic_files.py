"""Atomic writes: a reader never sees a half-written artifact (and `to_builtin`, the
JSON conversion of numpy values they write with). Reading and checking what a user
passed is `keras_art.user_input`'s job.

Every artifact is written through one of two primitives: `atomic_path` (one file:
a temp file beside it, fsynced, renamed over it) and `atomic_dir` (a folder: a
staging folder beside it, renamed into place). A crash leaves at most a hidden
``.<name>.<random>.tmp`` (or ``.old``) entry beside the target, which no reader
takes for the artifact (`is_leftover`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

STAGING_SUFFIX = ".tmp"  # a file or folder being written
OLD_SUFFIX = ".old"  # a folder being replaced, removed once the new one is in place


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike, suffix: str = STAGING_SUFFIX
) -> Iterator[Path]:
    """A temp file path beside ``path`` to write (by any writer: ``model.save``, a
    ``TFRecordWriter``); on success it is fsynced and renamed over ``path``, on
    failure removed. ``suffix`` ends the temp name (``".keras"`` where the writer
    insists on one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        # mkstemp creates 0600; an artifact gets what a plain open() would give.
        os.chmod(tmp, 0o666 & ~umask())
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """A fresh staging folder beside ``path`` to fill; on success renamed to
    ``path``, on failure removed. Readers see the old folder or the new one, never
    half of one.

    ``replace``: an existing ``path`` is renamed aside first and removed once the
    new folder is in place. With ``replace=False`` the rename onto an existing
    non-empty folder fails with `OSError` (the staging folder is removed), so of two
    processes publishing the same folder the first wins and the other can tell."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(
            prefix=f".{path.name}.", suffix=STAGING_SUFFIX, dir=path.parent
        )
    )
    try:
        os.chmod(staging, 0o777 & ~umask())  # mkdtemp's 0700 would hide it
        yield staging
        _fsync_dir(staging)
        old = staging.with_name(staging.name[: -len(STAGING_SUFFIX)] + OLD_SUFFIX)
        moved = False
        if replace and path.exists():
            os.replace(path, old)
            moved = True
        try:
            os.rename(staging, path)
        except BaseException:
            if moved:
                os.replace(old, path)  # put the old folder back
            raise
        if moved:
            shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(path.parent)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def is_leftover(path: str | os.PathLike) -> bool:
    """True for what a stopped `atomic_path` / `atomic_dir` left: a hidden name
    ending in ``.tmp`` or ``.old``."""
    name = Path(path).name
    return name.startswith(".") and name.endswith((STAGING_SUFFIX, OLD_SUFFIX))


def _fsync_dir(path: Path) -> None:
    """Make a folder's entries durable (where the platform can open a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a temp file beside ``path``, fsync, then rename over it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, default=to_builtin) + "\n")


def to_builtin(obj: Any) -> Any:
    """Plain Python for JSON/CSV: numpy scalars and arrays (ints stay ints), sets,
    tuples and paths; other plain values pass through, anything else raises."""
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def umask() -> int:
    """The process's file-creation mask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
