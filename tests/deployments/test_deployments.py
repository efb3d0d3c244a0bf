"""End to end, on two servers: `mnist up` (a real Prefect server on 127.0.0.1 behind an auth
string, the work pool with its restricted job template, the deployments of deployments/prefect.yaml,
a worker, the crash automation), with runs through its worker and from the command line, their
failures, and how it stops; and the README's walkthrough (the same by hand), run as a terminal
would run it, whose smoke run through its worker is checked in the API, the registry and the
run's page in a headless Chromium. The walkthrough runs while the killed command-line run waits
out its heartbeat timeout."""

import base64
import gzip
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mnist_pipeline.flows.up import stop_groups
from mnist_pipeline.storage import datasets
from mnist_pipeline.storage import models as model_store
from mnist_pipeline.storage.registry import Registry
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.tasks.core.idx import encode_idx

from tests.browser import chromium_page
from tests.conftest import kaggle_csv, mnist_sample_digits
from tests.deployments.walkthroughs import (
    PAUSED,
    PROJECT,
    left_running,
    like_a_terminal,
    paused,
    resume,
    terminal_shell,
    walkthrough,
)
from tests.http_server import MirrorServer
from tests.services import free_port

ARTIFACTS = os.path.join(PROJECT, "test-artifacts")
SMOKE = {"source": "mnist-sample", "train": {"smoke": True}}
# A smoke run's artifacts have keys of their own, so they never hide the nightly run's.
STAGE_ARTIFACTS = {f"{key}-smoke" for key in (
    "eda-report", "eda-report-html", "training-leaderboard", "evaluation-leaderboard",
    "promotion-decision", "registry-report", "train-all-summary")}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """`mnist up` on a free port with its own Prefect home and storage root; stopped afterwards."""
    base = tmp_path_factory.mktemp("deployed")
    port, serve_port, home = free_port(), free_port(), str(base / "home")
    env = {**os.environ, "PREFECT_HOME": str(base / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_pipeline.flows.cli", "up", "--port", str(port), "--home", home,
         "--serve", "--serve-port", str(serve_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    output = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        output.append(line)
        if line.startswith("ready:"):
            break
    else:
        process.kill()
    if not any(line.startswith("ready:") for line in output):
        process.kill()
        pytest.fail("mnist up did not get ready:\n" + "".join(output))
    api = f"http://127.0.0.1:{port}/api"
    secret_file = os.path.join(home, "prefect-api-auth")
    auth = open(secret_file).read().strip()
    client = httpx.Client(base_url=api, headers={"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()},
                          timeout=30)
    yield {"api": api, "port": port, "serve_port": serve_port, "home": home, "auth": auth, "secret_file": secret_file, "http": client,
           "env": {**env, "PREFECT_API_URL": api, "PREFECT_API_AUTH_STRING": auth, "MNIST_HOME": home}}
    client.close()
    stopping = time.monotonic()
    process.send_signal(signal.SIGTERM)  # what a service manager sends; SIGINT may be ignored (nohup, &)
    rest = process.communicate(timeout=60)[0]
    seconds = time.monotonic() - stopping
    assert process.returncode == 0, rest
    assert "stopped" in rest
    # The server and the worker stop together, and the worker is not waited on for the whole
    # 20 s grace (it turns a first SIGTERM into a graceful Ctrl-C, a second into SIGKILL).
    assert seconds < 15, f"`mnist up` took {seconds:.1f} s to stop"
    print(f"`mnist up` stopped {seconds:.1f} s after SIGTERM")
    for gone in (port, serve_port):  # the server and `mnist serve` are gone: nothing listens on their ports
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", gone), timeout=2).close()


def run_deployment(stack, name: str, config: dict) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "deployment", "run", name, "--param", f"config={json.dumps(config)}"],
        capture_output=True, text=True, env=stack["env"], timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return re.search(r"UUID: ([0-9a-f-]{36})", done.stdout).group(1)


def wait_for(stack, flow_run_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = stack["http"].get(f"/flow_runs/{flow_run_id}").json()
        if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        time.sleep(2)
    pytest.fail(f"flow run {flow_run_id} did not finish in {timeout} s (last state {run['state_type']})")


def test_deployments_are_applied_with_schedule_and_concurrency(stack):
    http = stack["http"]
    deployment = http.get("/deployments/name/mnist/train-all").json()
    assert deployment["work_pool_name"] == "mnist"
    # A module path and no pull step: the worker imports the installed package, from any folder.
    assert deployment["entrypoint"] == "mnist_pipeline.flows.mnist:mnist"
    assert not deployment["pull_steps"] and not deployment["path"]
    assert deployment["job_variables"]["env"]["MNIST_HOME"] == stack["home"]  # recorded by `mnist up`
    [schedule] = deployment["schedules"]
    assert schedule["schedule"]["cron"] == "0 2 * * *" and schedule["active"]
    assert deployment["global_concurrency_limit"]["limit"] == 1
    assert deployment["concurrency_options"]["collision_strategy"] == "ENQUEUE"
    pool = http.get("/work_pools/mnist").json()
    assert pool["type"] == "process"
    variables = pool["base_job_template"]["variables"]
    assert set(variables["properties"]) == {"name", "labels", "stream_output", "env"}
    assert variables["additionalProperties"] is False
    for name in ("mnist/smoke", "predict/batch", "evaluate/rerun"):
        assert http.get(f"/deployments/name/{name}").status_code == 200, name
    automations = http.post("/automations/filter", json={}).json()
    assert "mnist-crash-zombie-runs" in {a["name"] for a in automations}


def test_mnist_up_serves_production_once_there_is_one(stack):
    """`mnist up --serve` starts `mnist serve` beside the worker; with no model promoted yet it
    says so (503) and keeps looking, as the README's "Serving" says."""
    base = f"http://127.0.0.1:{stack['serve_port']}"
    deadline = time.monotonic() + 90
    while True:
        try:
            health = httpx.get(f"{base}/health", timeout=5)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "mnist serve did not answer"
            time.sleep(0.5)
    assert health.status_code == 503 and health.json()["status"] == "no model"
    assert "production" in health.json()["problem"]
    assert httpx.post(f"{base}/invocations", json={"instances": [[0] * 784]}, timeout=5).status_code == 503
    assert "<canvas" in httpx.get(f"{base}/", timeout=5).text


def test_the_server_answers_only_with_the_secret_kept_private_in_the_storage_root(stack):
    assert stat.S_IMODE(os.stat(stack["secret_file"]).st_mode) == 0o600
    assert len(stack["auth"]) >= 32
    for headers in ({}, {"Authorization": "Basic " + base64.b64encode(b"guess").decode()}):
        denied = httpx.post(f"{stack['api']}/flow_runs/filter", json={}, headers=headers, timeout=30)
        assert denied.status_code == 401, headers
        assert httpx.post(f"{stack['api']}/deployments/filter", json={}, headers=headers, timeout=30).status_code == 401
    assert httpx.get(f"{stack['api']}/health", timeout=30).status_code == 200  # probes stay open
    assert stack["http"].post("/flow_runs/filter", json={}).status_code == 200


@pytest.mark.parametrize("override", [
    {"command": "touch {marker}"},
    {"working_dir": "{marker_dir}"},
    {"env": {"PYTHONPATH": "{marker_dir}"}},
])
def test_a_run_cannot_change_what_the_worker_executes(stack, tmp_path, override):
    marker = tmp_path / "ran"
    variables = json.loads(json.dumps(override).replace("{marker}", str(marker)).replace("{marker_dir}", str(tmp_path)))
    deployment = stack["http"].get("/deployments/name/mnist/smoke").json()
    created = stack["http"].post(f"/deployments/{deployment['id']}/create_flow_run",
                                 json={"job_variables": variables, "parameters": {"config": SMOKE}})
    assert created.status_code == 422, created.text
    assert "not allowed" in created.text or "unexpected" in created.text
    assert not marker.exists()


KILLED = {}


def test_a_cli_run_killed_with_sigkill_is_started_and_killed(stack):
    """`mnist train-all` against the server (it finds the secret in the storage root itself),
    killed once its run is Running; the last test of the module checks it ended Crashed."""
    env = {**stack["env"]}
    env.pop("PREFECT_API_AUTH_STRING")
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_pipeline.flows.cli", "train-all", "--source", "mnist-sample", "--home", stack["home"],
         "--no-progress"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    run = None
    while time.monotonic() < deadline and run is None:
        runs = stack["http"].post("/flow_runs/filter", json={
            "flow_runs": {"name": {"any_": ["train-all-mnist-sample"]}, "state": {"type": {"any_": ["RUNNING"]}}}}).json()
        run = runs[0] if runs else None
        time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert run is not None, "the CLI run never showed up as Running (did it find the secret?)"
    KILLED.update(id=run["id"], at=time.monotonic())


def test_the_readme_walkthrough_works_when_pasted_into_a_terminal_and_its_run_shows_in_the_ui(tmp_path):
    """The block runs as written until its last two lines; its smoke run, through its worker, is
    then checked in the API, the registry and the UI; the last two lines stop what it started."""
    script = walkthrough()
    assert "--no-prompt deploy" in script and "--watch" in script
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "MNIST_"))}
    env.update(HOME=str(tmp_path))  # the block itself turns Prefect's telemetry off
    fifo = tmp_path / "resume"
    os.mkfifo(fifo)
    terminal = tmp_path / "terminal.log"
    with open(terminal, "w") as out:
        shell = subprocess.Popen(
            terminal_shell(paused(script.replace("4200", str(port)), fifo)), cwd=PROJECT, env=env,
            start_new_session=True, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=like_a_terminal,
        )
    started = time.monotonic()
    try:
        deadline = started + 300
        while PAUSED not in terminal.read_text() and shell.poll() is None and time.monotonic() < deadline:
            time.sleep(1)
        output = terminal.read_text()
        assert PAUSED in output and shell.poll() is None, output[-4000:]
        seconds = time.monotonic() - started
        assert "Flow run finished successfully in 'Completed'" in output, output[-4000:]
        assert "Failed to send telemetry" not in output
        home = tmp_path / "mnist-data"
        auth = (home / "prefect-api-auth").read_text().strip()
        check_smoke_run(port, auth, str(home))
    finally:
        if resume(fifo):  # the block's last two lines
            shell.wait(timeout=60)
        stop_groups([shell], grace=5)  # whatever the block left running, if it failed midway
    assert shell.returncode == 0, terminal.read_text()[-4000:]
    with pytest.raises(OSError):  # the block's last line stopped the server
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert left_running(shell.pid) == [], "the block's last lines left these running"
    # What the deployment recorded (job variables are `infra_overrides` in the stopped server's SQLite).
    import sqlite3

    with sqlite3.connect(tmp_path / ".prefect" / "prefect.db") as database:
        job_variables, parameters = database.execute(
            "SELECT infra_overrides, parameters FROM deployment WHERE name = 'train-all'").fetchone()
    assert json.loads(job_variables)["env"]["MNIST_HOME"] == str(home)  # recorded from the shell
    assert "source" not in parameters  # the Variable decides
    print(f"walkthrough with server start, deploy and the smoke run: {seconds:.0f} s")


def check_smoke_run(port: int, auth: str, home: str) -> None:
    """The `mnist/smoke` run through the worker: named, its stages' runs and artifacts in the API,
    its models in the registry (the candidate, never production), its page in Chromium."""
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}/api", headers=headers, timeout=30) as http:
        [run] = http.post("/flow_runs/filter", json={"flow_runs": {"name": {"any_": ["train-all-mnist-sample-smoke"]}}}
                          ).json()
        assert run["state_type"] == "COMPLETED", run["state"]
        artifacts = http.post("/artifacts/filter", json={"limit": 200}).json()
        keys = {a["key"] for a in artifacts}
        assert STAGE_ARTIFACTS <= keys, keys
        assert {f"train-progress-{f}-smoke" for f in ("logreg", "svm", "mlp", "cnn")} <= keys
        assert not {"promotion-decision", "training-leaderboard"} & keys
        names = {r["name"] for r in http.post("/flow_runs/filter", json={"limit": 50}).json()}
        version = Registry.open(StorageRoot(home)).list_versions()[0].dataset_version
        assert {"ingest-mnist-sample", f"eda-{version}", f"train-{version}-smoke"} <= names, names
        task_names = {t["name"] for t in http.post("/task_runs/filter", json={"limit": 200}).json()}
        assert {f"train-{f}-{version}" for f in ("logreg", "svm", "mlp", "cnn")} <= task_names
    registry = Registry.open(StorageRoot(home))
    assert registry.alias("production")[0] is None  # a smoke run never becomes production
    assert registry.alias("candidate")[0] is not None
    by_key = {a["key"]: a["id"] for a in artifacts}
    inline = [by_key[key] for key in ("evaluation-cnn-smoke", "eda-report-smoke")]
    screenshot = check_run_page_in_chromium(port, auth, run["id"], run["name"], inline)
    assert os.path.getsize(screenshot) > 10_000


