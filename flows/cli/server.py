"""`mnist up` (a local Prefect server, work pool, deployments and worker), `mnist deploy`
(the work pool and deployments on a Prefect server that runs elsewhere) and `mnist serve` (the
promoted model over HTTP)."""

import argparse
import os

from mnist_pipeline.flows.cli.options import HOME, REGISTRY, SERVE, add_command, given
from mnist_pipeline.flows.cli.shared import store_of, use_local_server_auth


def add_commands(commands) -> None:
    up = add_command(
        commands, "up", HOME, help="start a local Prefect server, work pool, deployments and worker",
        description="Start a Prefect server bound to 127.0.0.1, create the `mnist` process work "
        "pool, apply the deployments shipped with the installed package (its deployments/prefect.yaml) "
        "and start a worker, then wait; Ctrl-C or SIGTERM stops them. Runs use the storage root given here.",
    )
    up.add_argument("--port", type=int, default=4200, help="server port (default 4200)")
    up.add_argument("--logs", metavar="DIR", help="log folder (default: <storage root>/logs)")
    up.add_argument("--no-worker", action="store_true", help="do not start a worker")
    up.add_argument("--serve", action="store_true", help="also start `mnist serve` (production, on 127.0.0.1)")
    up.add_argument("--serve-port", type=int, default=8000, metavar="PORT", help="its port (default 8000)")
    up.set_defaults(handler=_up)

    deploy = add_command(
        commands, "deploy", HOME, help="apply the work pool and deployments to the Prefect server at $PREFECT_API_URL",
        description="On the Prefect server at $PREFECT_API_URL (with $PREFECT_API_AUTH_STRING if it "
        "needs one): create or update the `mnist` process work pool with its restricted job template, "
        "apply the deployments shipped with the installed package (train-all, smoke, batch, rerun; "
        "module-path entrypoints, so workers need the package, not a checkout) and the automation "
        "that crashes runs whose heartbeats stopped. Runs use the storage root given here; a worker's "
        "own $MNIST_REGISTRY_URL and S3/database credentials stay its own.",
    )
    deploy.set_defaults(handler=_deploy)

    serve = add_command(
        commands, "serve", HOME, REGISTRY, *SERVE, help="answer HTTP requests with the production model",
        description="Serve a registered model over HTTP until Ctrl-C or SIGTERM: POST /invocations "
        "(MLflow's scoring format), POST /predict (PNG/JPEG/IDX files, converted as `mnist predict` "
        "converts them), GET /health, /ping, /version, /metrics (Prometheus) and / (a page to draw a "
        "digit on). An alias is followed: when it moves, the new model is loaded, checked and swapped "
        "in without a failed request.",
    )
    serve.set_defaults(handler=_serve)


def _up(args: argparse.Namespace) -> int:
    from mnist_pipeline.flows.up import up

    return up(args.port, args.home, args.logs, worker=not args.no_worker,
              serve_port=args.serve_port if args.serve else None)


def _serve(args: argparse.Namespace) -> int:
    from mnist_pipeline.flows.config import ServeConfig
    from mnist_pipeline.flows.serve import serve
    from mnist_pipeline.tasks.core.serving import TOKEN_ENV

    fields = dict(given(args, HOME, REGISTRY, *SERVE))
    fields.setdefault("token", os.environ.get(TOKEN_ENV) or None)
    config = ServeConfig(**fields)
    return serve(config)


def _deploy(args: argparse.Namespace) -> int:
    from mnist_pipeline.flows.up import deploy

    home = store_of(args).home
    use_local_server_auth(args.home)
    deploy(dict(os.environ), home)
    print(f"deployed: prefect deployment run mnist/train-all (runs on {home})")
    return 0
