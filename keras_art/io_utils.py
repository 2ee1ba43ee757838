"""File helpers: atomic writes (a reader never sees a half-written artifact), JSON
conversion of numpy values, and reading a JSON or YAML file a user passed."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a temp file beside ``path``, fsync, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; an artifact gets what a plain open() would give.
        os.chmod(tmp, 0o666 & ~umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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


def read_json_or_yaml(path: str | os.PathLike, param: str) -> Any:
    """The parsed content of a ``.json`` or ``.yaml``/``.yml`` file (empty YAML is
    ``{}``); a parse error is one `ParameterError` naming ``param``, the caller's
    parameter that gave the file."""
    from keras_art.errors import ParameterError

    p = Path(path)
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text) or {}
        return json.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parse error is the user's file
        raise ParameterError(
            f"{{{param}}} {path}: cannot parse ({exc}). Fix the file."
        ) from None


def check_output_folder(path: str | os.PathLike, param: str) -> Path:
    """``path`` as a `Path` when it is a folder or can be made one (nothing on the way
    is a file); else a `ParameterError` naming ``param``. Call it before any work, so
    a bad output path costs nothing and writes nothing."""
    from keras_art.errors import ParameterError

    folder = Path(path).expanduser()
    for existing in (folder, *folder.parents):
        if existing.exists():
            if not existing.is_dir():
                where = "" if existing == folder else f" ({existing} is a file)"
                raise ParameterError(
                    f"{{{param}}} {folder}: not a folder{where}. Pass a folder; it "
                    "is created if missing."
                )
            break
    return folder
