"""`mnist up`: a local Prefect server, the `mnist` work pool, the deployments and a worker.

Safe on a shared machine:

- the server binds to 127.0.0.1 and requires an auth string (HTTP basic auth) that is generated
  once and kept in the storage root with mode 0600; the worker, `prefect deploy` and the `mnist`
  command get it, nobody else can read it, so other users of the machine cannot drive the server;
- the work pool's base job template (``deployments/process-pool-template.json``) lets a run set
  only the storage root and registry URL: not the command a run starts, its working directory,
  or any other environment variable (each of which could run arbitrary code);
- every flow run sends a heartbeat, and the automation ``deployments/crash-zombie-runs.yaml``
  marks a run whose heartbeats stop (its process was killed) Crashed instead of Running forever.

With ``--serve``, `mnist serve` runs beside them, answering with the production model as soon as
there is one. Everything runs until Ctrl-C (or SIGTERM), which stops the worker and the server;
their logs go to ``<storage root>/logs/``.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from importlib.resources import files

from mnist_pipeline.tasks.core.errors import MnistError

POOL = "mnist"
# The deployment definitions ship inside the package (deployments/ of the checkout), so a machine
# with the package installed and no checkout can apply them; their entrypoints are module paths.
DEPLOYMENTS_PACKAGE = "mnist_pipeline.deployments"
PREFECT_FILE, POOL_TEMPLATE, CRASH_AUTOMATION = "prefect.yaml", "process-pool-template.json", "crash-zombie-runs.yaml"
CRASH_AUTOMATION_NAME = "mnist-crash-zombie-runs"
# Seconds between a flow run's heartbeats (Prefect's minimum; its default is 180); the
# automation crashes a run after 90 s without one.
HEARTBEAT_SETTING, HEARTBEAT_SECONDS = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "30"


class UpError(MnistError, RuntimeError):
    """`mnist up` could not start or keep its services."""


def prefect_command(*args: str) -> list[str]:
    # The prefect CLI of this interpreter's environment, whatever is first on PATH.
    return [sys.executable, "-m", "prefect", *args]


def heartbeat_env() -> dict[str, str]:
    return {HEARTBEAT_SETTING: HEARTBEAT_SECONDS}


def wait_for(ready, what: str, process: subprocess.Popen | None, timeout: float) -> None:
    """Poll ``ready()`` (an OSError counts as not yet) until it is true; UpError when ``process``
    exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise UpError(f"{what} exited with status {process.returncode}; see its log")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise UpError(f"{what} was not ready within {timeout:.0f} s")


def answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


