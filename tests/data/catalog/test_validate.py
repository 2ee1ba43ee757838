"""The image scan: a zoo of broken files, and odd-but-valid files that must be used.

The odd files are checked against what TF 2.21 actually decodes: every usable file
(after conversion where the scan converts) must decode with
``tf.io.decode_image(channels=3, expand_animations=False)`` to the right colours.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_art.data.catalog.validate import scan_images

REF = np.zeros((16, 16, 3), np.uint8)
REF[:8] = [200, 30, 30]
REF[8:] = [30, 30, 200]


def _save(img, fmt, **kw) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **kw)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _png16(arr: np.ndarray) -> bytes:
    """An RGB 16-bit PNG (Pillow cannot write one)."""
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def _huge_png() -> bytes:
    """A valid header claiming 20000 x 20000 pixels over a few bytes of data."""
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def _zoo_bad() -> dict[str, tuple[bytes, str]]:
    rgb = Image.fromarray(REF)
    jpeg = _save(
        Image.fromarray(
            np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
        ),
        "JPEG",
    )
    return {
        "empty.jpg": (b"", "zero bytes"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated"),
        "text.jpg": (b"this is a text file, not a painting\n", "not an image"),
        "photo.heic": (
            b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64,
            "unsupported format (HEIC)",
        ),
        "bomb.png": (_huge_png(), "too large"),
        "half.png": (_save(rgb, "PNG")[:60], "truncated"),
    }


def _zoo_odd() -> dict[str, tuple[bytes, bool]]:
    """name -> (bytes, converted?)."""
    rgb = Image.fromarray(REF)
    frame2 = Image.fromarray(255 - REF)
    gray16 = Image.fromarray(REF[..., 0].astype(np.uint16) * 257)
    return {
        "gray.jpg": (_save(rgb.convert("L"), "JPEG", quality=95), False),
        "cmyk.jpg": (_save(rgb.convert("CMYK"), "JPEG", quality=95), False),
        "rgba.png": (_save(rgb.convert("RGBA"), "PNG"), False),
        "palette.png": (_save(rgb.convert("P"), "PNG"), False),
        "rgb16.png": (_png16(REF.astype(np.uint16) * 257), False),
        "gray16.png": (_save(gray16, "PNG"), False),
        "anim.gif": (
            _save(rgb.convert("P"), "GIF", save_all=True, append_images=[frame2]),
            False,
        ),
        "still.webp": (_save(rgb, "WEBP", lossless=True), False),
        "rgb.bmp": (_save(rgb, "BMP"), False),
        "anim.webp": (
            _save(rgb, "WEBP", save_all=True, append_images=[frame2], lossless=True),
            True,
        ),
        "palette.bmp": (_save(rgb.convert("P"), "BMP"), True),
        "scan.tif": (_save(rgb, "TIFF"), True),
        "gray16.tif": (_save(gray16, "TIFF"), True),
    }


def _write(folder: Path, zoo: dict) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (data, _) in zoo.items():
        (folder / name).write_bytes(data)
        paths.append(str(folder / name))
    return paths


def test_broken_files_are_excluded_with_a_reason(tmp_path):
    zoo = _zoo_bad()
    paths = _write(tmp_path / "img", zoo) + [str(tmp_path / "img" / "gone.jpg")]
    result = scan_images(paths, cache_dir=tmp_path / "cache", workers=2)
    assert not any(result.ok)
    reasons = dict(result.excluded)
    for name, (_, want) in zoo.items():
        assert want in reasons[str(tmp_path / "img" / name)], name
    assert reasons[paths[-1]] == "missing file"


def test_odd_but_valid_files_are_used_and_tf_decodes_them(tmp_path):
    import tensorflow as tf

    zoo = _zoo_odd()
    paths = _write(tmp_path / "img", zoo)
    result = scan_images(paths, cache_dir=tmp_path / "cache", workers=2)
    assert all(result.ok), result.excluded
    converted = dict(result.converted)
    for (name, (_, want_converted)), original, used in zip(
        zoo.items(), paths, result.files, strict=True
    ):
        assert (original in converted) == want_converted, name
        if want_converted:
            assert used == converted[original]
            assert Path(used).parent == tmp_path / "cache" / "converted"
        data = tf.io.read_file(used)
        pixels = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
        assert pixels.shape == (16, 16, 3), name
        if name.startswith("gray16"):  # 16-bit values scaled, not clipped at 255
            want = np.repeat(REF[..., :1], 3, axis=2)
        elif name.startswith("gray"):
            want = np.asarray(Image.fromarray(REF).convert("L").convert("RGB"))
        elif "palette" in name or name.endswith("gif"):
            want = np.asarray(Image.fromarray(REF).convert("P").convert("RGB"))
        else:
            want = REF
        tolerance = 8 if name.endswith(".jpg") else 1
        assert np.abs(pixels.astype(int) - want).max() <= tolerance, name


def test_scan_cache_makes_second_scan_free_and_notices_changes(tmp_path, capsys):
    paths = _write(tmp_path / "img", {**_zoo_odd(), **_zoo_bad()})
    first = scan_images(paths, cache_dir=tmp_path / "c", workers=2, progress_every=5)
    assert first.from_cache == 0
    assert "scan: " in capsys.readouterr().err  # progress lines for a large scan
    second = scan_images(paths, cache_dir=tmp_path / "c", workers=2)
    assert second.from_cache == len(paths)
    assert second.files == first.files and second.ok == first.ok
    assert second.hashes == first.hashes
    # repairing a file changes its size/mtime: it is scanned again, now usable
    fixed = Path(paths[-1].replace("half.png", "empty.jpg"))
    fixed.write_bytes(_save(Image.fromarray(REF), "JPEG"))
    third = scan_images(paths, cache_dir=tmp_path / "c", workers=2)
    assert third.from_cache == len(paths) - 1
    assert third.ok[paths.index(str(fixed))]


def test_conversion_without_cache_dir_is_reported(tmp_path):
    paths = _write(tmp_path, {"scan.tif": _zoo_odd()["scan.tif"]})
    result = scan_images(paths, cache_dir=None, workers=1)
    assert result.ok == [False]
    assert "no cache_dir" in result.excluded[0][1]


@pytest.mark.parametrize("workers", [1, 3])
def test_hashes_identify_identical_bytes(tmp_path, workers):
    data = _save(Image.fromarray(REF), "PNG")
    paths = _write(tmp_path, {"a.png": (data, False), "b.png": (data, False)})
    result = scan_images(paths, workers=workers)
    assert result.hashes[0] == result.hashes[1] != ""
