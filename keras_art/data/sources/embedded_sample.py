"""The embedded sample: procedural "paintings" written in the WikiArt refined layout.

Nothing is downloaded. Eight invented painters (named after real ones) each have a
palette and a brush: short horizontal dabs, random-angle dabs, small or large dots,
gold mosaics with grid lines, flat fields with dark contours, drips and splatters,
long diagonal slashes. A genre is a composition (landscape horizon band, portrait
figure, still-life cluster on a table, cityscape verticals, abstract shapes) and a
style groups two painters. Every image jitters its palette, brush and geometry, and
one in seven borrows a colour from another painter, so the task is learnable but not
trivial.

The folder is the layout of ``docs/datasets.md`` section 1, quirks included, so the
WikiArt reader is exercised end to end by the default demo:

- ``wikiart/<StyleFolder>/<artist-slug>_<title-slug>.jpg``; style ``Art_Nouveau``
  lives in ``Art_Nouveau_Modern/`` (labels must be mapped by index, not folder);
- ``wikiart_csv/Style/style_class.txt`` + ``style_{train,val}.csv`` (CRLF),
  ``Genre/genre_class`` (no extension) + ``genre_{train,val}.csv`` (CRLF, one row of
  ``genre_val.csv`` duplicated), ``Artist/artist_class`` + ``artist_{train,val}``
  (no extension, LF, header + blank line, ``path,,label`` rows; the val header has a
  trailing space);
- about 1% of the images of the val lists sit in ``genre_train.csv`` instead (the
  cross-task overlap a multi-task run must handle); one file name carries mojibake.

Every image has all three labels. The official split is 75/25 per painter.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace
from io import BytesIO
from pathlib import Path

import numpy as np

from keras_art.data.sources.build_once import build_dir_once
from keras_art.errors import UserError

SAMPLE_VERSION = 1
VAL_FRACTION = 0.25
OVERLAP_FRACTION = 0.01
JPEG_QUALITY = 85

GENRES = ("abstract_painting", "cityscape", "landscape", "portrait", "still_life")
# (class name, folder name): index order is the class file's order.
STYLES = (
    ("Abstract_Expressionism", "Abstract_Expressionism"),
    ("Art_Nouveau", "Art_Nouveau_Modern"),
    ("Impressionism", "Impressionism"),
    ("Pointillism", "Pointillism"),
)


@dataclass(frozen=True)
class Painter:
    """One invented painter: who they are and how they paint."""

    name: str  # artist_class name
    slug: str  # file-name prefix
    style: str
    weight: float  # relative image count (class imbalance)
    palette: tuple[tuple[int, int, int], ...]
    brush: str  # key of _BRUSHES
    size: tuple[float, float]  # stroke length / dot or tile size, pixels
    width: tuple[int, int]  # stroke width, pixels
    angle: tuple[float, float]  # mean and spread of stroke direction, degrees
    genres: dict[str, float]  # relative genre frequencies
    years: tuple[int, int]


PAINTERS = (
    Painter(
        "Alphonse_Mucha", "alphonse-mucha", "Art_Nouveau", 1.4,
        ((232, 214, 180), (170, 186, 150), (214, 160, 150), (120, 100, 80),
         (240, 236, 220)),
        "contours", (20, 60), (2, 3), (0, 180),
        {"portrait": 4, "still_life": 1, "abstract_painting": 1}, (1890, 1910),
    ),
    Painter(
        "Claude_Monet", "claude-monet", "Impressionism", 2.5,
        ((120, 160, 210), (170, 150, 210), (140, 190, 150), (230, 220, 160),
         (90, 120, 170)),
        "dabs", (4, 9), (2, 3), (0, 18),
        {"landscape": 5, "cityscape": 2, "still_life": 1, "portrait": 1},
        (1865, 1920),
    ),
    Painter(
        "Georges_Seurat", "georges-seurat", "Pointillism", 1.1,
        ((190, 170, 110), (70, 130, 130), (40, 60, 100), (210, 200, 170),
         (150, 110, 70)),
        "dots", (3, 4), (1, 1), (0, 0),
        {"landscape": 3, "cityscape": 2, "portrait": 1}, (1880, 1891),
    ),
    Painter(
        "Gustav_Klimt", "gustav-klimt", "Art_Nouveau", 1.25,
        ((212, 170, 50), (30, 25, 20), (170, 120, 40), (230, 210, 120),
         (110, 140, 90)),
        "mosaic", (4, 7), (1, 1), (0, 0),
        {"portrait": 4, "landscape": 2, "abstract_painting": 1}, (1895, 1918),
    ),
    Painter(
        "Jackson_Pollock", "jackson-pollock", "Abstract_Expressionism", 1.0,
        ((225, 220, 205), (20, 20, 20), (160, 70, 40), (240, 240, 240),
         (120, 120, 110)),
        "drips", (30, 90), (1, 2), (0, 180),
        {"abstract_painting": 6, "portrait": 0.5, "landscape": 0.5}, (1940, 1956),
    ),
    Painter(
        "Paul_Signac", "paul-signac", "Pointillism", 1.6,
        ((250, 140, 40), (140, 70, 200), (40, 190, 220), (250, 220, 60),
         (230, 70, 110)),
        "dots", (5, 7), (1, 1), (0, 0),
        {"landscape": 2, "cityscape": 3, "still_life": 0.5}, (1885, 1935),
    ),
    Painter(
        "Pierre_Auguste_Renoir", "pierre-auguste-renoir", "Impressionism", 2.0,
        ((240, 180, 170), (250, 215, 180), (150, 180, 120), (200, 110, 100),
         (250, 240, 225)),
        "dabs", (4, 8), (3, 4), (0, 180),
        {"portrait": 5, "landscape": 2, "still_life": 2, "cityscape": 0.5},
        (1864, 1919),
    ),
    Painter(
        "Willem_De_Kooning", "willem-de-kooning", "Abstract_Expressionism", 1.05,
        ((240, 100, 140), (250, 210, 50), (50, 90, 200), (245, 240, 230),
         (200, 50, 40)),
        "slashes", (25, 60), (4, 8), (45, 25),
        {"abstract_painting": 3, "portrait": 3, "cityscape": 1}, (1945, 1985),
    ),
)  # fmt: skip

_TITLE_WORDS = {
    "abstract_painting": (("composition", "untitled", "number", "rhythm", "forms"),
                          ("in-red", "in-blue", "no-2", "with-yellow", "study")),
    "cityscape": (("boulevard", "harbour", "bridge", "street", "quay", "port"),
                  ("in-paris", "at-night", "in-the-rain", "at-noon", "of-london")),
    "landscape": (("landscape", "poplars", "river", "meadow", "garden", "sea"),
                  ("near-argenteuil", "at-dusk", "in-spring", "with-cliffs", "")),
    "portrait": (("portrait", "woman", "young-girl", "self-portrait", "lady"),
                 ("in-a-hat", "with-a-fan", "reading", "of-the-artist", "")),
    "still_life": (("still-life", "flowers", "apples", "vase", "bouquet"),
                   ("on-a-table", "with-lemons", "in-a-vase", "and-jug", "")),
}  # fmt: skip
# Real WikiArt names carry UTF-8 read as Latin-1: keep one such name in the sample.
_MOJIBAKE_TITLE = "caf\u00e3\u00a9-concert"


def sample_dir(cache_dir: str | os.PathLike, num_images: int, seed: int) -> Path:
    """Where `ensure_sample` puts the sample with these settings."""
    return Path(cache_dir) / f"sample-v{SAMPLE_VERSION}-n{num_images}-s{seed}"


def ensure_sample(cache_dir: str, num_images: int = 720, seed: int = 0) -> Path:
    """Generate the embedded sample once; return its root (holds ``wikiart/``).

    The same ``(num_images, seed)`` always gives byte-identical files. The folder is
    written under a temporary name and renamed when complete, so an interrupted run
    is never reused and concurrent processes do not clash.
    """
    if not isinstance(num_images, int) or num_images < 4 * len(PAINTERS):
        raise UserError(
            f"data.sample_images must be an integer of at least {4 * len(PAINTERS)} "
            f"(4 per painter). Received: {num_images!r}"
        )
    final = sample_dir(cache_dir, num_images, seed)
    return build_dir_once(
        final,
        lambda tmp: write_sample(tmp, num_images, seed),
        message=f"Generating the embedded sample ({num_images} images) in {final} once",
    )


def write_sample(root: str | os.PathLike, num_images: int, seed: int) -> None:
    """Write the sample into ``root`` (not atomic: `ensure_sample` wraps this)."""
    root = Path(root)
    rows = _plan(num_images, seed)
    for row in rows:
        path = root / "wikiart" / row["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_render(row))
    _write_label_files(root / "wikiart_csv", rows, seed)
    info = {
        "generator": f"keras_art.data.sources.embedded_sample v{SAMPLE_VERSION}",
        "num_images": num_images,
        "seed": seed,
        "artists": {
            p.name: sum(r["artist"] == i for r in rows) for i, p in enumerate(PAINTERS)
        },
        "genres": {g: sum(r["genre"] == i for r in rows) for i, g in enumerate(GENRES)},
        "styles": {
            s: sum(r["style"] == i for r in rows) for i, (s, _) in enumerate(STYLES)
        },
        "val": sum(r["split"] == "val" for r in rows),
    }
    (root / "sample_info.json").write_text(json.dumps(info, indent=2) + "\n")


# ----------------------------------------------------------------------- the plan
def _apportion(total: int, weights: list[float]) -> list[int]:
    """Largest-remainder split of ``total`` in proportion to ``weights``."""
    w = np.asarray(weights, dtype=float)
    exact = total * w / w.sum()
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: total - counts.sum()]:
        counts[i] += 1
    return counts.tolist()


def _plan(num_images: int, seed: int) -> list[dict]:
    """One dict per image: labels, path, split, and the seed of its pixels."""
    rng = np.random.default_rng([seed, 0])
    style_index = {name: i for i, (name, _) in enumerate(STYLES)}
    rows: list[dict] = []
    per_painter = _apportion(num_images, [p.weight for p in PAINTERS])
    for a, (painter, n) in enumerate(zip(PAINTERS, per_painter, strict=True)):
        genre_names = list(painter.genres)
        g_counts = _apportion(n, [painter.genres[g] for g in genre_names])
        genres = [
            g for g, c in zip(genre_names, g_counts, strict=True) for _ in range(c)
        ]
        genres = [genres[i] for i in rng.permutation(n)]
        n_val = round(n * VAL_FRACTION)
        val = set(rng.permutation(n)[:n_val].tolist())
        titles: set[str] = set()
        folder = STYLES[style_index[painter.style]][1]
        for k, genre in enumerate(genres):
            title = _title(rng, genre, painter, titles, mojibake=(a == 2 and k == 0))
            rows.append(
                {
                    "path": f"{folder}/{painter.slug}_{title}.jpg",
                    "artist": a,
                    "genre": GENRES.index(genre),
                    "style": style_index[painter.style],
                    "split": "val" if k in val else "train",
                    "pixel_seed": [seed, a, k],
                }
            )
    return rows


def _title(rng, genre, painter, taken, mojibake=False) -> str:
    nouns, tails = _TITLE_WORDS[genre]
    parts = [_MOJIBAKE_TITLE] if mojibake else [str(rng.choice(nouns))]
    tail = str(rng.choice(tails))
    if tail:
        parts.append(tail)
    if rng.random() < 0.6:
        parts.append(str(rng.integers(painter.years[0], painter.years[1] + 1)))
    title = base = "-".join(parts)
    k = 0
    while title in taken:
        k += 1
        title = f"{base}-{k}"
    taken.add(title)
    return title


def _write_label_files(csv_root: Path, rows: list[dict], seed: int) -> None:
    rows = sorted(rows, key=lambda r: r["path"])
    val = [r for r in rows if r["split"] == "val"]
    # The cross-task overlap: a few val images listed in genre's TRAIN list.
    rng = np.random.default_rng([seed, 1])
    n_moved = max(1, round(OVERLAP_FRACTION * len(val))) if len(val) >= 8 else 0
    moved = {val[i]["path"] for i in rng.permutation(len(val))[:n_moved]}

    def lines(selected, task, sep):
        return [f"{r['path']}{sep}{r[task]}" for r in selected]

    train = [r for r in rows if r["split"] == "train"]
    genre_train = sorted(
        train + [r for r in val if r["path"] in moved], key=lambda r: r["path"]
    )
    genre_val = [r for r in val if r["path"] not in moved]
    genre_val_lines = lines(genre_val, "genre", ",")
    if genre_val_lines:  # the real genre_val.csv repeats one row
        genre_val_lines.insert(1, genre_val_lines[0])
    header = "(Path to image),, (Groundtruth class)"
    files = {
        "Style/style_class.txt": _lf([f"{i} {s}" for i, (s, _) in enumerate(STYLES)]),
        "Style/style_train.csv": _crlf(lines(train, "style", ",")),
        "Style/style_val.csv": _crlf(lines(val, "style", ",")),
        "Genre/genre_class": _lf([f"{i} {g}" for i, g in enumerate(GENRES)]),
        "Genre/genre_train.csv": _crlf(lines(genre_train, "genre", ",")),
        "Genre/genre_val.csv": _crlf(genre_val_lines),
        "Artist/artist_class": _lf([f"{i} {p.name}" for i, p in enumerate(PAINTERS)]),
        "Artist/artist_train": _lf([header, ""] + lines(train, "artist", ",,")),
        "Artist/artist_val": _lf([header + " ", ""] + lines(val, "artist", ",,")),
    }
    for rel, text in files.items():
        path = csv_root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))


def _lf(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def _crlf(lines: list[str]) -> str:
    return "".join(f"{line}\r\n" for line in lines)


# ---------------------------------------------------------------------- rendering
def _render(row: dict) -> bytes:
    """The JPEG bytes of one painting (deterministic in ``row['pixel_seed']``)."""
    from PIL import Image

    rng = np.random.default_rng(row["pixel_seed"])
    painter = PAINTERS[row["artist"]]
    genre = GENRES[row["genre"]]
    width, height = _canvas_size(rng, genre)
    palette = _image_palette(rng, painter)
    canvas = Image.new("RGB", (width, height))
    _COMPOSITIONS[genre](canvas, rng, palette)
    canvas = _BRUSHES[painter.brush](canvas, rng, palette, painter)
    pixels = np.asarray(canvas, dtype=np.float32)
    pixels = pixels + rng.normal(0.0, 4.0, size=pixels.shape)  # canvas grain
    out = BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
        out, format="JPEG", quality=JPEG_QUALITY
    )
    return out.getvalue()


def _canvas_size(rng, genre: str) -> tuple[int, int]:
    short = int(rng.integers(96, 193))
    ratio = math.exp(rng.uniform(math.log(1.0), math.log(1.6)))  # long / short
    # Portraits are mostly upright, landscapes and cityscapes mostly wide.
    upright = {"portrait": 0.85, "landscape": 0.2, "cityscape": 0.3}.get(genre, 0.5)
    long = int(round(short * ratio))
    return (short, long) if rng.random() < upright else (long, short)


def _image_palette(rng, painter: Painter) -> np.ndarray:
    palette = np.asarray(painter.palette, dtype=np.float32)
    palette = palette * rng.uniform(0.88, 1.12) + rng.normal(0, 12, palette.shape)
    if rng.random() < 1 / 7:  # borrow a colour from another painter
        other = PAINTERS[int(rng.integers(len(PAINTERS)))]
        palette[int(rng.integers(len(palette)))] = other.palette[
            int(rng.integers(len(other.palette)))
        ]
    return np.clip(palette, 0, 255)


def _pick(rng, palette) -> tuple[int, int, int]:
    return tuple(int(c) for c in palette[int(rng.integers(len(palette)))])


# Compositions: the genre is the geometry; colours come from the painter's palette.
def _landscape(canvas, rng, palette):
    from PIL import ImageDraw

    w, h = canvas.size
    draw = ImageDraw.Draw(canvas)
    horizon = rng.uniform(0.35, 0.65) * h
    draw.rectangle([0, 0, w, h], fill=_pick(rng, palette))
    amp, freq, phase = rng.uniform(0.02, 0.1) * h, rng.uniform(1, 4), rng.uniform(0, 6)
    xs = np.linspace(0, w, 24)
    ys = horizon + amp * np.sin(freq * xs / w * 2 * np.pi + phase)
    draw.polygon(
        [(0, h), *zip(xs.tolist(), ys.tolist(), strict=True), (w, h)],
        fill=_pick(rng, palette),
    )
    draw.rectangle([0, horizon + 0.15 * h, w, h], fill=_pick(rng, palette))
    for _ in range(int(rng.integers(0, 4))):  # trees / haystacks on the horizon
        x, r = rng.uniform(0, w), rng.uniform(0.04, 0.1) * min(w, h)
        draw.ellipse([x - r, horizon - 2 * r, x + r, horizon], fill=_pick(rng, palette))


def _portrait(canvas, rng, palette):
    from PIL import ImageDraw

    w, h = canvas.size
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([0, 0, w, h], fill=_pick(rng, palette))
    cx = w * rng.uniform(0.4, 0.6)
    head_y, head_r = h * rng.uniform(0.28, 0.4), min(w, h) * rng.uniform(0.13, 0.2)
    body_w = w * rng.uniform(0.3, 0.45)
    draw.ellipse(
        [cx - body_w, head_y + head_r * 0.8, cx + body_w, h * 1.4],
        fill=_pick(rng, palette),
    )
    draw.ellipse(
        [cx - head_r * 0.8, head_y - head_r, cx + head_r * 0.8, head_y + head_r],
        fill=_pick(rng, palette),
    )


def _still_life(canvas, rng, palette):
    from PIL import ImageDraw

    w, h = canvas.size
    draw = ImageDraw.Draw(canvas)
    table = h * rng.uniform(0.55, 0.7)
    draw.rectangle([0, 0, w, h], fill=_pick(rng, palette))
    draw.rectangle([0, table, w, h], fill=_pick(rng, palette))
    cx = w * rng.uniform(0.35, 0.65)
    for _ in range(int(rng.integers(3, 7))):
        r = min(w, h) * rng.uniform(0.06, 0.14)
        x = cx + rng.normal(0, 0.15) * w
        y = table - r * rng.uniform(0.3, 1.0)
        draw.ellipse(
            [x - r, y - r * rng.uniform(1, 2), x + r, y + r], fill=_pick(rng, palette)
        )


def _cityscape(canvas, rng, palette):
    from PIL import ImageDraw

    w, h = canvas.size
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([0, 0, w, h], fill=_pick(rng, palette))
    ground = h * rng.uniform(0.8, 0.92)
    x = rng.uniform(-0.05, 0.05) * w
    while x < w:
        bw = w * rng.uniform(0.07, 0.18)
        top = h * rng.uniform(0.15, 0.6)
        draw.rectangle([x, top, x + bw, ground], fill=_pick(rng, palette))
        x += bw * rng.uniform(1.0, 1.4)
    draw.rectangle([0, ground, w, h], fill=_pick(rng, palette))


def _abstract(canvas, rng, palette):
    from PIL import ImageDraw

    w, h = canvas.size
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([0, 0, w, h], fill=_pick(rng, palette))
    for _ in range(int(rng.integers(3, 8))):
        x0, y0 = rng.uniform(-0.2, 1.0) * w, rng.uniform(-0.2, 1.0) * h
        x1, y1 = x0 + rng.uniform(0.15, 0.6) * w, y0 + rng.uniform(0.15, 0.6) * h
        shape = draw.rectangle if rng.random() < 0.5 else draw.ellipse
        shape([x0, y0, x1, y1], fill=_pick(rng, palette))


_COMPOSITIONS = {
    "abstract_painting": _abstract,
    "cityscape": _cityscape,
    "landscape": _landscape,
    "portrait": _portrait,
    "still_life": _still_life,
}


# Brushes: the painter's texture over the composition (the strongest cue, with colour).
def _stroke_colours(rng, base, xs, ys, palette, mix):
    """Colours for strokes at (xs, ys): the underlying colour pulled toward a palette
    colour by ``mix``, plus noise, so strokes follow the composition."""
    under = base[ys, xs].astype(np.float32)
    paint = palette[rng.integers(len(palette), size=len(xs))]
    colours = (1 - mix) * under + mix * paint + rng.normal(0, 10, under.shape)
    return np.clip(colours, 0, 255).astype(np.uint8)


def _lines(canvas, rng, palette, painter, count, mix):
    from PIL import ImageDraw

    w, h = canvas.size
    base = np.asarray(canvas)
    xs, ys = rng.integers(0, w, count), rng.integers(0, h, count)
    colours = _stroke_colours(rng, base, xs, ys, palette, mix)
    lengths = rng.uniform(*painter.size, count) * min(w, h) / 144
    angles = np.radians(rng.normal(painter.angle[0], painter.angle[1], count))
    dx, dy = np.cos(angles) * lengths / 2, np.sin(angles) * lengths / 2
    widths = rng.integers(painter.width[0], painter.width[1] + 1, count)
    draw = ImageDraw.Draw(canvas)
    for i in range(count):
        draw.line(
            [(xs[i] - dx[i], ys[i] - dy[i]), (xs[i] + dx[i], ys[i] + dy[i])],
            fill=tuple(colours[i].tolist()),
            width=int(widths[i]),
        )
    return canvas


def _dabs(canvas, rng, palette, painter):
    w, h = canvas.size
    return _lines(canvas, rng, palette, painter, count=int(w * h / 30), mix=0.35)


def _slashes(canvas, rng, palette, painter):
    w, h = canvas.size
    if rng.random() < 0.5:  # de Kooning slashes both ways
        painter = replace(painter, angle=(-painter.angle[0], painter.angle[1]))
    return _lines(canvas, rng, palette, painter, count=int(w * h / 500), mix=0.8)


def _tiles(canvas, rng, palette, painter, round_tiles: bool):
    """Dots (pointillism) or square tiles (mosaic), vectorised over a cell grid."""
    from PIL import Image

    w, h = canvas.size
    cell = int(rng.integers(int(painter.size[0]), int(painter.size[1]) + 1))
    gw, gh = -(-w // cell), -(-h // cell)
    small = np.asarray(canvas.resize((gw, gh), Image.BOX), dtype=np.float32)
    pure = palette[rng.integers(len(palette), size=(gh, gw))]
    use_pure = rng.random((gh, gw, 1)) < (0.45 if round_tiles else 0.3)
    cells = np.where(use_pure, 0.5 * small + 0.5 * pure, small)
    cells = cells + rng.normal(0, 14, cells.shape)
    big = np.repeat(np.repeat(cells, cell, axis=0), cell, axis=1)[:h, :w]
    yy, xx = np.mgrid[0:cell, 0:cell] + 0.5 - cell / 2
    if round_tiles:
        mask = (xx**2 + yy**2) <= (cell / 2) ** 2  # round dots, canvas between
        ground = np.asarray(canvas, dtype=np.float32) * 0.6 + 255 * 0.4
    else:
        mask = (np.abs(xx) < cell / 2 - 0.5) & (np.abs(yy) < cell / 2 - 0.5)
        ground = np.broadcast_to(palette[0] * 0.8, big.shape)  # gold grid lines
    tiled = np.tile(mask, (gh, gw))[:h, :w, None]
    out = np.where(tiled, big, ground)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def _dots(canvas, rng, palette, painter):
    return _tiles(canvas, rng, palette, painter, round_tiles=True)


def _mosaic(canvas, rng, palette, painter):
    from PIL import ImageDraw

    canvas = _tiles(canvas, rng, palette, painter, round_tiles=False)
    w, h = canvas.size
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(2, 6))):  # Klimt's spirals and eyes
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(4, 12)
        draw.ellipse([x - r, y - r, x + r, y + r], outline=_pick(rng, palette), width=2)
    return canvas


def _contours(canvas, rng, palette, painter):
    from PIL import Image, ImageDraw, ImageFilter

    # Flat colour fields with dark outlines: the edges of the composition, darkened.
    edges = (
        canvas.convert("L")
        .filter(ImageFilter.FIND_EDGES)
        .point(lambda v: 255 if v > 8 else 0)
    )
    edges = np.asarray(edges.filter(ImageFilter.MaxFilter(3))) > 0
    pixels = np.asarray(canvas, dtype=np.float32)
    outline = np.asarray(painter.palette[3], dtype=np.float32) * 0.6
    pixels = np.where(edges[..., None], outline, pixels)
    canvas = Image.fromarray(pixels.astype(np.uint8))
    w, h = canvas.size
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(3, 8))):  # decorative arcs and halos
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(*painter.size) * min(w, h) / 144
        start = rng.uniform(0, 360)
        draw.arc(
            [x - r, y - r, x + r, y + r],
            start,
            start + rng.uniform(90, 300),
            fill=tuple(int(c) for c in outline),
            width=2,
        )
    return canvas


def _drips(canvas, rng, palette, painter):
    from PIL import ImageDraw

    w, h = canvas.size
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(25, 45))):  # poured lines: random walks
        steps = int(rng.integers(6, 16))
        pts = np.cumsum(rng.normal(0, painter.size[0] * 0.4, (steps, 2)), axis=0)
        pts += [rng.uniform(0, w), rng.uniform(0, h)]
        draw.line(
            [tuple(p) for p in pts.tolist()],
            fill=_pick(rng, palette),
            width=int(rng.integers(painter.width[0], painter.width[1] + 1)),
        )
    for _ in range(int(rng.integers(8, 20))):  # vertical drips
        x, y = rng.uniform(0, w), rng.uniform(0, h * 0.7)
        draw.line(
            [(x, y), (x, y + rng.uniform(10, 40))], fill=_pick(rng, palette), width=1
        )
    n = int(w * h / 150)  # splatter
    xs, ys = rng.uniform(0, w, n), rng.uniform(0, h, n)
    rs = rng.uniform(0.5, 2.0, n)
    for i in range(n):
        draw.ellipse(
            [xs[i] - rs[i], ys[i] - rs[i], xs[i] + rs[i], ys[i] + rs[i]],
            fill=_pick(rng, palette),
        )
    return canvas


_BRUSHES = {
    "contours": _contours,
    "dabs": _dabs,
    "dots": _dots,
    "drips": _drips,
    "mosaic": _mosaic,
    "slashes": _slashes,
}
