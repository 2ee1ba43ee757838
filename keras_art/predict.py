"""``python -m keras_art.predict``: classify images with an exported or trained model.

    python -m keras_art.predict --model serving/painters painting.jpg folder/
    python -m keras_art.predict --model painters.tflite folder/ --top-k 3 --csv out.csv
    python -m keras_art.predict --model runs/RUN folder/ --gradcam gradcam/

A thin wrapper over `keras_art.inference.predict`. ``--model`` is a SavedModel
folder, TF Serving's ``BASE/NAME`` folder (its highest version), a ``.tflite`` file
(with its ``.json`` sidecar) or a finished run directory. Stdout gets, per image, the
path and its top-k classes; progress, skipped files and the CSV's path go to stderr.
"""

from __future__ import annotations

import sys

from keras_art.cli import ArgumentParser, quiet_tensorflow, run_command
from keras_art.registry import DEFAULT_TOP_K


def build_parser() -> ArgumentParser:
    from keras_art.inference.predict import CSV_COLUMNS

    p = ArgumentParser(
        prog="python -m keras_art.predict",
        description="Classify images with a SavedModel, a .tflite file or a "
        "finished run directory.",
    )
    p.add_argument(
        "--model",
        required=True,
        help="SavedModel folder, TF Serving BASE/NAME folder, .tflite file or run "
        "directory",
    )
    p.add_argument(
        "inputs", nargs="+", metavar="IMAGE_OR_DIR", help="files and folders"
    )
    p.add_argument(
        "--top-k", type=int, default=DEFAULT_TOP_K, metavar="K", help="classes shown"
    )
    p.add_argument(
        "--csv",
        metavar="F",
        help=f"also write one row per image, task and rank ({', '.join(CSV_COLUMNS)})",
    )
    p.add_argument(
        "--gradcam",
        metavar="OUT_DIR",
        help="write a Grad-CAM overlay PNG per image (run directories only)",
    )
    p.add_argument(
        "--batch-size", type=int, default=32, metavar="N", help="images per call"
    )
    p.add_argument(
        "--no-calibration",
        dest="calibration",
        action="store_false",
        help="show the raw probabilities, without the model's temperature scaling",
    )
    return p


# The library's parameter names -> this command's flags (its errors' words).
FLAGS = {
    "model": "--model",
    "run_dir": "--model",  # a run directory passed as the model
    "inputs": "IMAGE_OR_DIR",
    "top_k": "--top-k",
    "csv": "--csv",
    "gradcam": "--gradcam",
    "batch_size": "--batch-size",
    "calibration": "--no-calibration",
}


def main(argv: list[str] | None = None) -> int:
    def _run() -> int:
        args = build_parser().parse_args(argv)
        quiet_tensorflow()
        from keras_art.inference import format_predictions, predict

        result = predict(
            args.model,
            args.inputs,
            top_k=args.top_k,
            csv=args.csv,
            gradcam=args.gradcam,
            batch_size=args.batch_size,
            calibration=args.calibration,
        )
        print(format_predictions(result))
        return 0

    # Progress and skipped files go to stderr: stdout is the predictions.
    return run_command(_run, info_stream=sys.stderr, flags=FLAGS)


if __name__ == "__main__":
    raise SystemExit(main())