def check_run_page_in_chromium(port: int, auth: str, flow_run_id: str, run_name: str,
                               figure_artifacts: list[str]) -> str:
    os.makedirs(ARTIFACTS, exist_ok=True)
    path = os.path.join(ARTIFACTS, "prefect-flow-run.png")
    with chromium_page(1400, 1000) as page:
        # The UI asks for the secret before it shows anything (and it shows nothing without it).
        page.goto(f"http://127.0.0.1:{port}/runs", timeout=60_000)
        password = page.locator("input[type=password]")
        password.wait_for(timeout=60_000)
        assert "/login" in page.url and run_name not in page.inner_text("body")
        password.fill(auth)
        password.press("Enter")
        page.wait_for_url(lambda url: "/login" not in url, timeout=60_000)
        page.goto(f"http://127.0.0.1:{port}/runs/flow-run/{flow_run_id}", timeout=60_000)
        page.get_by_text(run_name).first.wait_for(timeout=60_000)
        page.get_by_text("Artifacts", exact=True).first.click()
        page.get_by_text("promotion-decision").first.wait_for(timeout=60_000)
        body = page.inner_text("body")
        page.screenshot(path=path, full_page=True)
        # The figures of these markdown artifacts are inline PNGs that the UI draws.
        for artifact_id in figure_artifacts:
            page.goto(f"http://127.0.0.1:{port}/artifacts/artifact/{artifact_id}", timeout=60_000)
            images = page.locator("img[src^='data:image/png']")
            images.first.wait_for(timeout=60_000)
            sizes = images.evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            assert sizes and all(size >= 200 for size in sizes), (artifact_id, sizes)
        page.screenshot(path=os.path.join(ARTIFACTS, "prefect-evaluation-artifact.png"), full_page=True)
    for key in ("evaluation-leaderboard-smoke", "promotion-decision-smoke", "evaluation-cnn-smoke", "train-all-summary-smoke"):
        assert key in body, key
    return path