def wait_healthy(api_url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    wait_for(lambda: answers(f"{api_url}/health"), f"the Prefect server at {api_url}", process, timeout)


def deployment_file(name: str) -> str:
    """The path of a file of the packaged deployment definitions."""
    return str(files(DEPLOYMENTS_PACKAGE) / name)


def run_step(description: str, command: list[str], env: dict) -> None:
    print(f"- {description}: {' '.join(command[2:])}", flush=True)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise UpError(f"{description} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def api_request(api_url: str, auth: str | None, path: str, body: dict | None = None) -> list | dict:
    """POST ``body`` to the Prefect API (GET without one)."""
    import base64

    headers = {"Content-Type": "application/json"}
    if auth:  # PREFECT_API_AUTH_STRING, sent as HTTP basic auth: "Basic " + base64(auth string)
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{api_url}{path}", data=data, method="GET" if body is None else "POST",
                                     headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def deploy(env: dict, home_url: str) -> None:
    """On the Prefect server ``env`` names (PREFECT_API_URL, PREFECT_API_AUTH_STRING): create or
    update the `mnist` process work pool with the restricted job template, apply the packaged
    deployments with runs on the storage root ``home_url``, and add the crash automation."""
    api_url = env.get("PREFECT_API_URL")
    if not api_url:
        raise UpError("PREFECT_API_URL is not set: export it to your Prefect server's API "
                      "(e.g. http://127.0.0.1:4200/api) before deploying")
    env = {**env, "MNIST_HOME": home_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    inspect = subprocess.run(prefect_command("work-pool", "inspect", POOL), env=env,
                             capture_output=True, text=True, timeout=120)
    verb = ("update", POOL) if inspect.returncode == 0 else ("create", POOL, "--type", "process")
    run_step(f"{verb[0]} the process work pool {POOL!r} with the restricted job template",
             prefect_command("work-pool", *verb, "--base-job-template", deployment_file(POOL_TEMPLATE)), env)
    run_step(f"applying the deployments (runs on {home_url})",
             prefect_command("--no-prompt", "deploy", "--all", "--prefect-file", deployment_file(PREFECT_FILE)), env)
    auth = env.get("PREFECT_API_AUTH_STRING")
    deployed = api_request(api_url, auth, "/deployments/name/mnist/train-all")
    if deployed.get("pull_steps"):  # Prefect releases that read `pull: []` as "no pull section"
        print(f"  warning: this Prefect recorded a pull step ({json.dumps(deployed['pull_steps'][0])}): runs "
              "need that folder on the worker's machine; Prefect 3.9 records none", flush=True)
    existing = api_request(api_url, auth, "/automations/filter", {})
    if not any(a.get("name") == CRASH_AUTOMATION_NAME for a in existing):
        run_step("creating the automation that crashes runs whose heartbeats stopped",
                 prefect_command("automation", "create", "--from-file", deployment_file(CRASH_AUTOMATION)), env)


def up(port: int, home: str | None, logs: str | None, worker: bool = True, serve_port: int | None = None) -> int:
    from mnist_pipeline.storage import services
    from mnist_pipeline.storage.store import Store

    root = Store.resolve(home).root
    auth = services.auth_string(root)
    api_url = f"http://127.0.0.1:{port}/api"
    client_env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_API_AUTH_STRING": auth,
                  "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MNIST_HOME": root.url, **heartbeat_env()}
    server_env = {**client_env, "PREFECT_SERVER_API_AUTH_STRING": auth}

    def log(service: str):
        path = os.path.join(logs, f"{service}.log") if logs else services.log_path(root, service)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return open(path, "ab"), path

    # Our own handlers: a shell's background job (`&`, nohup) starts us with SIGINT ignored.
    # While starting up, a signal interrupts at once; once everything runs, it ends the wait.
    stop: list[bool] = []

    def on_signal(*_) -> None:
        stop.append(True)
        if not waiting:
            raise KeyboardInterrupt

    waiting = False
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    started: list[subprocess.Popen] = []
    try:
        server_log, server_log_path = log("prefect-server")
        print(f"- starting the Prefect server on 127.0.0.1:{port} (log: {server_log_path})", flush=True)
        server = subprocess.Popen(
            prefect_command("server", "start", "--host", "127.0.0.1", "--port", str(port)),
            env=server_env, stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        started.append(server)
        wait_healthy(api_url, server)
        services.record_server(root, api_url)
        deploy(client_env, root.url)
        if worker:
            worker_log, worker_log_path = log("prefect-worker")
            print(f"- starting a worker for pool {POOL!r} (log: {worker_log_path})", flush=True)
            started.append(subprocess.Popen(
                prefect_command("worker", "start", "--pool", POOL), env=client_env,
                stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True,
            ))
        if serve_port is not None:
            serve_log, serve_log_path = log("mnist-serve")
            print(f"- starting mnist serve on 127.0.0.1:{serve_port} (log: {serve_log_path})", flush=True)
            started.append(subprocess.Popen(
                [sys.executable, "-m", "mnist_pipeline.flows.cli", "serve", "--port", str(serve_port)], env=client_env,
                stdout=serve_log, stderr=subprocess.STDOUT, start_new_session=True,
            ))
        secret = services.auth_file(root)
        print(
            f"\nready: Prefect UI at http://127.0.0.1:{port} (its password is in {secret}), "
            f"storage root {root.url}\n"
            f"  export PREFECT_API_URL={api_url}\n"
            f"  export PREFECT_API_AUTH_STRING=\"$(cat {secret})\"\n"
            f"  prefect deployment run mnist/train-all      # or mnist/smoke: a check of about 35 s\n"
            + (f"  the production model answers at http://127.0.0.1:{serve_port} (draw a digit there)\n"
               if serve_port is not None else "") +
            "Ctrl-C (or SIGTERM) stops the worker and the server.", flush=True,
        )
        waiting = True
        while not stop:
            for process in started:
                if process.poll() is not None:
                    raise UpError(f"{' '.join(process.args[2:4])} exited with status {process.returncode}; see its log")
            time.sleep(1)
    except KeyboardInterrupt:
        pass  # a signal while starting up: stop what was started
    finally:
        # A second Ctrl-C while stopping would leave the server and worker running on their own.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_groups(started)
        print("stopped", flush=True)
    return 0


def stop_groups(processes: list[subprocess.Popen], grace: float = 20) -> None:
    """Stop the process groups of ``processes`` (the server's and worker's children too, and what a
    leader that already exited left running) all at once: SIGTERM to each, then wait for all of
    them together, and SIGKILL what is left after ``grace`` seconds.

    A Prefect worker turns its first SIGTERM into a Ctrl-C (it stops taking runs and waits for its
    own to end) and a second into SIGKILL: when it is still there after ``worker_grace`` seconds,
    it gets the second, so that stopping never waits out the whole ``grace`` for it."""
    def alive(process: subprocess.Popen) -> bool:
        process.poll()  # reap the leader, so that a zombie does not count
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def signal_group(process: subprocess.Popen, signum: int) -> None:
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass

    running = [p for p in processes if alive(p)]
    for process in running:
        signal_group(process, signal.SIGTERM)
    started = time.monotonic()
    second_sent = False
    while running and time.monotonic() - started < grace:
        time.sleep(0.1)
        running = [p for p in running if alive(p)]
        if not second_sent and time.monotonic() - started > WORKER_GRACE_S:
            for process in running:
                if is_worker(process):
                    signal_group(process, signal.SIGTERM)
            second_sent = True
    for process in running:
        signal_group(process, signal.SIGKILL)
    for process in processes:
        process.wait(timeout=10)


# How long a worker may take to end gracefully (a run it started finishing its state change).
WORKER_GRACE_S = 3


def is_worker(process: subprocess.Popen) -> bool:
    return "worker" in process.args
