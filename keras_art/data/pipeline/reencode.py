"""Re-encoding: each image re-encoded once, at a bounded size, for TFRecord shards.

WikiArt originals are 1,500-4,000 px JPEGs; decoding them is the training
pipeline's floor. Like FFCV's and big_vision's prepared datasets, the shards can
hold every image re-encoded once as an RGB JPEG whose side is bounded (aspect
ratio kept, Lanczos resampling, quality Q). Images already within the bound keep
their original bytes. Training and evaluation read prepared shards exactly as
they read original ones (`decode.py` / `augment.py`): decoding is
format-agnostic and the crops are fractions of the stored image.

Which bound: ``short_side``. RandomResizedCrop takes a fraction of the image's
area and the evaluation centre crop is the largest central square, so the short
side is what sets their resolution; a ``max_side`` bound would shrink the short
side of long scrolls and panoramas by their aspect ratio as well. A crop of area
fraction s at aspect ratio r (3/4..4/3) of an image whose short side is L has a
short side of about ``L * sqrt(s * aspect) * min(sqrt(r), 1/sqrt(r))``: at the
default ``crop_scale`` 0.35-1, every crop of a square image stays at or above
``image_size`` (no upsampling) only for L >= 1.95 x image_size. Sampled with the
pipeline's crop sampler on 4:3 images: L = 1.15 x image_size keeps the eval crop
and the largest training crops at full resolution (32 % of crops; the median
crop is upsampled 1.08x, the worst 1.46x), L = 1.5 x keeps 91 % (worst 1.12x),
L = 2 x keeps all. The scale jitter after the crop (0.8-1.2) resamples by up to
1.2x anyway, so 1.5 x image_size (576 px at 384) is the suggested bound; 2 x
gives every crop its full resolution at about 1.8x the pixels to decode.
"""

from __future__ import annotations

import io
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from keras_art.errors import ParameterError, UserError

BOUNDS = ("short_side", "max_side")
DEFAULT_QUALITY = 90
# Files read ahead of the writer per worker thread: enough to keep every thread
# busy, few enough that a shard's images are never all held in memory.
_LOOKAHEAD_PER_THREAD = 4


@dataclass(frozen=True)
class ImageEncoding:
    """How shards store images: the original bytes (``bound`` None) or an RGB JPEG
    of quality ``quality`` whose ``bound`` side (``short_side`` / ``max_side``) is
    at most ``side`` pixels."""

    bound: str | None = None
    side: int | None = None
    quality: int = DEFAULT_QUALITY

    @property
    def original(self) -> bool:
        return self.bound is None

    def validate(self) -> ImageEncoding:
        if self.original:
            return self
        if self.bound not in BOUNDS:
            raise UserError(
                f"Unknown image bound {self.bound!r}. Choose one of: "
                f"{', '.join(BOUNDS)}."
            )
        if not isinstance(self.side, int) or self.side < 16:
            raise ParameterError(
                f"{{{self.bound}}} must be at least 16 pixels. Received: {self.side}"
            )
        if not 1 <= self.quality <= 100:
            raise ParameterError(
                f"{{quality}} must be in 1..100 (90 is typical). "
                f"Received: {self.quality}"
            )
        return self

    def to_manifest(self) -> dict[str, Any]:
        """The manifest's ``images`` entry."""
        if self.original:
            return {"encoding": "original"}
        return {
            "encoding": "jpeg",
            "bound": self.bound,
            "side": self.side,
            "quality": self.quality,
            "resample": "lanczos",
            "smaller_kept": True,  # images within the bound keep their bytes
        }

    @classmethod
    def from_manifest(cls, entry: dict[str, Any] | None) -> ImageEncoding:
        if not entry or entry.get("encoding") == "original":
            return cls()
        return cls(entry.get("bound"), entry.get("side"), entry.get("quality", 0))

    def settings(self) -> str:
        """This encoding in messages' words: `ParameterError` slots, e.g.
        ``{short_side} 576 {quality} 90`` (make_tfrecords shows its flags)."""
        if self.original:
            return "no {short_side}/{max_side} (original bytes)"
        return f"{{{self.bound}}} {self.side} {{quality}} {self.quality}"

    def flags(self) -> str:
        """The make_tfrecords flags that write this encoding."""
        if self.original:
            return "no --short-side/--max-side (original bytes)"
        return f"--{self.bound.replace('_', '-')} {self.side} --quality {self.quality}"


def target_size(
    width: int, height: int, encoding: ImageEncoding
) -> tuple[int, int] | None:
    """``(width, height)`` after bounding, or None when the image is within the
    bound (it is then stored as it is)."""
    if encoding.original:
        return None
    bounded = (
        min(width, height) if encoding.bound == "short_side" else max(width, height)
    )
    if bounded <= encoding.side:
        return None
    scale = encoding.side / bounded
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode_image(data: bytes, encoding: ImageEncoding, name: str = "image") -> bytes:
    """``data`` (any format PIL reads) re-encoded by ``encoding``; ``data`` itself
    when the image is within the bound or the encoding is the original."""
    from PIL import Image, UnidentifiedImageError

    if encoding.original:
        return data
    try:
        image = Image.open(io.BytesIO(data))
        size = target_size(*image.size, encoding)
        if size is None:
            return data
        # libjpeg scales by 1/2, 1/4, 1/8 in the DCT domain while decoding, down
        # to no less than ``size``: a low-pass as good as a resize, at a fraction
        # of a full decode's cost.
        image.draft("RGB", size)
        image = _to_rgb(image).resize(size, Image.Resampling.LANCZOS)
    except (
        OSError,
        UnidentifiedImageError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        raise UserError(
            f"{name}: cannot re-encode ({exc}). Remove the file or set "
            f"data.validate=true to find unreadable images."
        ) from None
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=encoding.quality)
    return buf.getvalue()


def _to_rgb(image):
    """RGB as `keras_art.data.pipeline.decode.decode_rgb` sees the file: alpha
    dropped, grey repeated, 16-bit scaled to 8 (not clipped, as PIL would)."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = Image.fromarray((np.asarray(image, np.uint32) >> 8).astype(np.uint8))
    return image.convert("RGB")


class StoredImage(NamedTuple):
    """One image as a shard stores it."""

    data: bytes
    source_bytes: int  # the file's size
    reencoded: bool  # False: ``data`` is the file's bytes


def read_encoded(
    files: Sequence[str], encoding: ImageEncoding, threads: int = 1
) -> Iterator[StoredImage]:
    """Each file as the shards store it, in order.

    Re-encoding runs on ``threads`` threads (PIL's decode, resize and encode
    release the GIL), a bounded number of files ahead of the consumer. Measured on
    1600x1200 JPEGs to short side 442: 14.5 CPU ms per image with PIL, 17 ms with
    a tf.data map of ``decode_jpeg(ratio=2)`` + Lanczos resize + ``encode_jpeg``."""
    if encoding.original or threads <= 1:
        for f in files:
            yield _read_and_encode(f, encoding)
        return
    with ThreadPoolExecutor(threads) as pool:
        pending: deque = deque()
        for f in files:
            pending.append(pool.submit(_read_and_encode, f, encoding))
            if len(pending) >= _LOOKAHEAD_PER_THREAD * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _read_and_encode(file: str, encoding: ImageEncoding) -> StoredImage:
    with open(file, "rb") as fh:
        original = fh.read()
    data = encode_image(original, encoding, os.fsdecode(file))
    return StoredImage(data, len(original), data is not original)
