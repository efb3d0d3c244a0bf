"""Real services for the tests, each on a loopback address and stopped at the end whatever the
outcome: PostgreSQL 15 (Debian's), an S3 endpoint (moto's standalone server), a Dask cluster of
separate processes, a Prefect server and a Prefect process worker.

A service whose software is missing skips its tests, unless ``MNIST_REQUIRE_SERVICES=1`` (set by
``.ci/run``) makes that a failure: CI must never pass by skipping the team topology.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from mnist_pipeline.flows.up import UpError, answers, stop_group, wait_for

PG_BIN = Path("/usr/lib/postgresql/15/bin")
VENV_BIN = Path(sys.executable).parent
# What a worker of a team must not inherit from the test: it gets the run's settings from the run.
RUN_SETTINGS = ("MNIST_HOME", "MNIST_REGISTRY_URL")


def unavailable(reason: str) -> None:
    if os.environ.get("MNIST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (MNIST_REQUIRE_SERVICES=1: .ci/setup installs it)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def wait_until(ready: Callable[[], bool], what: str, timeout: float, log: Path | None = None,
               process: subprocess.Popen | None = None) -> None:
    """`mnist up`'s wait, with the tail of the service's log in the error."""
    try:
        wait_for(ready, what, process, timeout)
    except UpError as error:
        raise RuntimeError(f"{error}\n{tail(log) if log else ''}") from None


@contextmanager
def service(args: list[str], log: Path, cwd: Path | str, env: dict) -> Iterator[subprocess.Popen]:
    """A long-running process in its own process group, its output in ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield process
    finally:
        stop_group(process, grace=15)


def without_run_settings(env: dict) -> dict:
    return {k: v for k, v in env.items() if k not in RUN_SETTINGS}


@dataclass(frozen=True)
class Postgres:
    port: int
    user: str = "mnist"

    def create_database(self, name: str) -> None:
        subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name],
                       check=True, capture_output=True, timeout=60)

    def url(self, database: str, driver: str = "psycopg") -> str:
        return f"postgresql+{driver}://{self.user}@127.0.0.1:{self.port}/{database}"


@contextmanager
def postgres() -> Iterator[Postgres]:
    """PostgreSQL 15 in a temporary data directory on a free port (as the `postgres` user when we
    are root: the server refuses to run as root)."""
    if not (PG_BIN / "initdb").exists():
        unavailable(f"PostgreSQL 15 is not installed ({PG_BIN}/initdb is missing)")
    base = Path(tempfile.mkdtemp(prefix="mnist-pg-"))
    base.chmod(0o755)
    as_owner: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", free_port()
    ctl = [*as_owner, str(PG_BIN / "pg_ctl"), "-D", str(data)]
    try:
        subprocess.run([*as_owner, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "mnist"],
                       check=True, capture_output=True, timeout=120)
        try:
            started = subprocess.run(
                [*ctl, "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "-l", str(base / "log"), "-w",
                 "start"], capture_output=True, text=True, timeout=120)
            if started.returncode != 0:
                raise RuntimeError(f"PostgreSQL did not start: {started.stdout}{started.stderr}\n{tail(base / 'log')}")
            yield Postgres(port)
        finally:  # also when the start failed or timed out half-way
            subprocess.run([*ctl, "stop", "-m", "immediate"], capture_output=True, timeout=60)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    # What a client of the endpoint needs, the standard way (botocore and s3fs read these).
    env: dict


@contextmanager
def s3_endpoint(folder: Path) -> Iterator[S3Endpoint]:
    """moto's standalone S3 server (the way s3fs tests itself) on a free port."""
    moto = VENV_BIN / "moto_server"
    if not moto.exists():
        unavailable("moto's server is not installed (pip install 'moto[server]')")
    try:
        import s3fs  # noqa: F401  (the pipeline's side of S3)
    except ImportError:
        unavailable("s3fs is not installed (pip install 'mnist-pipeline[s3]')")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    folder.mkdir(parents=True, exist_ok=True)
    with service([str(moto), "-H", "127.0.0.1", "-p", str(port)], folder / "moto.log", folder, dict(os.environ)) as p:
        wait_until(lambda: answers(url), "moto's S3 server", 60, folder / "moto.log", p)
        yield S3Endpoint(url, {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                               "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": url})


@dataclass(frozen=True)
class DaskCluster:
    address: str
    workers: dict  # address -> the worker's dask process
    logs: Path


@contextmanager
def dask_cluster(folder: Path, env: dict, workers: int = 2) -> Iterator[DaskCluster]:
    """`dask scheduler` and ``workers`` `dask worker --nthreads 1` processes, each started in an
    empty folder of its own with ``env`` minus the run's settings (MNIST_HOME, MNIST_REGISTRY_URL)."""
    dask = VENV_BIN / "dask"
    if not dask.exists():
        unavailable("dask.distributed is not installed (pip install 'dask[distributed]')")
    env = without_run_settings(env)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    with ExitStack() as stack:
        (folder / "scheduler").mkdir(parents=True)
        scheduler = stack.enter_context(service(
            [str(dask), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            folder / "scheduler.log", folder / "scheduler", env))
        wait_until(lambda: "Scheduler at:" in (folder / "scheduler.log").read_text(), "the Dask scheduler", 60,
                   folder / "scheduler.log", scheduler)
        started = {}
        for n in range(workers):
            (folder / f"worker-{n}").mkdir()
            started[n] = stack.enter_context(service(
                [str(dask), "worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1",
                 "--local-directory", str(folder / f"worker-{n}")],
                folder / f"worker-{n}.log", folder / f"worker-{n}", env))
        addresses = {}
        for n, process in started.items():
            log = folder / f"worker-{n}.log"
            wait_until(lambda: "Start worker at:" in log.read_text(), f"Dask worker {n}", 60, log, process)
            line = next(l for l in log.read_text().splitlines() if "Start worker at:" in l)
            addresses[line.split("Start worker at:")[1].strip()] = process
        wait_until(lambda: (folder / "scheduler.log").read_text().count("Register worker") >= workers,
                   "every worker's registration", 30, folder / "scheduler.log")
        yield DaskCluster(address, addresses, folder)


@dataclass(frozen=True)
class PrefectServer:
    api_url: str
    env: dict  # what a client of this server needs (PREFECT_API_URL, a PREFECT_HOME of its own)


@contextmanager
def prefect_server(folder: Path, database_url: str, env: dict) -> Iterator[PrefectServer]:
    """`prefect server start` on a free port with its database at ``database_url``."""
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    client_env = {**env, "PREFECT_HOME": str(folder / "prefect-home"), "PREFECT_API_URL": api_url,
                  "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    client_env.pop("PREFECT_API_AUTH_STRING", None)
    server_env = {**client_env, "PREFECT_API_DATABASE_CONNECTION_URL": database_url}
    log = folder / "prefect-server.log"
    with service([str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                 log, folder, server_env) as process:
        wait_until(lambda: answers(f"{api_url}/health"), "the Prefect server", 120, log, process)
        yield PrefectServer(api_url, client_env)
