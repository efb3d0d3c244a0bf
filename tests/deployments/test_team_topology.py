"""The team deployment, end to end, from real parts started here on loopback addresses: the
registry and the Prefect server on PostgreSQL 15, the storage root on an S3 endpoint (moto's
server, through s3fs), training on a Dask cluster of separate processes, and a Prefect process
worker, all started in empty folders with the package installed and no checkout.

The services are the ones the README's "Scaling out" walkthrough starts: the module runs that
block as written (ports changed) in a shell like a terminal's, which pauses before the block's
last two lines; the tests check the run the block made and use its services, and the block's own
last lines then stop everything it started. The Dask and Prefect workers get no MNIST_HOME or
MNIST_REGISTRY_URL of their own: the run decides its storage root and registry where it starts
(the deployment records the root; the process worker holds the registry URL, as it holds the S3
credentials).
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mnist_pipeline.flows.up import stop_groups
from mnist_pipeline.tasks.core.models import catalog

from tests import services
from tests.deployments.walkthroughs import (
    PAUSED,
    left_running,
    like_a_terminal,
    paused,
    proc_stat,
    resume,
    terminal_shell,
)

pytestmark = pytest.mark.topology

BUCKET = "mnist-team"
HOME = f"s3://{BUCKET}/root"
FAMILIES = catalog.family_names()


@dataclass(frozen=True)
class Team:
    folder: Path  # where the block ran: its logs, and the empty folders of its workers
    env: dict  # a client's environment: Prefect API, S3 endpoint and credentials, no MNIST_* settings
    registry_url: str
    s3_url: str
    dask_address: str
    dask_workers: dict[str, int]  # Dask worker address -> its process id
    terminal: Path  # what the block printed

    def with_run_settings(self, home: str = HOME) -> dict:
        """The environment of the machine a run starts on: the storage root and the registry."""
        return {**self.env, "MNIST_HOME": home, "MNIST_REGISTRY_URL": self.registry_url}

    def mnist(self, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        """The `mnist` command from an empty folder."""
        cwd = self.folder / "client"
        cwd.mkdir(exist_ok=True)
        return subprocess.run([str(services.VENV_BIN / "mnist"), *args], cwd=cwd, env=env or self.with_run_settings(),
                              capture_output=True, text=True, timeout=timeout)

    def worker_log(self, address: str) -> Path:
        return next(self.folder / name for name in ("w1.log", "w2.log") if address in (self.folder / name).read_text())


def readme_walkthrough() -> str:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("## Scaling out"):readme.index("## Layout")]
    return section.split("```bash\n", 1)[1].split("```", 1)[0]


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every process below it (a Dask worker's nanny and its worker)."""
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            parent = int(proc_stat(entry)[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    pending = [pid]
    while pending:
        current = pending.pop()
        pending += children.get(current, [])
        try:
            os.kill(current, signal.SIGKILL)
        except ProcessLookupError:
            pass


def dask_worker_pids(folder: Path) -> dict[str, int]:
    """Each Dask worker of the block by address (from its log), with its process (found by the
    empty folder it runs in)."""
    pids = {}
    for name in ("w1", "w2"):
        line = next(l for l in (folder / f"{name}.log").read_text().splitlines() if "Start worker at:" in l)
        address = line.split("Start worker at:")[1].strip()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
                if os.readlink(f"/proc/{pid}/cwd") == str(folder / name) and b"dask\x00worker\x00" in command:
                    pids[address] = int(pid)
            except OSError:  # a process that ended meanwhile
                continue
    return pids


@pytest.fixture(scope="module")
def team(tmp_path_factory, postgres_server):
    for tool in ("moto_server", "dask", "prefect", "mnist"):
        if not (services.VENV_BIN / tool).exists():
            services.unavailable(f"{tool} is not installed (pip install 'mnist-pipeline[team,sample]' 'moto[server]')")
    folder = tmp_path_factory.mktemp("team")
    ports = {"5432": postgres_server.port, "9000": services.free_port(), "4200": services.free_port(),
             "8786": services.free_port()}
    script = readme_walkthrough()
    for written, port in ports.items():
        assert written in script
        script = script.replace(written, str(port))
    fifo = folder / "resume"
    os.mkfifo(fifo)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MNIST_", "AWS_", "FSSPEC_"))}
    env.update(HOME=str(folder), PATH=f"{services.VENV_BIN}:{env['PATH']}")
    terminal = folder / "terminal.log"
    with open(terminal, "w") as out:
        shell = subprocess.Popen(terminal_shell(paused(script, fifo)), cwd=folder, env=env, start_new_session=True,
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 preexec_fn=like_a_terminal)
    try:
        services.wait_until(lambda: PAUSED in terminal.read_text() or shell.poll() is not None,
                            "the README walkthrough's train-all run", 720)
        assert shell.poll() is None, terminal.read_text()[-4000:] + services.tail(folder / "worker.log", 30)
        s3_url = f"http://127.0.0.1:{ports['9000']}"
        client = {**env, "PREFECT_API_URL": f"http://127.0.0.1:{ports['4200']}/api", "AWS_ENDPOINT_URL": s3_url,
                  "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                  "AWS_DEFAULT_REGION": "us-east-1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        yield Team(folder, client, postgres_server.url("mnist_registry"), s3_url, f"tcp://127.0.0.1:{ports['8786']}",
                   dask_worker_pids(folder), terminal)
        # The block's own last lines stop the worker, the server, the cluster and the endpoint.
        assert resume(fifo), "the block was not waiting at its pause"
        shell.wait(timeout=120)
        assert shell.returncode == 0, terminal.read_text()[-4000:]
        assert left_running(shell.pid) == [], "the block's last lines left these running"
    finally:
        stop_groups([shell], grace=5)  # whatever the block left running, if it failed midway


def s3(team: Team):
    import s3fs

    return s3fs.S3FileSystem(endpoint_url=team.s3_url, key="testing", secret="testing", skip_instance_cache=True)


def training_records(team: Team, home: str = HOME) -> dict[str, dict]:
    fs = s3(team)
    prefix = home.removeprefix("s3://")
    records = [json.loads(fs.cat(path)) for path in fs.glob(f"{prefix}/models/*/training.json")]
    return {record["model_id"]: record for record in records}


def test_the_readme_walkthrough_trains_through_a_worker_without_a_checkout_on_s3_postgres_and_dask(team):
    output = team.terminal.read_text()
    assert "Flow run finished successfully in 'Completed'" in output, output[-4000:]
    assert "Failed to send telemetry" not in output + (team.folder / "server.log").read_text()
    # `mnist deploy` ran from an empty folder: the deployments ship with the package.
    with httpx.Client(base_url=team.env["PREFECT_API_URL"], timeout=30) as http:
        deployment = http.get("/deployments/name/mnist/train-all").json()
    assert deployment["entrypoint"] == "mnist_pipeline.flows.mnist:mnist"
    assert not deployment["pull_steps"] and not deployment.get("path")  # nothing of the deploying machine
    assert deployment["job_variables"]["env"] == {"MNIST_HOME": HOME}

    # Rows in PostgreSQL: the four families and the ensemble, and the candidate alias; each
    # family's card names the Dask worker that trained it.
    import sqlalchemy as sa

    engine = sa.create_engine(team.registry_url)
    with engine.connect() as connection:
        cards = dict(connection.execute(sa.text("SELECT family, card FROM model_versions")).all())
        candidate = connection.execute(sa.text("SELECT model_id FROM aliases WHERE name = 'candidate'")).scalar()
        production = connection.execute(sa.text("SELECT model_id FROM aliases WHERE name = 'production'")).scalar()
    engine.dispose()
    assert set(FAMILIES) <= set(cards), cards.keys()
    assert candidate and production is None  # a smoke run never reaches production
    for family in FAMILIES:
        assert any(f"Dask worker {address}" in cards[family] for address in team.dask_workers), family

    # Objects in the bucket: every area of the storage root, no staging left behind.
    objects = s3(team).find(f"{BUCKET}/root")
    areas = {path.split("/")[2] for path in objects}
    assert {"datasets", "reports", "models", "evaluations"} <= areas, areas
    assert len(objects) > 10 and not [p for p in objects if "/.staging/" in p]

    # Where each model was trained: the four families on the Dask workers, the ensemble in the run.
    records = training_records(team)
    trained_on = {r["family"]: r["trained_on"] for r in records.values()}
    for family in FAMILIES:
        assert trained_on[family]["dask_worker"] in team.dask_workers, (family, trained_on[family], team.dask_workers)
        assert trained_on[family]["pid"] != os.getpid()
    print("trained on:", {f: w["dask_worker"] for f, w in trained_on.items()})

    # `mnist predict` with the candidate, from the bucket to the bucket.
    version = next(iter(records.values()))["dataset_version"]
    output = f"s3://{BUCKET}/predictions/test.parquet"
    scored = team.mnist("predict", f"{HOME}/datasets/{version}/test.parquet", "--model", "candidate",
                        "--output", output)
    assert scored.returncode == 0, scored.stdout + scored.stderr
    import pyarrow.parquet as pq

    with s3(team).open(output.removeprefix("s3://")) as handle:
        predictions = pq.read_table(handle)
    assert predictions.num_rows > 100
    assert set(predictions.column("model_id").to_pylist()) == {candidate}
    with s3(team).open(f"{BUCKET}/root/datasets/{version}/test.parquet") as handle:
        truth = pq.read_table(handle).column("label").to_numpy()
    assert (predictions.column("predicted").to_numpy() == truth).mean() > 0.8  # a real model scored them

    listed = team.mnist("models", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) >= 4


def test_mnist_serve_answers_with_the_candidate_from_the_bucket_and_postgres(team):
    """The README's "Serving" behind a team: `mnist serve` in an empty folder, its storage root the
    bucket and its registry PostgreSQL, answers with the model the alias names."""
    import pyarrow.parquet as pq
    from mnist_pipeline.storage.registry import Registry

    registry = Registry(team.registry_url)
    try:
        candidate, _ = registry.alias("candidate")
        version = registry.get(candidate).dataset_version
    finally:
        registry.close()
    with s3(team).open(f"{BUCKET}/root/datasets/{version}/test.parquet") as handle:
        image = pq.read_table(handle).column("image")[0].as_py()
    port = services.free_port()
    log = team.folder / "serve.log"
    cwd = team.folder / "client"
    cwd.mkdir(exist_ok=True)
    with open(log, "wb") as out:
        serving = subprocess.Popen([str(services.VENV_BIN / "mnist"), "serve", "--model", "candidate", "--port", str(port)],
                                   cwd=cwd, env=team.with_run_settings(), stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/ping", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        services.wait_until(ready, "mnist serve", 90, log, serving)
        answer = httpx.post(f"{base}/invocations", json={"instances": [list(image)]}, timeout=30).json()["predictions"][0]
        assert answer["model_id"] == candidate and 0 <= answer["label"] <= 9
        assert httpx.get(f"{base}/version", timeout=5).json()["dataset_version"] == version
    finally:
        stop_groups([serving], grace=20)


def test_labelled_batches_accumulate_in_an_object_store_prefix_and_a_bad_one_blocks(team):
    """A batch source on the S3 endpoint: each run lists the prefix afresh (a long-lived process
    must see the batches that arrived since), publishes the union, and a bad batch stops it."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.conftest import kaggle_csv, mnist_sample_digits

    fs, incoming, home = s3(team), f"{BUCKET}/incoming", f"s3://{BUCKET}/batches-root"
    digits = mnist_sample_digits()
    digits = digits.take(np.random.default_rng(2).permutation(len(digits)))  # the file holds the classes in turn
    env = team.with_run_settings(home)

    def ingest() -> subprocess.CompletedProcess:
        return team.mnist("ingest", "--source", f"batches:s3://{incoming}", "--json", env=env)

    fs.pipe(f"{incoming}/2026-12-01.csv", kaggle_csv(digits.take(np.arange(1500))).encode())
    first = ingest()
    assert first.returncode == 0, first.stderr[-3000:]
    second_batch = digits.take(np.arange(1500, 2500))
    table = pa.table({"label": second_batch.labels.astype(np.int64),
                      "image": pa.array([image.tobytes() for image in second_batch.images], pa.binary(784))})
    with fs.open(f"{incoming}/2026-12-02.parquet", "wb") as handle:
        pq.write_table(table, handle)
    second = ingest()
    assert second.returncode == 0, second.stderr[-3000:]
    manifest = json.loads(second.stdout[second.stdout.index("{"):])
    assert [(p["name"], p["rows"]) for p in manifest["parts"]] == [("batch 2026-12-01.csv", 1500),
                                                                   ("batch 2026-12-02.parquet", 1000)]
    assert manifest["version"] != json.loads(first.stdout[first.stdout.index("{"):])["version"]
    fs.pipe(f"{incoming}/2026-12-03.csv", b"label,pixel0\n3,0\n")
    bad = ingest()
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert bad.returncode == 1 and len(errors) == 1 and "batch 2026-12-03.csv: missing column(s)" in errors[0]
    versions = {path.rsplit("/", 2)[-2] for path in fs.glob(f"{BUCKET}/batches-root/datasets/*/manifest.json")}
    assert versions == {manifest["version"], json.loads(first.stdout[first.stdout.index("{"):])["version"]}
    assert fs.exists(f"{incoming}/2026-12-03.csv")  # left for a person to fix or remove


KILLED_MID_PUBLISH = textwrap.dedent("""
    import os, signal, sys
    import s3fs
    from mnist_pipeline.flows.cli import main

    copy, copied = s3fs.S3FileSystem.copy, []
    def copy_then_die(self, source, target, *args, **kwargs):
        copy(self, source, target, *args, **kwargs)
        if "/datasets/" in target and "/.staging/" not in target:
            copied.append(target)
            if len(copied) == 2:  # two files of the version are in place, its manifest is not
                os.kill(os.getpid(), signal.SIGKILL)
    s3fs.S3FileSystem.copy = copy_then_die
    sys.exit(main(["ingest", "--source", "mnist-sample"]))
""")


def test_a_writer_killed_mid_publish_leaves_no_version_readers_can_see(team):
    home = f"s3://{BUCKET}/killed"
    env = team.with_run_settings(home)
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_PUBLISH], cwd=team.folder, env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    # Files of the version are in the bucket, but not its manifest: readers see no version.
    left = s3(team).find(f"{BUCKET}/killed/datasets")
    assert [p for p in left if p.endswith(".parquet") and "/.staging/" not in p], left
    listed = team.mnist("datasets", "--json", env=env)
    assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed.stdout + listed.stderr
    # The next ingest publishes the version whole.
    again = team.mnist("ingest", "--source", "mnist-sample", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    listed = team.mnist("datasets", "--json", env=env)
    assert len(json.loads(listed.stdout)) == 1


def test_a_stopped_endpoint_is_one_error_line_naming_it(team):
    dead = f"http://127.0.0.1:{services.free_port()}"
    env = {**team.with_run_settings(), "AWS_ENDPOINT_URL": dead}
    for command in (("datasets",), ("ingest", "--source", "mnist-sample")):  # a read, and a flow that writes
        done = team.mnist(*command, env=env, timeout=180)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and dead in errors[0], done.stderr


def test_a_dask_worker_killed_while_training_never_hangs_the_run(team):
    """Runs last: it kills one of the cluster's workers."""
    logs = {address: team.worker_log(address) for address in team.dask_workers}
    before = {address: log.read_text().count("training ") for address, log in logs.items()}
    command = [str(services.VENV_BIN / "mnist"), "train-all", "--source", "mnist-sample", "--smoke", "--models",
               "svm,mlp", "--train-seed", "7", "--dask", team.dask_address, "--no-ensemble"]
    run = subprocess.Popen(command, cwd=team.folder, env=team.with_run_settings(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        victim = None
        deadline = time.monotonic() + 180
        while victim is None and time.monotonic() < deadline and run.poll() is None:
            victim = next((a for a, log in logs.items() if log.read_text().count("training ") > before[a]), None)
            time.sleep(0.2)
        assert victim, "no worker started training"
        kill_tree(team.dask_workers[victim])
        output, _ = run.communicate(timeout=400)  # never a hung run
    finally:
        if run.poll() is None:
            run.kill()
    print(f"killed {victim}: the run ended with {run.returncode}:", output.strip().splitlines()[-3:])
    if run.returncode == 0:  # Dask rescheduled the training on the other worker
        records = [r for r in training_records(team).values() if r["seed"] == 7]
        assert {r["family"] for r in records} == {"svm", "mlp"}
        assert all(r["trained_on"]["dask_worker"] != victim for r in records if r["family"] in ("svm", "mlp")
                   and r["trained_on"]["dask_worker"] is not None)
    else:  # or the family it trained fails alone, with a reason
        assert "training failed for" in output and ("svm" in output or "mlp" in output), output
