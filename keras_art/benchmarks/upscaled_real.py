"""``bench pipeline --kind upscaled-real``: real paintings made large.

The generated kinds are kinder to the pipeline than real data: real paintings
upscaled to 1600x1200 decode fast (smooth, upsampled detail) and leave the work
after decoding exposed. This writes ``n`` such files from a class-folder tree of
real paintings (cycling through them, class folders kept): each image resized to
cover ``size`` with LANCZOS, centre-cropped to it, saved as JPEG quality 92.
Cached under keras_art's cache, keyed by the source folder and the settings.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from keras_art.benchmarks import progress
from keras_art.data.sources.build_once import build_dir_once, is_complete
from keras_art.errors import UserError

QUALITY = 92


def upscaled_real_jpegs(
    source: str,
    n: int,
    size: tuple[int, int] = (1600, 1200),
    cache_dir: str | None = None,
    files: list[str] | None = None,
) -> Path:
    """The folder of ``n`` upscaled copies of ``files`` (the paintings under
    ``source``, in order); reused when already complete."""
    from PIL import Image, ImageOps

    from keras_art.config import default_cache_dir

    if n < 1 or not files:
        raise UserError(
            f"{source}: no paintings to upscale, or n={n} copies asked. Pass a "
            "class-folder tree of paintings and a positive n."
        )
    w, h = size
    key = hashlib.sha1(str(Path(source).resolve()).encode()).hexdigest()[:10]
    root = Path(cache_dir or default_cache_dir()) / f"bench-upscaled-{key}-{n}-{w}x{h}"
    if is_complete(root):
        progress(f"reusing {n} upscaled real {w}x{h} JPEGs in {root}")
        return root
    progress(f"upscaling {n} paintings from {source} to {w}x{h} in {root}")

    def build(tmp: Path) -> None:
        for i in range(n):
            path = Path(files[i % len(files)])
            folder = tmp / path.parent.name
            folder.mkdir(parents=True, exist_ok=True)
            with Image.open(path) as image:
                big = ImageOps.fit(image.convert("RGB"), (w, h), Image.LANCZOS)
            big.save(folder / f"{i:05d}.jpg", quality=QUALITY)
            if (i + 1) % 50 == 0:
                progress(f"upscaled {i + 1}/{n}")

    return build_dir_once(root, build)
