"""WikiArt parquet shards (docs/datasets.md section 2), streamed batch by batch.

Columns: ``image`` (struct ``{bytes, path}``) and int labels ``artist``, ``genre``,
``style``. Label names come from the Hugging Face ``features`` JSON in the schema
metadata, else from ``data.names_file`` (JSON ``{task: [names]}``).

Image bytes are written ONCE to
``<cache_dir>/parquet/<dataset id>/<shard stem>/<row:06d>.<ext>`` so the one
file-based pipeline serves every source. A shard whose extraction finished leaves
``index.json`` beside its images; later runs read only its label columns.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

from keras_art.atomic_files import atomic_write_bytes, atomic_write_json
from keras_art.data.catalog_type import MISSING, Catalog
from keras_art.errors import ParameterError, UserError
from keras_art.registry import TASKS

BATCH_ROWS = 64  # rows in memory at a time: a few MB of JPEG bytes
_SPLIT_PREFIX = {"train": "train", "validation": "val", "val": "val", "test": "test"}


def read_parquet(data_cfg, task: str | None = None) -> Catalog:
    """Read every shard under ``data_cfg.path`` (file, folder or ``folder/data``)."""
    if not data_cfg.path:
        raise ParameterError(
            "{data.format} parquet needs {data.path} (a .parquet file or folder)."
        )
    root = Path(data_cfg.path).expanduser()
    shards = find_shards(root)
    import pyarrow.parquet as pq

    first = pq.ParquetFile(shards[0])
    tasks = [t for t in TASKS if t in first.schema_arrow.names]
    if "image" not in first.schema_arrow.names or not tasks:
        raise UserError(
            f"{shards[0]}: expected an 'image' column and at least one of "
            f"{', '.join(TASKS)}; found {', '.join(first.schema_arrow.names)}."
        )
    names = _label_names(first, tasks, data_cfg.names_file, shards[0])
    out_root = Path(data_cfg.cache_dir).expanduser() / "parquet" / dataset_id(root)

    files: list[str] = []
    labels: dict[str, list[np.ndarray]] = {t: [] for t in tasks}
    splits: list[str] = []
    excluded: list[tuple[str, str]] = []
    for shard in shards:
        shard_files, shard_labels, shard_excluded = _read_shard(
            shard, tasks, names, out_root / shard.stem
        )
        files.extend(shard_files)
        for t in tasks:
            labels[t].append(shard_labels[t])
        excluded.extend(shard_excluded)
        prefix = shard.name.split("-", 1)[0].lower()
        splits.extend([_SPLIT_PREFIX.get(prefix, "")] * len(shard_files))

    catalog = Catalog(
        files=files,
        labels={t: np.concatenate(labels[t]) for t in tasks},
        class_names={t: list(names[t]) for t in tasks},
        source="parquet",
        official_split=_official(splits),
        notes=[f"parquet: {len(shards)} shard(s), {len(files)} image(s)"],
        excluded=excluded,
    )
    if data_cfg.drop_unknown:
        drop_unknown_classes(catalog)
    return catalog


def find_shards(root: Path) -> list[Path]:
    """The ``*.parquet`` files at ``root`` (a file, a folder, or ``folder/data``)."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise ParameterError(
            f"{{data.path}} {root}: no such file or folder. Check the path."
        )
    shards = sorted(root.glob("*.parquet")) or sorted(root.glob("data/*.parquet"))
    if not shards:
        raise ParameterError(
            f"{{data.path}} {root}: no *.parquet files here or in data/. Pass the "
            f"folder holding the shards."
        )
    return shards


