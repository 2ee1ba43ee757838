"""``python -m data_scripts.make_tfrecords``: write a dataset as TFRecord shards.

    python -m data_scripts.make_tfrecords --task artist --out shards/sample
    python -m data_scripts.make_tfrecords --data /data/wikiart-release --task style \\
        --out /data/shards/style --shard-size 2048
    python -m data_scripts.make_tfrecords --data /data/wikiart-release --task style \\
        --out /data/shards/style-576 --short-side 576 --quality 90

The images are prepared exactly as a training run prepares them (validation, subsets,
splits), then each split is written as ``<split>-NNNNN-of-NNNNN.tfrecord`` with the
original encoded bytes, plus ``manifest.json``. With ``--short-side S`` (or
``--max-side S``) every image whose short (long) side exceeds S is re-encoded once
as an RGB JPEG of ``--quality`` with that side S, aspect ratio kept; smaller images
keep their bytes. The manifest's ``images`` records the bound, S and the quality.
The work is `keras_art.data.split_shards.make_tfrecords`; this script maps
flags. Why the short side and how large: `keras_art.data.pipeline.reencode` (about 1.5x
``augment.image_size``; 2x keeps every RandomResizedCrop at full resolution).
A stopped conversion resumes where it stopped when re-run with the same flags:
finished shards are kept (`keras_art.data.pipeline.tfrecord`); other flags into
the same ``--out`` are an error.

Records are written in a seeded shuffled order (``data.split_seed``): readers list
files sorted by class, and a TFRecord split is read as one stream through a shuffle
buffer far smaller than the split. Train from them with ``--set
input.tfrecords=OUT`` and the same data settings (the run checks the manifest's
classes and splits against its own).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data_scripts._common import DATA_FLAGS, add_data_flags, config_from_args
from keras_art.cli import ArgumentParser, quiet_tensorflow, run_command
from keras_art.config import TASK_CHOICES
from keras_art.data.pipeline.reencode import DEFAULT_QUALITY, ImageEncoding
from keras_art.errors import UserError


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m data_scripts.make_tfrecords",
        description="Write a dataset's splits as TFRecord shards + manifest.json.",
    )
    add_data_flags(p)
    p.add_argument(
        "--task", choices=TASK_CHOICES, help="label (default: the config's, artist)"
    )
    p.add_argument("--out", required=True, help="folder for the shards")
    p.add_argument("--shard-size", type=int, default=1024, help="records per shard")
    bound = p.add_mutually_exclusive_group()
    bound.add_argument(
        "--short-side",
        type=int,
        metavar="S",
        help="re-encode images whose short side exceeds S to short side S "
        "(suggested: 1.5x augment.image_size)",
    )
    bound.add_argument(
        "--max-side",
        type=int,
        metavar="S",
        help="re-encode images whose long side exceeds S to long side S",
    )
    p.add_argument(
        "--quality",
        type=int,
        metavar="Q",
        help=f"JPEG quality of re-encoded images (default {DEFAULT_QUALITY})",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="re-encoding threads (default: all)",
    )
    return p


def encoding_from_args(args) -> ImageEncoding:
    """The `ImageEncoding` of ``--short-side``/``--max-side``/``--quality``."""
    if args.short_side is None and args.max_side is None:
        if args.quality is not None:
            raise UserError(
                "--quality applies to re-encoded images: add --short-side S or "
                "--max-side S, or drop --quality to keep the original bytes."
            )
        return ImageEncoding()
    bound = "short_side" if args.short_side is not None else "max_side"
    side = args.short_side if args.short_side is not None else args.max_side
    quality = DEFAULT_QUALITY if args.quality is None else args.quality
    return ImageEncoding(bound, side, quality).validate()


def make_tfrecords(*args, **kwargs) -> dict[str, Any]:
    """`keras_art.data.split_shards.make_tfrecords`, imported when called so that
    ``--help`` and a mistyped flag answer before TensorFlow loads."""
    from keras_art.data.split_shards import make_tfrecords

    return make_tfrecords(*args, **kwargs)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    encoding = encoding_from_args(args)
    cfg = config_from_args(args)
    manifest = make_tfrecords(cfg, args.out, args.shard_size, encoding, args.threads)
    print(
        f"Wrote TFRecord shards to {Path(args.out)} (source: {manifest['source']}; "
        f"images: {_describe(manifest['images'])})"
    )
    print("| split | images | re-encoded | shards | MB | MB of originals |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for split, entry in manifest["splits"].items():
        print(
            f"| {split} | {entry['count']} | {entry['reencoded']} | "
            f"{len(entry['shards'])} | {entry['bytes'] / 1e6:.1f} | "
            f"{entry['source_bytes'] / 1e6:.1f} |"
        )
    classes = ", ".join(
        f"{t}: {len(manifest['class_names'][t])}" for t in manifest["tasks"]
    )
    print(f"classes: {classes}")
    return 0


def _describe(images: dict[str, Any]) -> str:
    if images["encoding"] == "original":
        return "original bytes"
    return (
        f"JPEG q{images['quality']}, {images['bound'].replace('_', ' ')} at most "
        f"{images['side']} px"
    )


# The library's parameter names (`make_tfrecords`', `ImageEncoding`'s) and config
# keys -> this script's flags (its errors' words).
FLAGS = {
    **DATA_FLAGS,
    "out": "--out",
    "shard_size": "--shard-size",
    "short_side": "--short-side",
    "max_side": "--max-side",
    "quality": "--quality",
    "threads": "--threads",
}


def main(argv: list[str] | None = None) -> int:
    return run_command(lambda: _main(argv), flags=FLAGS)


if __name__ == "__main__":
    raise SystemExit(main())
