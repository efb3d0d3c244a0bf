"""`mnist up`: a local Prefect server, work pool, deployments and worker."""

import argparse

from mnist_pipeline.flows.cli.shared import Options


def add_commands(commands, options: Options) -> None:
    up = commands.add_parser(
        "up", parents=[options.home], help="start a local Prefect server, work pool, deployments and worker",
        description="Start a Prefect server bound to 127.0.0.1, create the `mnist` process work "
        "pool, apply deployments/prefect.yaml and start a worker, then wait; Ctrl-C stops them. "
        "Runs use the storage root given here.",
    )
    up.add_argument("--port", type=int, default=4200, help="server port (default 4200)")
    up.add_argument("--logs", metavar="DIR", help="log folder (default: <storage root>/logs)")
    up.add_argument("--project", metavar="DIR", help="checkout holding deployments/prefect.yaml")
    up.add_argument("--no-worker", action="store_true", help="do not start a worker")
    up.set_defaults(handler=_up)


def _up(args: argparse.Namespace) -> int:
    from mnist_pipeline.flows.up import up

    return up(args.port, args.home, args.logs, args.project, worker=not args.no_worker)
