"""Guess a dataset's layout from what is in its folder, so ``data.format`` is
optional."""

from __future__ import annotations

from pathlib import Path

from keras_art.errors import ParameterError


def infer_format(path: str) -> str:
    """Return the reader name for the dataset at ``path``, or raise `ParameterError`."""
    root = Path(path).expanduser()
    if not root.exists():
        raise ParameterError(
            f"{{data.path}} {path}: no such file or folder. Check the path."
        )
    if root.is_file():
        if root.suffix == ".parquet":
            return "parquet"
        raise ParameterError(
            f"{{data.path}} {path} is a file; pass the dataset folder (and "
            f"{{data.format}} if it "
            f"cannot be guessed)."
        )
    if (root / "wikiart_csv").is_dir() or (root / "Style").is_dir():
        return "wikiart"
    if (root / "artists.csv").is_file():
        return "best-artworks"
    if any(root.glob("*.parquet")) or any(root.glob("data/*.parquet")):
        return "parquet"
    if (root / "dataset_info.json").is_file() or any(root.glob("*/dataset_info.json")):
        return "tfds"
    if any(p.is_dir() for p in root.iterdir()):
        return "folder"
    raise ParameterError(
        f"{{data.path}} {path}: cannot tell the dataset layout. Pass {{data.format}} "
        f"(wikiart, parquet, best-artworks, folder or tfds)."
    )
