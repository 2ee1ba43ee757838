"""Find unusable images before training, and make odd-but-valid ones usable.

Every file is fully decoded once with Pillow (JPEGs in draft mode, a fraction of
the cost): empty, truncated, non-image, unsupported and oversized files are
excluded with a reason. Files that are valid but that ``tf.io.decode_image(...,
channels=3, expand_animations=False)`` in TF 2.21 mis-decodes or rejects are
converted once to an RGB PNG under ``<cache_dir>/converted/``.

What TF 2.21 decodes correctly, checked against Pillow (tests/data/test_validate.py):
JPEG (RGB, grayscale, CMYK/Adobe, progressive), PNG (8/16-bit, gray, RGBA, palette),
GIF (first frame of an animation), 24/32-bit BMP, WEBP (still, lossy or lossless).
Converted: palette/1-bit BMP (TF reads palette indices as gray, or fails), animated
WEBP (TF fails with channels=3), and every format TF lacks but Pillow reads (TIFF,
AVIF, JPEG 2000, PPM, ...).

The same decode gives each usable image its perceptual hashes
(`perceptual_hash.image_hashes`), which group near-duplicates before the split.

Results are cached in ``<cache_dir>/scan_cache.json`` keyed by path, size and mtime,
so a second scan of a large dataset only stats the files.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from keras_art.atomic_files import atomic_write_bytes, atomic_write_json
from keras_art.data.catalog.perceptual_hash import HASH_DECODE_SIDE, image_hashes
from keras_art.data.sources.parquet import image_extension

MAX_PIXELS = 89_478_485  # Pillow's decompression-bomb limit
CACHE_VERSION = 2  # 2: perceptual hashes
_TF_FORMATS = {"JPEG", "MPO", "PNG", "GIF", "BMP", "WEBP"}
_UNSUPPORTED_MAGIC = (
    (b"ftypheic", "HEIC"),
    (b"ftypheix", "HEIC"),
    (b"ftypmif1", "HEIF"),
    (b"%PDF", "PDF"),
    (b"<svg", "SVG"),
    (b"<?xml", "SVG/XML"),
)


@dataclass
class ScanResult:
    """What a scan found.

    Attributes:
        files: the input paths, with converted files replaced by their PNG copy.
        ok: per input row, whether the image is usable.
        hashes: per input row, SHA-1 of the ORIGINAL file's bytes ("" when unread).
        phashes: per input row, its perceptual hashes (hex; empty when unusable).
        excluded: ``(path, reason)`` of every unusable file.
        converted: ``(original, converted_png)`` of every converted file.
        from_cache: how many rows were answered by the scan cache.
    """

    files: list[str]
    ok: list[bool]
    hashes: list[str]
    phashes: list[list[str]] = field(default_factory=list)
    excluded: list[tuple[str, str]] = field(default_factory=list)
    converted: list[tuple[str, str]] = field(default_factory=list)
    from_cache: int = 0


def scan_images(
    files: list[str],
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    progress_every: int = 5000,
    max_pixels: int = MAX_PIXELS,
) -> ScanResult:
    """Check every image in ``files`` (see the module docstring); never raises on data.

    Args:
        files: image paths.
        cache_dir: where ``scan_cache.json`` and ``converted/`` live; ``None`` = no
            cache, and files that need converting are excluded instead.
        workers: threads (default: CPU count, at most 8); Pillow releases the GIL
            while decoding.
        progress_every: print a progress line to stderr every N files (only for
            scans of more than N files).
        max_pixels: larger images are excluded as decompression bombs.
    """
    cache_dir = Path(cache_dir).expanduser() if cache_dir else None
    cache_path = cache_dir / "scan_cache.json" if cache_dir else None
    cache = _load_cache(cache_path, max_pixels)
    results, todo = _cached_results(files, cache)
    from_cache = len(files) - len(todo)

    def work(item):
        i, path, stamp = item
        res = check_image(path, max_pixels)
        res["stamp"] = stamp
        if res["status"] == "convert":
            res.update(_convert(path, cache_dir))
        return i, res

    workers = workers or min(8, os.cpu_count() or 1)
    loud = len(todo) > progress_every
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, (i, res) in enumerate(pool.map(work, todo), start=1):
            results[i] = res
            if res["stamp"] is not None:
                cache[files[i]] = res
            if loud and (done % progress_every == 0 or done == len(todo)):
                print(f"scan: {done}/{len(todo)} images checked", file=sys.stderr)
    if cache_path is not None and todo:
        atomic_write_json(
            cache_path,
            {"version": CACHE_VERSION, "max_pixels": max_pixels, "files": cache},
        )
    return _scan_result(files, results, from_cache)


def _cached_results(
    files: list[str], cache: dict
) -> tuple[list[dict | None], list[tuple[int, str, list[int] | None]]]:
    """Per row, the cache's result when the file is unchanged since (and its
    converted copy still exists), else None; and the ``(row, path, stamp)`` of the
    rows left to check."""
    results: list[dict | None] = [None] * len(files)
    todo = []
    for i, path in enumerate(files):
        stamp = _stamp(path)
        hit = cache.get(path)
        if (
            stamp is not None
            and hit is not None
            and hit["stamp"] == stamp
            and (hit["status"] != "convert" or Path(hit.get("converted", "")).is_file())
        ):
            results[i] = hit
        else:
            todo.append((i, path, stamp))
    return results, todo


def _scan_result(files: list[str], results: list[dict], from_cache: int) -> ScanResult:
    """The `ScanResult` of every row's check result."""
    out = ScanResult(files=[], ok=[], hashes=[], from_cache=from_cache)
    for path, res in zip(files, results, strict=False):
        usable = res["status"] in ("ok", "convert") and res.get("reason") is None
        out.ok.append(usable)
        out.hashes.append(res.get("sha1", ""))
        out.phashes.append(list(res.get("phash", [])) if usable else [])
        if res["status"] == "convert" and usable:
            out.files.append(res["converted"])
            out.converted.append((path, res["converted"]))
        else:
            out.files.append(path)
        if not usable:
            out.excluded.append((path, res["reason"]))
    return out


