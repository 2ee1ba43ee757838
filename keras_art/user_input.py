"""What a user passed to a library function, read and checked: a JSON or YAML file,
an output folder, a positive integer. Each failure is a `ParameterError` naming the
caller's parameter (``param``), so commands render it with their flag.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from keras_art.errors import ParameterError


def check_positive_int(value, param: str) -> int:
    """``value`` when it is a positive integer; else a `ParameterError` naming
    ``param`` (the caller's parameter, e.g. ``top_k``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParameterError(f"{{{param}}} {value!r}: pass a positive integer.")
    return value


def read_json_or_yaml(path: str | os.PathLike, param: str) -> Any:
    """The parsed content of a ``.json`` or ``.yaml``/``.yml`` file (empty YAML is
    ``{}``); a parse error is one `ParameterError` naming ``param``, the caller's
    parameter that gave the file."""
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


def parse_host_port(text) -> tuple[str, int] | None:
    """``(host, port)`` of a ``HOST:PORT`` string (port 1-65535, a host without
    spaces or slashes), or None when ``text`` is not one."""
    host, _, port = str(text).rpartition(":")
    if not host or any(c.isspace() or c == "/" for c in host) or not port.isdigit():
        return None
    return (host, int(port)) if 0 < int(port) < 65536 else None
