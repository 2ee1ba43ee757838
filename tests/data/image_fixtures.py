"""Tiny encoded images in every format the pipeline must decode (test helper)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

IMAGE_FORMATS = ("jpeg", "png_rgba", "png_grey", "png16", "gif", "bmp")


def textured(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth gradient plus noise: realistic enough for JPEG, uint8 (H, W, 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([yy * 200 / height, xx * 200 / width, (yy + xx) % 64 * 3], -1)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def patchwork(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smoothly blended random colours on a coarse 4 x 6 grid, plus a little noise:
    images of different seeds differ everywhere (unlike `textured`'s one gradient),
    uint8 (H, W, 3)."""
    rng = np.random.default_rng(seed)
    grid = Image.fromarray(rng.integers(0, 256, (4, 6, 3), dtype=np.uint8))
    base = np.asarray(grid.resize((width, height), Image.BILINEAR), np.float64)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def encode(array: np.ndarray, fmt: str) -> bytes:
    """Encode an RGB uint8 array as ``fmt`` (one of IMAGE_FORMATS)."""
    buf = io.BytesIO()
    if fmt == "jpeg":
        Image.fromarray(array).save(buf, "JPEG", quality=90)
    elif fmt == "png_rgba":
        alpha = np.full(array.shape[:2] + (1,), 200, np.uint8)
        Image.fromarray(np.concatenate([array, alpha], -1), "RGBA").save(buf, "PNG")
    elif fmt == "png_grey":
        Image.fromarray(array[..., 0], "L").save(buf, "PNG")
    elif fmt == "png16":
        import tensorflow as tf

        return tf.io.encode_png(array.astype(np.uint16) * 257).numpy()
    elif fmt == "gif":
        frames = [Image.fromarray(array), Image.fromarray(255 - array)]
        frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    elif fmt == "bmp":
        Image.fromarray(array).save(buf, "BMP")
    else:
        raise ValueError(fmt)
    return buf.getvalue()


def write_images(
    folder, n: int, height: int = 40, width: int = 56, make=textured
) -> list[str]:
    """Write ``n`` images cycling through IMAGE_FORMATS (pixels ``make(h, w, seed=i)``);
    returns their paths."""
    ext = {"jpeg": "jpg", "gif": "gif", "bmp": "bmp"}
    paths = []
    for i in range(n):
        fmt = IMAGE_FORMATS[i % len(IMAGE_FORMATS)]
        path = folder / f"img{i:03d}.{ext.get(fmt, 'png')}"
        path.write_bytes(encode(make(height + i % 3, width, seed=i), fmt))
        paths.append(str(path))
    return paths


def painting_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Three octaves of smooth random colour (coarse layout, shapes, brush-scale
    detail), uint8 (H, W, 3): perceptual hashes of different seeds lie as far apart
    as those of real paintings (at least 18 of 64 bits apart over 40 seeds), and
    `near_copies` stay as close (at most 6)."""
    rng = np.random.default_rng(seed)
    out = np.full((height, width, 3), 128.0)
    for cells, amplitude in ((3, 90.0), (8, 50.0), (24, 25.0)):
        grid = rng.uniform(
            -amplitude, amplitude, (cells, round(cells * width / height))
        )
        for channel in range(3):
            noise = rng.uniform(-amplitude, amplitude, grid.shape).astype(np.float32)
            layer = Image.fromarray(noise, "F").resize((width, height), Image.BICUBIC)
            out[..., channel] += np.asarray(layer)
    return np.clip(out, 0, 255).astype(np.uint8)


def near_copies(image: Image.Image) -> dict[str, Image.Image]:
    """The copies of one painting a collection holds: resized to half, re-encoded as
    JPEG quality 60, cropped by 2% a side, letterboxed on black (16:9) and on
    white (square)."""
    width, height = image.size
    dx, dy = round(width * 0.02), round(height * 0.02)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=60)
    return {
        "resized": image.resize((width // 2, height // 2), Image.LANCZOS),
        "jpeg60": Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"),
        "cropped": image.crop((dx, dy, width - dx, height - dy)),
        "letterboxed": letterbox(image, (width * 2, width * 9 // 8), (0, 0, 0)),
        "boxed_white": letterbox(image, (width, width), (255, 255, 255)),
    }


def letterbox(image: Image.Image, size: tuple[int, int], colour) -> Image.Image:
    """``image`` scaled to fit ``size`` (W, H) and centred on bars of ``colour``."""
    scale = min(size[0] / image.width, size[1] / image.height)
    inner = image.resize((round(image.width * scale), round(image.height * scale)))
    out = Image.new("RGB", size, colour)
    out.paste(inner, ((size[0] - inner.width) // 2, (size[1] - inner.height) // 2))
    return out
