"""``python -m keras_art.data_service``: a tf.data service cluster for training input.

    # one dispatcher (its work dir makes it restartable), then workers anywhere
    python -m keras_art.data_service dispatcher --port 5050 --work-dir /shared/disp
    python -m keras_art.data_service worker --dispatcher HEAD:5050 --host $(hostname)
    # the trainer sends its image reading, decoding and augmentation there
    python -m keras_art.train --task style --data DIR \
        --set input.data_service=grpc://HEAD:5050

A thin wrapper over `keras_art.data.service_servers` (the servers) and
`keras_art.data.pipeline.service` (what the trainer sends, and what changes). Each
server runs until Ctrl-C, or for ``--stop-after`` seconds.
"""

from __future__ import annotations

import socket
import sys

from keras_art.cli import ArgumentParser, quiet_tensorflow, run_command


def build_parser() -> ArgumentParser:
    from keras_art.data.service_servers import DEFAULT_HEARTBEAT, DEFAULT_WORKER_TIMEOUT

    p = ArgumentParser(
        prog="python -m keras_art.data_service",
        description="Run a tf.data service dispatcher or worker that prepares "
        "training images for `--set input.data_service=grpc://HOST:PORT`.",
    )
    sub = p.add_subparsers(dest="role", metavar="ROLE", required=True)
    d = sub.add_parser("dispatcher", help="the one coordinator (start it first)")
    d.add_argument("--port", type=int, required=True)
    d.add_argument(
        "--work-dir",
        help="journal the dispatcher's state here, so that a restart on the same "
        "port recovers a training run's jobs",
    )
    d.add_argument(
        "--worker-timeout",
        type=float,
        default=DEFAULT_WORKER_TIMEOUT,
        metavar="SECONDS",
        help="a worker silent this long is given up (default: %(default)s)",
    )
    w = sub.add_parser("worker", help="prepares images (start one per spare machine)")
    w.add_argument("--dispatcher", required=True, metavar="HOST:PORT")
    w.add_argument("--port", type=int, default=0, help="default: any free port")
    w.add_argument(
        "--heartbeat",
        type=float,
        default=DEFAULT_HEARTBEAT,
        metavar="SECONDS",
        help="seconds between heartbeats to the dispatcher, well under its "
        "--worker-timeout (default: %(default)s)",
    )
    w.add_argument(
        "--host",
        default=socket.gethostname(),
        help="the name the trainer reaches this machine by (default: %(default)s)",
    )
    for sp in (d, w):
        sp.add_argument(
            "--stop-after",
            type=float,
            metavar="SECONDS",
            help="stop after this long (default: run until Ctrl-C)",
        )
    return p


# The library's parameter names -> this command's flags (its errors' words).
FLAGS = {
    "port": "--port",
    "dispatcher": "--dispatcher",
    "worker_timeout": "--worker-timeout",
    "heartbeat": "--heartbeat",
}


def main(argv: list[str] | None = None) -> int:
    def _run() -> int:
        args = build_parser().parse_args(argv)
        quiet_tensorflow()
        from keras_art.data import service_servers as servers

        if args.role == "dispatcher":
            server = servers.start_dispatcher(
                args.port, work_dir=args.work_dir, worker_timeout=args.worker_timeout
            )
            port = servers.server_port(server)
            journal = f", state journaled in {args.work_dir}" if args.work_dir else ""
            print(
                f"tf.data dispatcher listening on port {port}{journal}; train with "
                f"--set input.data_service=grpc://{socket.gethostname()}:{port}",
                flush=True,
            )
        else:
            server = servers.start_worker(
                args.dispatcher,
                port=args.port,
                host=args.host,
                heartbeat=args.heartbeat,
            )
            print(
                f"tf.data worker {args.host}:{servers.server_port(server)} serving "
                f"dispatcher {args.dispatcher}",
                flush=True,
            )
        servers.serve(args.stop_after)
        print(f"tf.data {args.role} stopped", file=sys.stderr, flush=True)
        return 0

    return run_command(_run, flags=FLAGS)


if __name__ == "__main__":
    sys.exit(main())
