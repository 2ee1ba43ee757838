"""Perceptual hashes that find one painting stored at several sizes, crops and frames.

Each image gets imagehash's pHash (64 bits: the signs of the 8x8 lowest frequencies
of a 32x32 DCT, so resizing and re-encoding barely move it) of the image as it is,
and, when the image has uniform borders (letterbox or pillarbox bars, a mat), a
second pHash of what lies inside them: bars change the DCT as much as a different
painting does. Two images are near-duplicates when any hash of one is within
`DEFAULT_MAX_DISTANCE` bits of any hash of the other.

Why these numbers, measured on the 168 paintings of the WikiArt style sample
(which are themselves letterboxed on black to 224x224): different paintings are at
least 14 bits apart (mean 28.4, sd 3.9; 14,028 pairs), while copies of a painting
are at most 4 bits from it when resized or re-encoded as JPEG quality 60, 10 when
cropped by 2% a side, and 8-12 when letterboxed on black, white or grey. The
default threshold of 10 keeps 4 bits (one standard deviation of the different
pairs) clear of the closest different paintings; docs/datasets.md has the table.

A border line is one whose pixels are, for 98% of them, within 12 grey levels of
the median of the outermost line (JPEG ringing and a signature in the margin stay
border). Trimming runs once: a second pass also eats flat painted bands (a sea, a
sky, bare paper) and made resized copies drift apart.
"""

from __future__ import annotations

import numpy as np

HASH_BITS = 64
DEFAULT_MAX_DISTANCE = 10
# The decoded size hashing needs: pHash reads a 32x32 thumbnail, and trimming needs
# a few pixels per bar. Larger JPEGs are decoded at a fraction of their size.
HASH_DECODE_SIDE = 128
BORDER_TOLERANCE = 12
BORDER_FRACTION = 0.98
MIN_CONTENT_SIDE = 8


def image_hashes(image) -> list[str]:
    """The pHash of the Pillow ``image`` and, when it has uniform borders, of its
    content inside them; 16-digit hex strings (one or two, never equal)."""
    import imagehash

    grey = image.convert("L")
    hashes = [str(imagehash.phash(grey))]
    inner = trim_uniform_borders(grey)
    if inner is not None:
        trimmed = str(imagehash.phash(inner))
        if trimmed != hashes[0]:
            hashes.append(trimmed)
    return hashes


def trim_uniform_borders(image):
    """``image`` (Pillow) without its uniform border lines on each side (see the
    module docstring); None when it has none or too little would be left."""
    pixels = np.asarray(image.convert("L"), dtype=np.int16)
    height, width = pixels.shape
    top, bottom = _border_lines(pixels), _border_lines(pixels[::-1])
    left, right = _border_lines(pixels.T), _border_lines(pixels.T[::-1])
    if top + bottom + left + right == 0:
        return None
    if min(height - top - bottom, width - left - right) < MIN_CONTENT_SIDE:
        return None  # a blank image: all border
    return image.crop((left, top, width - right, height - bottom))


def _border_lines(lines: np.ndarray) -> int:
    """How many of ``lines`` (the rows of a 2-D array), from the first on, are
    border lines of the first line's colour."""
    colour = np.median(lines[0])
    close = np.abs(lines - colour) <= BORDER_TOLERANCE
    border = close.mean(axis=1) >= BORDER_FRACTION
    return len(border) if border.all() else int(np.argmin(border))


def hash_values(hex_hashes: list[str]) -> np.ndarray:
    """``hex_hashes`` as an unsigned 64-bit array (what `hamming` searches)."""
    return np.array([int(h, 16) for h in hex_hashes], dtype=np.uint64)
