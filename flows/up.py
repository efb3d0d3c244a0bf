"""`mnist up`: a local Prefect server, the `mnist` work pool, the deployments and a worker.

The server binds to 127.0.0.1 only. Everything runs until Ctrl-C (or SIGTERM), which stops the
worker and the server; their logs go to ``<storage root>/logs/``.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request

from tasks.core.lineage import PROJECT_DIR

POOL = "mnist"
PREFECT_FILE = os.path.join("deployments", "prefect.yaml")


class UpError(RuntimeError):
    pass


def prefect_command(*args: str) -> list[str]:
    # The prefect CLI of this interpreter's environment, whatever is first on PATH.
    return [sys.executable, "-m", "prefect", *args]


def wait_healthy(api_url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UpError(f"the Prefect server exited with status {process.returncode}; see its log")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise UpError(f"the Prefect server did not answer {api_url}/health within {timeout:.0f} s")


def run_step(description: str, command: list[str], env: dict, cwd: str) -> None:
    print(f"- {description}: {' '.join(command[2:])}", flush=True)
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise UpError(f"{description} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def up(port: int, home: str | None, logs: str | None, project: str | None, worker: bool = True) -> int:
    from storage import services
    from storage.root import StorageRoot

    project = project or PROJECT_DIR
    if not os.path.isfile(os.path.join(project, PREFECT_FILE)):
        raise UpError(f"{os.path.join(project, PREFECT_FILE)} is missing: run `mnist up` from a checkout "
                      "of mnist-pipeline or pass --project DIR")
    root = StorageRoot(home)
    api_url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "MNIST_HOME": root.url}

    def log(service: str):
        path = os.path.join(logs, f"{service}.log") if logs else services.log_path(root, service)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return open(path, "ab"), path

    started: list[subprocess.Popen] = []
    try:
        server_log, server_log_path = log("prefect-server")
        print(f"- starting the Prefect server on 127.0.0.1:{port} (log: {server_log_path})", flush=True)
        server = subprocess.Popen(
            prefect_command("server", "start", "--host", "127.0.0.1", "--port", str(port)),
            env=env, stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        started.append(server)
        wait_healthy(api_url, server)
        inspect = subprocess.run(prefect_command("work-pool", "inspect", POOL), env=env,
                                 capture_output=True, text=True, timeout=120)
        if inspect.returncode != 0:
            run_step(f"creating the process work pool {POOL!r}",
                     prefect_command("work-pool", "create", POOL, "--type", "process"), env, project)
        run_step("applying the deployments",
                 prefect_command("--no-prompt", "deploy", "--all", "--prefect-file", PREFECT_FILE), env, project)
        if worker:
            worker_log, worker_log_path = log("prefect-worker")
            print(f"- starting a worker for pool {POOL!r} (log: {worker_log_path})", flush=True)
            started.append(subprocess.Popen(
                prefect_command("worker", "start", "--pool", POOL), env=env, cwd=project,
                stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True,
            ))
        print(
            f"\nready: Prefect UI at http://127.0.0.1:{port}, storage root {root.url}\n"
            f"  export PREFECT_API_URL={api_url}\n"
            f"  prefect deployment run mnist/train-all      # or mnist/smoke for a one-minute check\n"
            "Ctrl-C stops the worker and the server.", flush=True,
        )
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
        while not stop:
            for process in started:
                if process.poll() is not None:
                    raise UpError(f"{' '.join(process.args[2:4])} exited with status {process.returncode}; see its log")
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for process in reversed(started):
            _stop(process)
        print("stopped", flush=True)
    return 0


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group (the server's and worker's children too), then SIGKILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass
