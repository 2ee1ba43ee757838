"""``python -m keras_art.export``: a finished run as a TF Serving SavedModel.

    python -m keras_art.export --run runs/artist-cnn_rnn-20261122-101500 --out models
    python -m keras_art.export --run RUN --out models --name artist --version 3

A thin wrapper over `keras_art.export.export_saved_model`; writes
``<out>/<name>/<version>/`` and prints that path and the signatures.
"""

from __future__ import annotations

import sys

from keras_art.cli import ArgumentParser, quiet_tensorflow, run_command
from keras_art.errors import UserError
from keras_art.models.run_reader import CHECKPOINTS

FORMATS = ("saved_model", "tflite")


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m keras_art.export",
        description="Export a finished run as a SavedModel for TF Serving "
        "(BASE/NAME/VERSION/).",
    )
    p.add_argument("--run", required=True, help="the finished run directory")
    p.add_argument("--out", required=True, metavar="BASE", help="model base path")
    p.add_argument("--name", help="model name (default: the run directory's name)")
    p.add_argument(
        "--version",
        type=int,
        metavar="N",
        help="integer version (default: one more than the highest under BASE/NAME)",
    )
    p.add_argument(
        "--top-k", type=int, default=5, metavar="K", help="classes per top-k output"
    )
    p.add_argument("--checkpoint", choices=CHECKPOINTS, default="best")
    p.add_argument("--format", choices=FORMATS, default="saved_model")
    return p


def main(argv: list[str] | None = None) -> int:
    def _run() -> int:
        args = build_parser().parse_args(argv)
        if args.format != "saved_model":
            raise UserError(
                f"--format {args.format}: not available yet; use --format saved_model."
            )
        quiet_tensorflow()
        from keras_art.export import export_saved_model
        from keras_art.export.graph_scan import describe_signatures, format_signatures

        path = export_saved_model(
            args.run,
            args.out,
            name=args.name,
            version=args.version,
            top_k=args.top_k,
            checkpoint=args.checkpoint,
        )
        print(path)
        print(format_signatures(describe_signatures(path)))
        return 0

    # Library progress goes to stderr: stdout is the path, then the signatures.
    return run_command(_run, info_stream=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
