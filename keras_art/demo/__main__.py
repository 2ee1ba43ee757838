"""``python -m keras_art.demo``: classify paintings in a local web app.

    python -m keras_art.demo --model runs/RUN
    python -m keras_art.demo --model models/ --port 8000 --top-k 3

A thin wrapper over `keras_art.demo.app.launch_demo`. ``--model`` is a run
directory, a SavedModel (or TF Serving's ``BASE/NAME``), a ``.tflite`` file, or a
folder holding some (the page lets you choose). The server listens on 127.0.0.1
(``--host``, ``--port`` change it) until Ctrl+C and never shares publicly. Without
the ``demo`` extra (Gradio) it says how to install it, exit 2.
"""

from __future__ import annotations

from keras_art.cli import ArgumentParser, quiet_tensorflow, run_command
from keras_art.demo.gradio_extra import DEFAULT_HOST, DEFAULT_PORT, require_gradio
from keras_art.registry import DEFAULT_TOP_K


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m keras_art.demo",
        description="Classify paintings in a local web app (Gradio): drop images, "
        "see the top classes per task and, for a run directory, Grad-CAM and the "
        "cnn_rnn head's attention.",
    )
    p.add_argument(
        "--model",
        required=True,
        help="run directory, SavedModel folder, TF Serving BASE/NAME folder, "
        ".tflite file, or a folder holding some",
    )
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}: this machine only)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0: the first free one from it)",
    )
    p.add_argument(
        "--top-k",
        type=int,
        default=DEFAULT_TOP_K,
        metavar="K",
        help="classes shown per task at first",
    )
    p.add_argument(
        "--no-calibration",
        dest="calibration",
        action="store_false",
        help="show the model's raw probabilities, not calibrated ones",
    )
    return p


# The library's parameter names -> this command's flags (its errors' words).
FLAGS = {
    "model": "--model",
    "run_dir": "--model",  # a run directory passed as the model
    "host": "--host",
    "port": "--port",
    "top_k": "--top-k",
}


def main(argv: list[str] | None = None) -> int:
    def _run() -> int:
        args = build_parser().parse_args(argv)
        require_gradio()  # before TensorFlow loads: the install hint comes fast
        quiet_tensorflow()
        from keras_art.demo.app import launch_demo

        launch_demo(
            args.model,
            host=args.host,
            port=args.port,
            top_k=args.top_k,
            calibration=args.calibration,
        )
        return 0

    return run_command(_run, flags=FLAGS)


if __name__ == "__main__":
    raise SystemExit(main())