@pytest.fixture(scope="module")
def notified(stack, tmp_path_factory):
    """The documented failure automation (deployments/notify-on-failure.yaml), pointed at a webhook
    block that posts to this server: what it received is ``posts``."""
    with MirrorServer() as webhook:
        block_id = subprocess.run(
            [sys.executable, "-c",
             "from prefect.blocks.notifications import CustomWebhookNotificationBlock as B; "
             f"print(B(name='mnist', url='{webhook.url}/hook', json_data={{'text': '{{{{body}}}}'}})"
             ".save('mnist-failures', overwrite=True))"],
            capture_output=True, text=True, env=stack["env"], timeout=120, check=True,
        ).stdout.split()[-1]
        with open(os.path.join(PROJECT, "deployments", "notify-on-failure.yaml")) as handle:
            automation = handle.read().replace("00000000-0000-0000-0000-000000000000", block_id)
        path = tmp_path_factory.mktemp("automation") / "notify.yaml"
        path.write_text(automation)
        created = subprocess.run([sys.executable, "-m", "prefect", "automation", "create", "--from-file", str(path)],
                                 capture_output=True, text=True, env=stack["env"], timeout=120)
        assert created.returncode == 0, created.stdout + created.stderr
        yield webhook


def notification_for(webhook, run_name: str, timeout: float = 90) -> bytes:
    """The body of the failure notification naming ``run_name`` (other runs of the stack may end
    badly meanwhile and are notified too: the killed CLI run is marked Crashed, for one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path, body in webhook.posts:
            if run_name.encode() in body:
                assert path == "/hook"
                return body
        time.sleep(1)
    pytest.fail(f"the failure automation sent no notification for {run_name}: {webhook.posts}")


def test_a_failed_run_is_failed_with_its_reason_in_the_logs_and_notified(stack, notified):
    flow_run_id = run_deployment(stack, "mnist/train-all", {"source": "idx:/nonexistent/mnist-files"})
    run = wait_for(stack, flow_run_id)
    assert run["state_type"] == "FAILED"
    assert any("/nonexistent/mnist-files" in entry for entry in run_logs(stack, flow_run_id))
    assert b"Failed" in notification_for(notified, run["name"])


def run_logs(stack, flow_run_id: str) -> list[str]:
    return [entry["message"] for entry in stack["http"].post(
        "/logs/filter", json={"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200}).json()]


# The nightly run on small data: two quick families, no ensemble, a floor low enough for them.
NIGHTLY = {"train": {"models": ["logreg", "mlp"], "ensemble": False,
                     "families": {"logreg": {"steps": 200, "validations": 2}, "mlp": {"steps": 200, "validations": 2}}},
           "promotion": {"min_test_accuracy": 0.5, "min_unseen_test_images": 50}}


def test_four_nights_of_retraining_on_labelled_data_that_keeps_arriving(stack, notified, tmp_path):
    """The nightly deployment as a team runs it, one run a night, on a folder labelled batches arrive
    in: (1) a base set, a production model; (2) a new batch: a new version, a challenger compared
    with the champion on test images neither has seen; (3) nothing new: seconds, nothing made;
    (4) a corrupt batch: the run fails naming it, publishes nothing, moves nothing, and notifies;
    once it is removed, the next run publishes every good batch."""
    digits = mnist_sample_digits()
    digits = digits.take(np.random.default_rng(4).permutation(len(digits)))
    home, incoming = str(tmp_path / "home"), tmp_path / "incoming"
    incoming.mkdir()
    root = StorageRoot(home)
    config = {**NIGHTLY, "home": home, "source": f"batches:{incoming}"}

    def night(expect: str = "COMPLETED") -> dict:
        run = wait_for(stack, run_deployment(stack, "mnist/train-all", config), timeout=420)
        assert run["state_type"] == expect, (run["state"], run_logs(stack, run["id"])[-5:])
        return run

    def registry() -> Registry:
        return Registry.open(root)

    # Night 1: the base set.
    (incoming / "2026-12-01.csv").write_text(kaggle_csv(digits.take(np.arange(2000))))
    night()
    [first] = datasets.list_manifests(root)
    champion, _ = registry().alias("production")
    assert champion is not None and registry().get(champion).dataset_version == first.version

    # Night 2: a new batch (a Parquet file) arrives.
    batch = digits.take(np.arange(2000, 3500))
    pq.write_table(pa.table({"label": batch.labels.astype(np.int64), "image": datasets.image_array(batch.images)}),
                   incoming / "2026-12-02.parquet")
    night()
    second = datasets.list_manifests(root)[-1]
    assert second.version != first.version and sum(second.rows.values()) == 3500
    challenger, _ = registry().alias("candidate")
    assert registry().get(challenger).dataset_version == second.version
    evidence = registry().decision(challenger)
    assert evidence["champion"] == champion and evidence["dataset_version"] == second.version
    # The champion is judged on images it never saw, as its records show: none of the new test
    # split's images were in the train or validation split of the version it learned from.
    seen = model_store.read_record(root, champion).seen
    seen_version, seen = seen.dataset_version, seen.splits
    assert seen_version == first.version and seen == ("train", "validation")
    learned = {image.tobytes() for split in seen for image in datasets.read_split(root, seen_version, split).images}
    test = datasets.read_split(root, second.version, "test")
    assert not any(image.tobytes() in learned for image in test.images)
    assert (evidence["compared_images"], evidence["excluded_images"]) == (len(test), 0)
    assert evidence["promote"] == (evidence["challenger_only_correct"] > evidence["champion_only_correct"]
                                   and evidence["p_value"] < evidence["alpha"])
    assert registry().alias("production")[0] == (challenger if evidence["promote"] else champion)
    production, history = registry().alias("production"), registry().history()
    # What changed tonight, at a glance: the run summary says it, the EDA report measured it.
    summary = stack["http"].post("/artifacts/filter", json={"artifacts": {"key": {"any_": ["train-all-summary"]}},
                                                            "sort": "CREATED_DESC", "limit": 1}).json()[0]["data"]
    assert f"1,500 image(s) added and 0 removed since dataset {first.version}" in summary
    assert "domain classifier ROC AUC" in summary and "| class | added | share before |" in summary

    # Night 3: nothing new.
    quiet = night()
    assert quiet["total_run_time"] < 60, quiet["total_run_time"]
    assert len(datasets.list_manifests(root)) == 2
    assert registry().alias("production") == production and registry().history() == history

    # Night 4: a good IDX pair and a corrupt CSV arrive; the corrupt one blocks the night.
    pair = digits.take(np.arange(3500, 4500))
    (incoming / "2026-12-04-images-idx3-ubyte.gz").write_bytes(gzip.compress(encode_idx(pair.images)))
    (incoming / "2026-12-04-labels-idx1-ubyte.gz").write_bytes(gzip.compress(encode_idx(pair.labels)))
    corrupt = gzip.compress(kaggle_csv(digits.take(np.arange(4500, 5000))).encode())
    (incoming / "2026-12-04-scans.csv.gz").write_bytes(corrupt[: len(corrupt) // 2])
    failed = night("FAILED")
    assert any("batch 2026-12-04-scans.csv.gz" in line and "truncated or corrupt" in line
               for line in run_logs(stack, failed["id"]))
    assert len(datasets.list_manifests(root)) == 2 and (incoming / "2026-12-04-scans.csv.gz").exists()
    assert registry().alias("production") == production and registry().history() == history
    assert b"Failed" in notification_for(notified, failed["name"])
    (incoming / "2026-12-04-scans.csv.gz").unlink()  # a person removes it
    night()
    fourth = datasets.list_manifests(root)[-1]
    assert [part.name for part in fourth.parts] == ["batch 2026-12-01.csv", "batch 2026-12-02.parquet",
                                                          "batch 2026-12-04"]
    assert sum(fourth.rows.values()) == 4500
    print(f"the quiet night took {quiet['total_run_time']:.1f} s")


def test_the_killed_cli_run_ended_crashed_not_running_forever(stack):
    assert KILLED, "the run to check was not started"
    # Heartbeats every 30 s; the automation crashes a run 90 s after its last one.
    deadline = KILLED["at"] + 240
    while True:  # asked at least once: the tests in between may have taken longer than that
        run = stack["http"].get(f"/flow_runs/{KILLED['id']}").json()
        if run["state_type"] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert run["state_type"] == "CRASHED", run["state"]
    assert "heartbeat" in run["state"]["message"]


@pytest.mark.parametrize("phrase", ["prefect --no-prompt deploy", "--watch", "mnist_source"])
def test_the_readme_shows_the_non_interactive_commands(phrase):
    readme = open(os.path.join(PROJECT, "README.md")).read()
    assert phrase in readme
