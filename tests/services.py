"""What the tests that run real services share: PostgreSQL 15 (Debian's) for the session, on a
loopback address and stopped at the end whatever the outcome, and the helpers to wait for a
service and read its log. (The team topology's other services are the ones the README's
"Scaling out" block starts: tests/deployments/test_team_topology.py.)

A service whose software is missing skips its tests, unless ``MNIST_REQUIRE_SERVICES=1`` (set by
``.ci/run``) makes that a failure: CI must never pass by skipping the team topology.
"""

import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from mnist_pipeline.flows.up import UpError, wait_for

PG_BIN = Path("/usr/lib/postgresql/15/bin")
VENV_BIN = Path(sys.executable).parent


def unavailable(reason: str) -> None:
    if os.environ.get("MNIST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (MNIST_REQUIRE_SERVICES=1: .ci/setup installs it)")
    pytest.skip(reason)


# Ports for the services the tests start. A port the kernel picks (bind to 0) is free only until
# the probe closes, and another test worker may be given it before our service binds it (seen:
# a Dask scheduler and a Prefect server on one port). So each pytest-xdist worker takes ports
# from a range of its own, below Linux's ephemeral range (32768 and up, where the kernel's picks
# and client connections come from), and never hands one out twice.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_PORTS = itertools.count(20_000 + 1_000 * _WORKER)


def free_port() -> int:
    for port in _PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:  # in use (or lingering from an earlier session): the next one
                continue
            return port
    raise RuntimeError("no free port left")  # unreachable: the counter is endless


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


# The MLflow tracking server runs from a virtualenv of its own, as a separate service would: the
# full `mlflow` package pins its own pyarrow and more, while the pipeline needs only mlflow-skinny.
# .ci/setup makes it (.venv-mlflow); MNIST_MLFLOW_SERVER names another `mlflow` executable.
MLFLOW_SERVER = Path(os.environ.get("MNIST_MLFLOW_SERVER") or Path(__file__).parents[1] / ".venv-mlflow/bin/mlflow")


class MlflowServer:
    """`mlflow server` on 127.0.0.1 with a SQLite backend and artifacts in a local folder (served
    through the server); it can be stopped and started again on the same store."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "MlflowServer":
        log = self.folder / "mlflow.log"
        command = [str(MLFLOW_SERVER), "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
                   "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}",
                   "--artifacts-destination", str(self.folder / "artifacts")]
        with open(log, "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
        wait_until(lambda: answers(f"{self.url}/health"), "the MLflow server", 120, log, self.process)
        return self

    def stop(self) -> None:
        from mnist_pipeline.flows.up import stop_groups

        if self.process is not None:
            stop_groups([self.process], grace=20)
            self.process = None


def answers(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status == 200


@contextmanager
def mlflow_server() -> Iterator[MlflowServer]:
    if not MLFLOW_SERVER.exists():
        unavailable(f"no MLflow server to test against ({MLFLOW_SERVER} is missing; .ci/setup makes it)")
    server = MlflowServer(Path(tempfile.mkdtemp(prefix="mnist-mlflow-")))
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)