def check_image(path: str, max_pixels: int = MAX_PIXELS) -> dict:
    """``{"status": "ok"|"convert"|"bad", "reason": str|None, "sha1", "format",
    "phash"}`` (``phash``: `perceptual_hash.image_hashes`, for usable images)."""
    from PIL import Image, UnidentifiedImageError

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return _bad("missing file")
    except OSError as exc:
        return _bad(f"cannot read ({exc.strerror or exc})")
    sha1 = hashlib.sha1(data).hexdigest()
    if not data:
        return _bad("zero bytes", sha1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            fmt = image.format or "?"
            if width * height > max_pixels:
                return _bad(f"too large: {width}x{height} pixels", sha1)
            if width == 0 or height == 0:
                return _bad("zero-sized image", sha1)
            if fmt in ("JPEG", "MPO"):
                image.draft("RGB", _draft_size(width, height))
            image.load()
            animated = bool(getattr(image, "is_animated", False))
            mode = image.mode
            phash = image_hashes(_to_rgb(image))
    except Image.DecompressionBombError:
        return _bad("too large (decompression bomb)", sha1)
    except UnidentifiedImageError:
        return _bad(_identify_failure(data), sha1)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        return _bad(f"truncated or corrupt {_kind(data)}: {exc}", sha1)
    needs = fmt not in _TF_FORMATS
    needs |= fmt == "BMP" and mode not in ("RGB", "RGBA")
    needs |= fmt == "WEBP" and animated
    return {
        "status": "convert" if needs else "ok",
        "reason": None,
        "sha1": sha1,
        "format": f"{fmt}/{mode}" + ("/animated" if animated else ""),
        "phash": phash,
    }


def _draft_size(width: int, height: int) -> tuple[int, int]:
    """The size to ask a JPEG decoder for: an eighth of the image (cheap to check),
    but no smaller than hashing needs."""
    return (
        max(width // 8, min(width, HASH_DECODE_SIDE)),
        max(height // 8, min(height, HASH_DECODE_SIDE)),
    )


def _bad(reason: str, sha1: str = "") -> dict:
    return {"status": "bad", "reason": reason, "sha1": sha1, "format": None}


def _kind(data: bytes) -> str:
    ext = image_extension(data)
    return {"jpg": "JPEG", "bin": "image"}.get(ext, ext.upper())


def _identify_failure(data: bytes) -> str:
    head = data[:64]
    for magic, name in _UNSUPPORTED_MAGIC:
        if magic in head:
            return f"unsupported format ({name})"
    if head[:3] == b"\xff\xd8\xff" or head[:8] == b"\x89PNG\r\n\x1a\n":
        return f"truncated or corrupt {_kind(data)}"
    try:
        head.decode("utf-8")
        return "not an image (text)"
    except UnicodeDecodeError:
        return "not an image"


def _convert(path: str, cache_dir: Path | None) -> dict:
    """Write the first frame as an RGB PNG under ``<cache_dir>/converted/``."""
    from PIL import Image

    if cache_dir is None:
        return {"reason": "needs conversion to RGB but no cache_dir was given"}
    digest = hashlib.sha1(path.encode("utf-8", "surrogateescape")).hexdigest()[:20]
    target = cache_dir / "converted" / f"{digest}.png"
    try:
        with Image.open(path) as image:
            image.seek(0)
            rgb = _to_rgb(image)
            buffer = io.BytesIO()
            rgb.save(buffer, "PNG")
    except (OSError, ValueError) as exc:
        return {"status": "bad", "reason": f"cannot convert to RGB: {exc}"}
    atomic_write_bytes(target, buffer.getvalue())
    return {"converted": str(target)}


def _to_rgb(image):
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # Pillow's convert("RGB") clips 16-bit values at 255 instead of scaling.
        image = image.point(lambda v: v / 257).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Drop alpha and keep the stored colours, as TF's channels=3 decode does.
        return image.convert("RGBA").convert("RGB")
    return image.convert("RGB")


def _stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _load_cache(path: Path | None, max_pixels: int) -> dict:
    if path is None:
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if raw.get("version") != CACHE_VERSION or raw.get("max_pixels") != max_pixels:
        return {}
    return raw.get("files", {})