def dataset_id(root: Path) -> str:
    """A short, stable folder name for a dataset path (name + hash of the full path)."""
    resolved = str(root.expanduser().resolve())
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", root.resolve().name)[:40] or "data"
    digest = hashlib.sha1(resolved.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{tag}-{digest[:10]}"


def image_extension(data: bytes) -> str:
    """File extension from the magic bytes (``bin`` when unknown)."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:2] == b"BM":
        return "bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tif"
    return "bin"


def drop_unknown_classes(catalog: Catalog) -> None:
    """Turn "Unknown Artist"/"Unknown Genre" labels into -1 and remove the class."""
    for task, names in catalog.class_names.items():
        unknown = [i for i, n in enumerate(names) if n.lower().startswith("unknown")]
        if not unknown:
            continue
        remap = np.full(len(names), MISSING, dtype=np.int64)
        kept = [i for i in range(len(names)) if i not in unknown]
        remap[kept] = np.arange(len(kept))
        lab = catalog.labels[task]
        hit = int(np.sum(np.isin(lab, unknown)))
        catalog.labels[task] = np.where(lab >= 0, remap[np.maximum(lab, 0)], MISSING)
        catalog.class_names[task] = [names[i] for i in kept]
        catalog.notes.append(
            f"parquet: {task} class(es) {', '.join(names[i] for i in unknown)} "
            f"dropped ({hit} label(s) set to missing; data.drop_unknown=false keeps "
            f"them)"
        )


def _official(splits: list[str]) -> np.ndarray | None:
    if len(set(splits)) <= 1:
        return None  # one split only (the 81k release): no official split
    return np.array(splits, dtype=object)


def _label_names(pf, tasks, names_file, shard) -> dict[str, list[str]]:
    meta = pf.schema_arrow.metadata or {}
    raw = meta.get(b"huggingface")
    names: dict[str, list[str]] = {}
    if raw:
        try:
            features = json.loads(raw)["info"]["features"]
        except (ValueError, KeyError, TypeError):
            features = {}
        for t in tasks:
            feature = features.get(t) or {}
            if isinstance(feature.get("names"), list):
                names[t] = [str(n) for n in feature["names"]]
    missing = [t for t in tasks if t not in names]
    if missing and names_file:
        path = Path(names_file).expanduser()
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(
                f"data.names_file {names_file}: cannot read JSON ({exc}). Pass a file "
                f'like {{"style": ["Abstract_Expressionism", ...]}}.'
            ) from None
        for t in missing:
            if isinstance(loaded, dict) and isinstance(loaded.get(t), list):
                names[t] = [str(n) for n in loaded[t]]
        missing = [t for t in tasks if t not in names]
    if missing:
        raise UserError(
            f"{shard}: no label names for {', '.join(missing)} in the shard metadata. "
            f'Set data.names_file=NAMES.json ({{"{missing[0]}": [...]}}).'
        )
    return names


def _read_shard(shard: Path, tasks, names, out_dir: Path):
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(shard)
    stat = shard.stat()
    stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    index_path = out_dir / "index.json"
    index = _load_index(index_path, stamp)
    columns = list(tasks) if index is not None else ["image", *tasks]
    exts: list[str | None] = []
    labels = {t: [] for t in tasks}
    row = 0
    for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=columns):
        data = batch.to_pydict()
        for t in tasks:
            labels[t].extend(_check_labels(data[t], len(names[t]), shard, row, t))
        if index is None:
            for image in data["image"]:
                exts.append(_extract(image, out_dir, row))
                row += 1
        else:
            row += batch.num_rows
    if index is None:
        atomic_write_json(index_path, {**stamp, "ext": exts})
    else:
        exts = index["ext"]
        if len(exts) != row:
            raise UserError(
                f"{index_path} does not match {shard}; delete {out_dir} and re-run."
            )
    files, excluded, keep = [], [], []
    for i, ext in enumerate(exts):
        if ext is None:
            excluded.append((f"{shard}#row{i}", "no image bytes in the shard"))
        else:
            keep.append(i)
            files.append(str(out_dir / f"{i:06d}.{ext}"))
    return files, {t: np.asarray(labels[t], np.int64)[keep] for t in tasks}, excluded


def _load_index(path: Path, stamp: dict) -> dict | None:
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    same = all(index.get(k) == v for k, v in stamp.items())
    return index if same and isinstance(index.get("ext"), list) else None


def _check_labels(values, num_classes, shard, start, task) -> list[int]:
    out = []
    for offset, v in enumerate(values):
        if v is None:
            out.append(MISSING)
            continue
        if not 0 <= int(v) < num_classes:
            raise UserError(
                f"{shard}: row {start + offset}: {task} label {v} is out of range "
                f"0..{num_classes - 1}. Fix the shard or data.names_file."
            )
        out.append(int(v))
    return out


def _extract(image, out_dir: Path, row: int) -> str | None:
    data = image.get("bytes") if isinstance(image, dict) else None
    if not data:
        return None
    ext = image_extension(data)
    target = out_dir / f"{row:06d}.{ext}"
    if not (target.is_file() and target.stat().st_size == len(data)):
        atomic_write_bytes(target, data)
    return ext
