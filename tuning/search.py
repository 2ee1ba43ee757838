"""``python -m tuning.search``: a KerasTuner search over heads, dense blocks, dropout
and the fine-tuning schedule.

    python -m tuning.search --task artist                      # embedded sample
    python -m tuning.search --task artist --data DIR --format best-artworks \\
        --preset seed002 --space seed002 --tuner grid --max-trials 84
    python -m tuning.search --task style --data DIR --stage full --retrain-best
    python -m tuning.search --task artist --chief 10.0.0.1:8000 --tuner-id chief
    CUDA_VISIBLE_DEVICES=0 python -m tuning.search --task artist \\
        --chief 10.0.0.1:8000 --tuner-id tuner1          # one per GPU, same flags

A thin wrapper over `tuning.searcher.search`: flags -> one `Config` (the same preset,
``--config`` and ``--set`` as ``keras_art.train``; ``--set tune.*`` reaches every
search setting) -> the search. Re-running the same command continues the search.
"""

from __future__ import annotations

from keras_art.cli import (
    TUNE_FLAG_KEYS,
    ArgumentParser,
    add_config_flags,
    config_error_flags,
    config_from_flags,
    quiet_tensorflow,
    run_command,
)
from keras_art.config import HEADS, STRATEGIES, TASK_CHOICES, TUNE_STAGES, TUNERS


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m tuning.search",
        description="KerasTuner search over the head, dense blocks, dropout and "
        "the fine-tuning schedule; objective: val macro-F1 (maximised).",
    )
    p.add_argument("--task", choices=TASK_CHOICES, help="label (default: artist)")
    add_config_flags(p, default_preset=None)
    p.add_argument("--tuner", choices=TUNERS, help="default: hyperband")
    p.add_argument("--max-trials", type=int, metavar="N", help="default: 20")
    p.add_argument("--epochs", type=int, help="most epochs per trial (default: 10)")
    p.add_argument("--directory", metavar="DIR", help="default: tuning_runs")
    p.add_argument("--project", help="subfolder of DIR (default: TASK-STAGE[-SPACE])")
    p.add_argument(
        "--space",
        metavar="NAME_OR_FILE",
        help="default, seed002, seed003, or a JSON/YAML space file",
    )
    p.add_argument(
        "--stage",
        choices=TUNE_STAGES,
        help="head: frozen backbone, trials train the head on cached features "
        "(default); full: trials run the staged fine-tuning",
    )
    p.add_argument(
        "--head", choices=HEADS, help="the head when the space leaves it out"
    )
    p.add_argument("--weights", help="imagenet, none, or a path to a local .h5")
    p.add_argument("--strategy", choices=[s for s in STRATEGIES if s != "multi_worker"])
    p.add_argument("--seed", type=int)
    p.add_argument("--workdir", help="where --retrain-best writes its run")
    p.add_argument(
        "--retrain-best",
        action="store_true",
        help="afterwards, train the best configuration as a normal run",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start the search afresh instead of continuing it",
    )
    p.add_argument(
        "--chief",
        metavar="HOST:PORT",
        help="distributed search: where the chief serves the oracle (with "
        "--tuner-id; default: KerasTuner's KERASTUNER_* variables, if set)",
    )
    p.add_argument(
        "--tuner-id",
        metavar="ID",
        help="distributed search: chief (runs the oracle, writes the results) "
        "or a worker's name, tuner1, tuner2, ... (runs trials)",
    )
    return p


def error_flags() -> dict[str, str]:
    """The library's parameter names and config keys -> this command's flags (its
    errors' words)."""
    return config_error_flags(build_parser(), TUNE_FLAG_KEYS) | {
        "overwrite": "--overwrite",
        "retrain_best": "--retrain-best",
        "chief": "--chief",
        "tuner_id": "--tuner-id",
    }


def main(argv: list[str] | None = None) -> int:
    def _run() -> int:
        args = build_parser().parse_args(argv)
        cfg, _ = config_from_flags(args, TUNE_FLAG_KEYS)
        quiet_tensorflow()
        from keras_art.training.train import set_global_policies
        from tuning.searcher import search

        set_global_policies(cfg)
        result = search(
            cfg,
            overwrite=args.overwrite,
            retrain_best=args.retrain_best,
            chief=args.chief,
            tuner_id=args.tuner_id,
        )
        print(f"search directory: {result.folder}")
        if result.best_config is not None:
            print(f"best config: {result.best_config}")
        if result.retrained_run is not None:
            print(f"run directory: {result.retrained_run}")
        return 0

    return run_command(_run, flags=error_flags())


if __name__ == "__main__":
    raise SystemExit(main())
