"""``python -m keras_art.bench BENCHMARK ... --json OUT``: pipeline, train-step,
serve, near-duplicates.

    python -m keras_art.bench pipeline --data /work/shared/data/wikiart-style-sample \
        --json /tmp/pipeline.json
    python -m keras_art.bench pipeline --generate-large 160 --json /tmp/large.json
    python -m keras_art.bench serve --run runs/RUN --json /tmp/serve.json
    python -m keras_art.bench near-duplicates --json /tmp/near.json

Subcommands come from `keras_art.benchmarks.registry` (one module per benchmark);
each returns a dict that is printed as a summary and written to ``--json``. Another
package runs its own benchmarks through the same frame by passing ``benchmarks``
(``python -m tuning.bench tune``: keras_art never imports `tuning`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from keras_art.cli import CONFIG_FLAGS, ArgumentParser, quiet_tensorflow, run_command
from keras_art.errors import UserError

# name -> (add_arguments, run, help), as `keras_art.benchmarks.registry` returns
Benchmarks = dict[str, tuple[Callable, Callable, str]]
# Benchmarks that live beside the package that they time (keras_art never imports
# tuning): the command a user runs instead.
ELSEWHERE = {"tune": "python -m tuning.bench tune"}


def build_parser(
    benchmarks: Benchmarks | None = None, prog: str = "python -m keras_art.bench"
) -> ArgumentParser:
    """The parser of ``benchmarks`` (default: keras_art's own, `registry`)."""
    if benchmarks is None:
        from keras_art.benchmarks import registry

        benchmarks = registry()
    p = ArgumentParser(
        prog=prog,
        description="Benchmarks: input pipeline, train step, serving.",
    )
    sub = p.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, (add_arguments, run, help_text) in benchmarks.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(sp)
        sp.set_defaults(run_benchmark=run)
        if "--json" not in sp._option_string_actions:  # a module may add its own
            sp.add_argument("--json", metavar="OUT", help="write the result here")
    return p


def bench(
    argv: list[str] | None = None,
    benchmarks: Benchmarks | None = None,
    prog: str = "python -m keras_art.bench",
) -> dict[str, Any] | int:
    """Parse ``argv`` and run the chosen benchmark of ``benchmarks`` (default:
    keras_art's own).

    A benchmark's ``run(args)`` returns its result dict (written to ``--json`` and
    printed here) or an exit code when it reports by itself.
    """
    from keras_art.atomic_files import atomic_write_json

    argv = sys.argv[1:] if argv is None else argv
    if benchmarks is None and argv and argv[0] in ELSEWHERE:
        raise UserError(
            f"{prog} {argv[0]}: that benchmark runs as {ELSEWHERE[argv[0]]} "
            "(same flags)."
        )
    args = build_parser(benchmarks, prog).parse_args(argv)
    quiet_tensorflow()
    result = args.run_benchmark(args)
    if isinstance(result, dict) and getattr(args, "json", None):
        atomic_write_json(args.json, result)
    return result


# The library's parameter names and config keys -> the benchmarks' flags (their
# errors' words; the benchmarks set these keys from the flags of the same names).
FLAGS = {
    **CONFIG_FLAGS,
    "task": "--task",
    "input.batch_size": "--batch-size",
    "augment.image_size": "--image-size",
    "tune.epochs": "--epochs",
    "train.strategy": "--strategy",
    "run_dir": "--run",
    "checkpoint": "--checkpoint",
    "entries": "--entries",
    "planted": "--planted",
    "rounds": "--rounds",
}


def main(
    argv: list[str] | None = None,
    benchmarks: Benchmarks | None = None,
    prog: str = "python -m keras_art.bench",
) -> int:
    from keras_art.atomic_files import to_builtin

    def _run() -> int:
        result = bench(argv, benchmarks, prog)
        if isinstance(result, dict):
            print(json.dumps(result, indent=2, default=to_builtin))
            return 0
        return int(result or 0)

    # Progress on stderr: stdout is the JSON, for piping.
    return run_command(_run, info_stream=sys.stderr, flags=FLAGS)


if __name__ == "__main__":
    raise SystemExit(main())
