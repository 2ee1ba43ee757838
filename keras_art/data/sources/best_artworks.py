"""Kaggle "Best Artworks of All Time" (docs/datasets.md section 3).

``artists.csv`` plus ``images/images/<Artist_Name>/<Artist_Name>_<n>.jpg`` (used when
present) or the flat ``resized/resized/<Artist_Name>_<n>.jpg``. Folder and CSV names
are matched after mojibake repair, NFC normalisation and accent folding, so
"Albrecht_Du\u0308rer", "Albrecht_Dürer" and "Albrecht Durer" are one artist.

Labels: ``artist`` = the artists.csv ``name`` (class order = CSV order); ``style`` =
the FIRST movement of the ``genre`` column ("Primitivism,Surrealism" -> Primitivism),
classes sorted by name. One label per image keeps the style task single-label.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from pathlib import Path

import numpy as np

from keras_art.data.catalog_type import MISSING, Catalog
from keras_art.errors import ParameterError, UserError
from keras_art.registry import IMAGE_SUFFIXES

_NUMBERED = re.compile(r"^(?P<name>.+)_(?P<n>\d+)$")


def read_best_artworks(data_cfg, task: str | None = None) -> Catalog:
    """Read the dataset at ``data_cfg.path`` (the folder holding artists.csv)."""
    if not data_cfg.path:
        raise ParameterError(
            "{data.format} best-artworks needs {data.path} DIR (holding artists.csv)."
        )
    return read_best_artworks_dir(Path(data_cfg.path).expanduser())


def artist_key(name: str) -> str:
    """The matching key for an artist name: repaired, NFC, accent-folded, lowercase."""
    text = unicodedata.normalize("NFC", _repair_mojibake(name))
    text = "".join(
        c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
    )
    return "_".join(re.sub(r"[^0-9a-z]+", " ", text.casefold()).split())


def first_movement(genre: str) -> str:
    """The style label of an artist: the movement before the first comma."""
    return genre.split(",")[0].strip()


def read_best_artworks_dir(root: Path) -> Catalog:
    """Catalog with ``artist`` and ``style`` labels for the images under ``root``."""
    csv_path = root / "artists.csv"
    if not csv_path.is_file():
        raise UserError(
            f"best-artworks: {csv_path} not found. Pass the folder holding artists.csv."
        )
    artists, movements = _read_artists(csv_path)
    style_names = sorted({m for m in movements if m})
    by_key = {artist_key(a): i for i, a in enumerate(artists)}

    images, layout = _list_images(root)
    files, artist_labels, excluded, unmatched = [], [], [], set()
    for path, folder_name in images:
        if folder_name is None:
            excluded.append((str(path), "file name does not end in _<number>"))
            continue
        idx = by_key.get(artist_key(folder_name))
        if idx is None:
            unmatched.add(folder_name)
            excluded.append((str(path), f"artist {folder_name!r} not in artists.csv"))
            continue
        files.append(str(path))
        artist_labels.append(idx)
    if not files:
        raise UserError(
            f"best-artworks: no image under {root} matches an artist in artists.csv "
            f"(looked in images/images/ and resized/resized/)."
        )
    artist = np.asarray(artist_labels, dtype=np.int64)
    style_of_artist = np.array(
        [style_names.index(m) if m else MISSING for m in movements], dtype=np.int64
    )
    notes = [f"best-artworks: read {layout}; style = first movement of 'genre'"]
    if unmatched:
        notes.append(
            f"best-artworks: {len(unmatched)} artist name(s) not in artists.csv "
            f"({', '.join(sorted(unmatched)[:5])}); their images are excluded"
        )
    return Catalog(
        files=files,
        labels={"artist": artist, "style": style_of_artist[artist]},
        class_names={"artist": artists, "style": style_names},
        source="best-artworks",
        notes=notes,
        excluded=excluded,
    )


def _read_artists(path: Path) -> tuple[list[str], list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "name" not in reader.fieldnames:
            raise UserError(
                f"{path}: no 'name' column (header: {reader.fieldnames}). Expected "
                f"id,name,years,genre,..."
            )
        names, movements = [], []
        seen: dict[str, int] = {}
        for number, row in enumerate(reader, start=2):
            name = (row.get("name") or "").strip()
            if not name:
                raise UserError(f"{path}:{number}: empty artist name. Fix the row.")
            key = artist_key(name)
            if key in seen:
                raise UserError(
                    f"{path}:{number}: artist {name!r} repeats line {seen[key]}. "
                    f"Keep one row per artist."
                )
            seen[key] = number
            names.append(unicodedata.normalize("NFC", name))
            movements.append(first_movement(row.get("genre") or ""))
    return names, movements


def _list_images(root: Path) -> tuple[list[tuple[Path, str | None]], str]:
    for nested in (root / "images" / "images", root / "images"):
        if nested.is_dir() and any(p.is_dir() for p in nested.iterdir()):
            found = [
                (p, folder.name)
                for folder in sorted(nested.iterdir())
                if folder.is_dir()
                for p in sorted(folder.iterdir())
                if p.suffix.lower() in IMAGE_SUFFIXES
            ]
            return found, str(nested.relative_to(root))
    for flat in (root / "resized" / "resized", root / "resized"):
        if flat.is_dir():
            found = []
            for p in sorted(flat.iterdir()):
                match = _NUMBERED.match(p.stem)
                if p.suffix.lower() in IMAGE_SUFFIXES:
                    found.append((p, match["name"] if match else None))
            return found, str(flat.relative_to(root))
    raise UserError(
        f"best-artworks: {root} has neither images/images/<Artist>/ nor "
        f"resized/resized/. Pass the dataset folder."
    )


def _repair_mojibake(text: str) -> str:
    # Zip tools often store UTF-8 names that get read back as cp437 or cp1252
    # ("Du╠êrer"); undo that when the bytes decode cleanly as UTF-8.
    if text.isascii():
        return text
    for codec in ("cp437", "cp1252", "latin-1"):
        try:
            fixed = text.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if fixed != text:
            return fixed
    return text
