"""``python -m keras_art.train``: fine-tune a painting classifier.

    python -m keras_art.train --task artist                  # embedded sample, offline
    python -m keras_art.train --task style --data /data/wikiart-release --format wikiart
    python -m keras_art.train --resume runs/artist-cnn_rnn-20261122-101500
    python -m keras_art.train --task artist --seeds 0,1,2   # a group of 3 repeats
    python -m keras_art.train --task artist --preset seed002 --data DIR \
        --weights none --init-from runs/artist-gap-20261122-101500

A thin wrapper over `keras_art.training.train.train`: it parses flags into one `Config`,
sets the process-wide policies (mixed precision, determinism) and calls the library.
"""

from __future__ import annotations

from pathlib import Path

from keras_art.cli import (
    FLAG_KEYS,
    ArgumentParser,
    add_config_flags,
    config_error_flags,
    config_from_flags,
    quiet_tensorflow,
    run_command,
)
from keras_art.config import (
    BACKBONES,
    HEADS,
    MIXED_PRECISION,
    STRATEGIES,
    TASK_CHOICES,
    Config,
    config_from_dict,
)


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m keras_art.train",
        description="Fine-tune ResNet50 + a CNN-RNN/GAP/SPP head on paintings.",
    )
    p.add_argument(
        "--task", choices=TASK_CHOICES, help="label to learn (default: artist)"
    )
    add_config_flags(p, default_preset=None)
    p.add_argument("--workdir", help="parent folder of run directories (default: runs)")
    p.add_argument("--run-name", help="run directory name (default: task-head-time)")
    p.add_argument("--head", choices=HEADS)
    p.add_argument("--backbone", choices=tuple(BACKBONES))
    p.add_argument("--weights", help="imagenet, none, or a path to a local .h5")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--image-size", type=int)
    p.add_argument("--mixed-precision", choices=MIXED_PRECISION)
    p.add_argument("--strategy", choices=STRATEGIES)
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--seeds",
        metavar="S1,S2,...",
        help="train once per seed (train.seed; the data split stays fixed) into "
        "one group of runs; re-running the command continues the group",
    )
    p.add_argument(
        "--init-from",
        metavar="RUN_OR_KERAS_FILE",
        help="start from another run's best model (or a .keras file), layer by "
        "layer where names and weight shapes match; the new run records what it "
        "loaded and skipped (add --weights none to skip the ImageNet weights)",
    )
    p.add_argument(
        "--no-report",
        dest="report",
        action="store_false",
        default=None,
        help="skip the test report written to RUN/eval/test/ at the end",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="RUN_DIR",
        help="continue an interrupted run (default: the newest in --workdir)",
    )
    return p


def error_flags() -> dict[str, str]:
    """The library's parameter names and config keys -> this command's flags (its
    errors' words); ``run_dir`` is the run a resume checks its data against."""
    return config_error_flags(build_parser(), FLAG_KEYS) | {
        "run_dir": "--resume",
        "resume": "--resume",
        "seeds": "--seeds",
    }


def config_from_args(args) -> tuple[Config, set[str]]:
    """Resolve preset -> --config -> --set -> explicit flags into one `Config`."""
    if args.resume:
        return _resumed_config(args), set()
    return config_from_flags(args)


def _resumed_config(args) -> Config:
    from keras_art.run_dir import find_resumable

    run = find_resumable(args.resume, args.workdir or "runs")
    cfg = config_from_dict(run.read_config(), source=str(run.config))
    cfg.workdir, cfg.run_name = str(run.path.parent), run.name
    return cfg.validate()


def main(argv: list[str] | None = None) -> int:
    def _run() -> int:
        args = build_parser().parse_args(argv)
        seeds = _seeds(args)
        cfg, _ = config_from_args(args)
        quiet_tensorflow()
        from keras_art.training.train import set_global_policies, train

        set_global_policies(cfg)
        if seeds:
            return _train_group(cfg, seeds)
        result = train(cfg, resume=bool(args.resume))
        if result.chief:
            _write_test_report(cfg, result.run_dir, result.summary)
        print(f"run directory: {Path(result.run_dir)}")
        return 0

    return run_command(_run, flags=error_flags())


def _seeds(args) -> list[int] | None:
    from keras_art.errors import UserError

    if args.seeds is None:
        return None
    if args.resume or args.seed is not None:
        raise UserError(
            f"--seeds with --{'resume' if args.resume else 'seed'}: --seeds sets each "
            "run's seed and resumes by itself; re-run the same command to continue."
        )
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UserError(
            f"--seeds {args.seeds}: expected integers separated by commas, e.g. 0,1,2."
        ) from None
    from keras_art.training.repeats import check_seeds

    return check_seeds(seeds)  # before any work


def _write_test_report(cfg: Config, run_dir, summary: dict) -> None:
    """Every finished run has its test report (python -m keras_art.evaluate)."""
    from keras_art.run_dir import RunDir

    if not cfg.train.report or "test" not in summary["metrics"]:
        return
    if RunDir(run_dir).eval_predictions("test").is_file():
        return  # a repeat finished earlier, its report written then
    from keras_art.evaluation import evaluate

    evaluate(run_dir, split="test")


def _train_group(cfg: Config, seeds: list[int]) -> int:
    import keras

    from keras_art.training.repeats import group_table, train_repeats

    result = train_repeats(
        cfg,
        seeds,
        after_each=lambda run, summary: _write_test_report(cfg, run, summary),
        seed_each=keras.utils.set_random_seed,
    )
    print(f"\n{group_table(result)}")
    print(f"group directory: {result.group_dir}")
    print(f"compare: python -m keras_art.compare {result.group_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
