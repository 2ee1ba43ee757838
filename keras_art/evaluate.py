"""``python -m keras_art.evaluate``: a finished run's report (metrics, plots, audit).

    python -m keras_art.evaluate --run runs/artist-cnn_rnn-20261122-101500
    python -m keras_art.evaluate --run RUN --split val --tta --audit --gradcam 8
    python -m keras_art.evaluate --run RUN --data /data/best-artworks
    python -m keras_art.evaluate --run RUN --shards /data/shards/style-576

A thin wrapper over `keras_art.evaluation.evaluate`; the report lands in
``RUN/eval/<split>/`` (``report.html`` is the page to open), or with ``--shards DIR``
(the split read from TFRecord shards) in ``RUN/eval/<split>-shards-<DIR's name>/``.
"""

from __future__ import annotations

from keras_art.cli import ArgumentParser, quiet_tensorflow, run_command
from keras_art.registry import DATASET_FORMATS, DEFAULT_TOP_K


def build_parser() -> ArgumentParser:
    from keras_art.models.run_reader import SPLITS
    from keras_art.run_dir import CHECKPOINTS

    p = ArgumentParser(
        prog="python -m keras_art.evaluate",
        description="Evaluate a finished run: metrics, plots, label audit, Grad-CAM.",
    )
    p.add_argument("--run", required=True, help="the run directory to evaluate")
    p.add_argument("--split", choices=SPLITS, default="test")
    p.add_argument("--checkpoint", choices=CHECKPOINTS, default="best")
    p.add_argument(
        "--tta", action="store_true", help="also horizontal flip + multi-scale views"
    )
    p.add_argument(
        "--gradcam", type=int, default=0, metavar="N", help="Grad-CAM of N images"
    )
    p.add_argument(
        "--tta-sizes",
        help="comma list of TTA image sizes (default: seed 002's 224/260/296 "
        "scaled to the run's size, or its augment.multi_size)",
    )
    p.add_argument("--audit", action="store_true", help="flag suspicious labels")
    p.add_argument("--data", help="evaluate on another collection instead")
    p.add_argument("--format", choices=[f for f in DATASET_FORMATS if f != "sample"])
    p.add_argument(
        "--shards",
        metavar="DIR",
        help="read the split's images from the TFRecord shards in DIR (written by "
        "data_scripts.make_tfrecords from the run's data) instead of the files",
    )
    p.add_argument(
        "--top-k", type=int, default=DEFAULT_TOP_K, help="top-k accuracy besides top-1"
    )
    p.add_argument(
        "--bootstrap", type=int, default=1000, help="resamples for 95%% intervals"
    )
    return p


# The library's parameter names (`evaluate`'s and the shard checks' ``shard_dir``)
# and config keys -> this command's flags (its errors' words).
FLAGS = {
    "run_dir": "--run",
    "split": "--split",
    "checkpoint": "--checkpoint",
    "tta_sizes": "--tta-sizes",
    "gradcam": "--gradcam",
    "data": "--data",
    "data.path": "--data",
    "data_format": "--format",
    "data.format": "--format",
    "shards": "--shards",
    "shard_dir": "--shards",
    "top_k": "--top-k",
    "bootstrap": "--bootstrap",
}


def main(argv: list[str] | None = None) -> int:
    def _run() -> int:
        args = build_parser().parse_args(argv)
        if args.format and not args.data:
            from keras_art.errors import UserError

            raise UserError("--format needs --data (the collection it describes).")
        sizes = _sizes(args.tta_sizes) if args.tta_sizes else None
        quiet_tensorflow()
        from keras_art.evaluation import evaluate

        result = evaluate(
            args.run,
            split=args.split,
            checkpoint=args.checkpoint,
            tta=args.tta or bool(sizes),
            tta_sizes=sizes,
            gradcam=args.gradcam,
            audit=args.audit,
            data=args.data,
            data_format=args.format,
            shards=args.shards,
            top_k=args.top_k,
            bootstrap=args.bootstrap,
        )
        _print_headline(result)
        return 0

    return run_command(_run, flags=FLAGS)


def _sizes(text: str) -> list[int]:
    from keras_art.errors import UserError

    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 32:
        raise UserError(
            f"--tta-sizes {text}: expected sizes of at least 32 px, e.g. 224,260,296."
        )
    return sizes


def _print_headline(result: dict) -> None:
    print(f"{result['split']}: {result['split_note']}")
    print(f"images: {result['image_source']['description']}")
    print(f"{'task':<10}{'top1':>8}{'top-k':>8}{'macroF1':>9}{'wF1':>8}   top1 95% CI")
    for task, m in result["per_task"].items():
        topk = next((v for k, v in m.items() if k.startswith("top") and k != "top1"), 0)
        lo, hi = m["bootstrap"]["top1"]
        print(
            f"{task:<10}{m['top1']:>8.3f}{topk:>8.3f}{m['macro_f1']:>9.3f}"
            f"{m['weighted_f1']:>8.3f}   [{lo:.3f}, {hi:.3f}]"
        )


if __name__ == "__main__":
    raise SystemExit(main())
