"""``python -m keras_art.export``: a finished run as a TF Serving SavedModel or a
TFLite file.

    python -m keras_art.export --run runs/artist-cnn_rnn-20261122-101500 --out models
    python -m keras_art.export --run RUN --out models --name artist --version 3
    python -m keras_art.export --run RUN --out models --format tflite --quantize float16

A thin wrapper over `keras_art.export.export_saved_model` (writes
``<out>/<name>/<version>/``, prints that path and the signatures) and
`keras_art.export.tflite.export_tflite` (writes ``<out>/<name>[.<quantize>].tflite``
and its ``.json``, prints the path, size, quantization and Flex ops, and with
``--compare`` the top-1 agreement with the Keras model on the run's test split).
"""

from __future__ import annotations

import sys

from keras_art.cli import ArgumentParser, quiet_tensorflow, run_command
from keras_art.errors import UserError
from keras_art.registry import DEFAULT_TOP_K, QUANTIZE_MODES
from keras_art.run_dir import CHECKPOINTS

EXPORT_FORMATS = ("saved_model", "tflite")

# The library's parameter names -> this command's flags (its errors' words).
FLAGS = {
    "run_dir": "--run",
    "out_base": "--out",
    "name": "--name",
    "version": "--version",
    "top_k": "--top-k",
    "checkpoint": "--checkpoint",
    "quantize": "--quantize",
    "calibration": "--no-calibration",
}


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m keras_art.export",
        description="Export a finished run as a SavedModel for TF Serving "
        "(BASE/NAME/VERSION/) or a TFLite file (BASE/NAME[.QUANTIZE].tflite).",
    )
    p.add_argument("--run", required=True, help="the finished run directory")
    p.add_argument("--out", required=True, metavar="BASE", help="model base path")
    p.add_argument("--name", help="model name (default: the run directory's name)")
    p.add_argument(
        "--version",
        type=int,
        metavar="N",
        help="integer version (default: one more than the highest under BASE/NAME); "
        "saved_model only",
    )
    p.add_argument(
        "--top-k",
        type=int,
        default=DEFAULT_TOP_K,
        metavar="K",
        help="classes per top-k output",
    )
    p.add_argument("--checkpoint", choices=CHECKPOINTS, default="best")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="saved_model")
    p.add_argument(
        "--no-calibration",
        dest="calibration",
        action="store_false",
        help="export the raw probabilities, without the run's temperature scaling "
        "(recorded in the metadata either way)",
    )
    p.add_argument(
        "--quantize",
        choices=QUANTIZE_MODES,
        help="tflite only: none (float32, the default), float16 (float16 weights) or "
        "dynamic (int8 weights)",
    )
    p.add_argument(
        "--compare",
        action="store_true",
        help="tflite only: also report top-1 agreement with the Keras model on the "
        "run's test split",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    def _run() -> int:
        args = build_parser().parse_args(argv)
        _check_format_flags(args)
        quiet_tensorflow()
        if args.format == "tflite":
            return _export_tflite(args)
        from keras_art.export import export_saved_model
        from keras_art.export.graph_scan import describe_signatures, format_signatures

        path = export_saved_model(
            args.run,
            args.out,
            name=args.name,
            version=args.version,
            top_k=args.top_k,
            checkpoint=args.checkpoint,
            calibration=args.calibration,
        )
        print(path)
        print(format_signatures(describe_signatures(path)))
        return 0

    # Library progress goes to stderr: stdout is the path, then the signatures.
    return run_command(_run, info_stream=sys.stderr, flags=FLAGS)


def _check_format_flags(args) -> None:
    """Flags of the other format are mistakes, not silently ignored."""
    if args.format == "tflite":
        if args.version is not None:
            raise UserError(
                "--version applies to --format saved_model (TF Serving's version "
                "folders); leave it out with --format tflite."
            )
        return
    for flag, value in (("--quantize", args.quantize), ("--compare", args.compare)):
        if value:
            raise UserError(
                f"{flag} applies to --format tflite only: add --format tflite or drop "
                f"{flag}."
            )


def _export_tflite(args) -> int:
    from keras_art.export.tflite import compare_with_keras, export_tflite
    from keras_art.models.exported import read_sidecar

    path = export_tflite(
        args.run,
        args.out,
        name=args.name,
        quantize=args.quantize or "none",
        checkpoint=args.checkpoint,
        top_k=args.top_k,
        calibration=args.calibration,
    )
    meta = read_sidecar(path)
    print(path)
    print(
        f"size {meta['size_bytes'] / 1e6:.2f} MB, quantize {meta['quantize']}, "
        f"ops {meta['ops']}, Flex ops: {', '.join(meta['select_tf_ops']) or 'none'}"
    )
    print(
        "serving_default(pixels float32["
        + ", ".join(map(str, meta["input"]["shape"]))
        + "]) -> "
        + ", ".join(n for task in meta["outputs"].values() for n in task.values())
    )
    if args.compare:
        c = compare_with_keras(args.run, path, checkpoint=args.checkpoint)
        print(
            f"vs Keras on {c['split']} ({c['n']} images): agreement "
            f"{c['agreement']:.4f}, top-1 keras {c['top1_keras']:.4f} / tflite "
            f"{c['top1_tflite']:.4f}, max |prob diff| {c['max_abs_prob_diff']:.2g}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
