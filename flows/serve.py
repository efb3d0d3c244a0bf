"""`mnist serve`: the model an alias names (production by default), answering over HTTP, and
following the alias when it moves.

- ``POST /invocations``: MLflow's scoring format (:mod:`mnist_pipeline.tasks.core.serving`);
  ``POST /predict``: image files (PNG, JPEG, IDX; a raw body or multipart), converted exactly as
  `mnist predict` converts them; each answer names the model that gave it.
- ``GET /health``, ``/ping``, ``/version``, ``/metrics`` (Prometheus) and ``/`` (a page to draw a
  digit on).
- Following: a thread looks at the alias every ``poll_seconds``. When it has moved, the new model
  is loaded beside the one serving (its files checked against their checksums, one warm-up
  prediction) and replaces it in one assignment. A request takes the model serving when it
  starts and finishes on it, so no request fails or mixes two models. A model that fails to load
  leaves the old one serving, and `/health` and the log say so.
- Safety: loopback unless ``--host`` is given, and then only with a token; bodies over
  ``MAX_BODY_BYTES`` are refused before they are read; every bad request is a 4xx with a one-line
  JSON ``{"error": ...}``, never a traceback.
"""

import datetime
import functools
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, replace
from importlib.resources import files
from typing import TYPE_CHECKING

import numpy as np
from mnist_pipeline.storage.registry import ALIASES, Registry
from mnist_pipeline.storage.store import Store
from mnist_pipeline.tasks.core.errors import InputError, MnistError
from mnist_pipeline.tasks.core.serving import (
    MAX_BODY_BYTES,
    MAX_IMAGES_PER_REQUEST,
    RequestError,
    bearer_token,
    images_from_request,
    is_loopback,
    token_matches,
)

if TYPE_CHECKING:
    from mnist_pipeline.flows.config import ServeConfig
    from mnist_pipeline.tasks.predict import Registered  # imports Prefect: only where a model loads

# After a model failed to load, the same alias revision is tried again this much later (a
# storage hiccup passes; a damaged file is logged once, not at every look).
RETRY_SECONDS = 60
# A request whose body is this small (a few images) is scored on the event loop: the hop to a
# thread and back costs more than scoring it (a CNN scores one image in about a millisecond).
INLINE_BODY_BYTES = 64 * 1024
# Larger requests are scored on threads, one per core at a time (more would only make torch's and
# BLAS' threads fight over the cores; the rest wait their turn).
SCORING_SLOTS = max(1, os.cpu_count() or 1)
# Pictures in one multipart request to /predict.
MAX_FILES_PER_REQUEST = 100
# A service on a loopback address answers only requests for a loopback host (127.0.0.1,
# localhost, ::1): a web page whose name a DNS server points at 127.0.0.1 ("DNS rebinding")
# cannot read its answers.
# Endpoints counted in the metrics by name; any other path counts as "other".
ENDPOINTS = ("/", "/invocations", "/predict", "/health", "/ping", "/version", "/metrics")
# Answered without the token: the page (it holds no data; it sends the token it is given in its
# address's #token=...) and the liveness check.
OPEN_PATHS = ("/", "/ping")
PAGE = "serve_page.html"

log = logging.getLogger("mnist.serve")


@dataclass(frozen=True)
class Serving:
    """The model answering: loaded, with the alias revision that named it."""

    registered: "Registered"
    alias: str | None
    revision: int | None
    loaded_at: str

    @property
    def model_id(self) -> str:
        return self.registered.model_id

    def version(self) -> dict:
        record = self.registered.record
        return {"model_id": self.model_id, "alias": self.alias, "revision": self.revision,
                "family": record.family, "dataset_version": record.dataset_version,
                "source": record.source, "class_names": list(self.registered.class_names),
                "code_version": record.code_version, "loaded_at": self.loaded_at}


class Follower:
    """The model a reference names (an alias is followed; an id or prefix is fixed), reloaded
    when the alias moves. ``current`` is replaced, never changed, so a reader holds one model."""

    def __init__(self, store: Store, reference: str, poll_seconds: float = 2.0, on_load=lambda outcome: None):
        self.store, self.reference, self.poll_seconds, self.on_load = store, reference, poll_seconds, on_load
        self.alias = reference if reference in ALIASES else None
        self.current: Serving | None = None
        self.problem: str | None = None  # why the model the reference names is not the one serving
        self.looked_at: str | None = None  # when the registry last answered
        self._failed: tuple[str, int | None, float] | None = None  # model id, revision, when
        self._registry = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> None:
        """One look at the registry: when the reference names another model than the one
        serving, load it and swap it in."""
        try:
            model_id, revision = self._named()
        except Exception as error:  # the registry is unreachable or the alias unset: keep serving
            if not isinstance(error, MnistError):  # a connection that failed: a fresh one next time
                self._close_registry()
            self._set_problem(f"cannot tell which model {self.reference} is: {_reason(error)}")
            return
        self.looked_at = _now()
        if self.current is not None and self.current.model_id == model_id:
            if self.current.revision != revision:  # moved away and back between two looks
                self.current = replace(self.current, revision=revision)
            self._set_problem(None)
            return
        if self._failed and self._failed[:2] == (model_id, revision) and time.monotonic() - self._failed[2] < RETRY_SECONDS:
            return
        self._load(model_id, revision)

    def _named(self) -> tuple[str, int | None]:
        """The model the reference names now, and the alias's revision (one query a look)."""
        if self._registry is None:
            self._registry = Registry.open_existing(self.store.root, self.store.registry_url)
        if self.alias:
            model_id, revision = self._registry.alias(self.alias)
            if model_id is None:
                raise InputError(f"no model has the alias {self.alias!r} yet; `mnist train-all` promotes one")
        else:
            model_id, revision = self._registry.resolve(self.reference), None
        return model_id, revision

    def _load(self, model_id: str, revision: int | None) -> None:
        from mnist_pipeline.tasks.predict import load_model

        started = time.perf_counter()
        try:
            lineage, _ = self._registry.lineage(model_id)
            registered = load_model(self.store, model_id, lineage.class_names)
            # One prediction before the swap: the first request on the new model is not its warm-up.
            registered.model.predict_proba(np.zeros((1, 28, 28), np.uint8))
        except Exception as error:  # any failure leaves the serving model in place
            self._failed = (model_id, revision, time.monotonic())
            still = f"still serving {self.current.model_id}" if self.current else "no model to serve"
            self._set_problem(f"{self.reference} names {model_id}, which failed to load ({_reason(error)}); {still}",
                              traceback=not isinstance(error, MnistError))
            self.on_load("failed")
            return
        previous = self.current
        self.current = Serving(registered, self.alias, revision, _now())
        self._failed = None
        self._set_problem(None)
        self.on_load("loaded")
        log.info("serving %s (%s%s), loaded in %.2f s%s", model_id, registered.record.family,
                 f", {self.alias} revision {revision}" if self.alias else "", time.perf_counter() - started,
                 f"; replaced {previous.model_id}" if previous else "")

    def _set_problem(self, problem: str | None, traceback: bool = False) -> None:
        if problem and problem != self.problem:
            log.error(problem, exc_info=traceback)
        self.problem = problem

    def _close_registry(self) -> None:
        if self._registry is not None:
            self._registry.close()
            self._registry = None

    def start(self) -> None:
        """Follow the alias in a thread of its own (a fixed model id needs none)."""
        if self.alias and self._thread is None:
            self._thread = threading.Thread(target=self._follow, name="mnist-serve-follow", daemon=True)
            self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception:  # never the end of following: the next look may go better
                log.exception("looking at %s failed", self.reference)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)  # a look in progress (a slow registry) is not waited out
            if self._thread.is_alive():
                return
        self._close_registry()


class Metrics:
    """Prometheus metrics of one service (a registry of its own: two apps in one process, as in
    the tests, do not share counters)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("mnist_serve_requests", "Requests by endpoint and outcome",
                                ["endpoint", "outcome"], registry=self.registry)
        self.latency = Histogram("mnist_serve_request_seconds", "Time to answer a request, by endpoint", ["endpoint"],
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
                                 registry=self.registry)
        self.images = Counter("mnist_serve_images", "Images scored", registry=self.registry)
        self.loads = Counter("mnist_serve_model_loads", "Model loads by outcome", ["outcome"], registry=self.registry)
        self.model = Gauge("mnist_serve_model_info", "The model answering (value 1)", ["model_id", "alias", "revision"],
                           registry=self.registry)
        self._lock = threading.Lock()  # two scrapes at once each see the model answering

    def count_load(self, outcome: str) -> None:
        self.loads.labels(outcome).inc()

    def observe(self, path: str, status: int, seconds: float) -> None:
        endpoint = path if path in ENDPOINTS else "other"
        self.requests.labels(endpoint, _outcome(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def text(self, serving: Serving | None) -> bytes:
        from prometheus_client import generate_latest

        with self._lock:
            self.model.clear()
            if serving is not None:
                revision = "" if serving.revision is None else str(serving.revision)
                self.model.labels(serving.model_id, serving.alias or "", revision).set(1)
            return generate_latest(self.registry)


def _outcome(status: int) -> str:
    if status < 400:
        return "ok"
    return {401: "unauthorized", 413: "too_large", 503: "unavailable"}.get(
        status, "rejected" if status < 500 else "failed")


def create_app(follower: Follower, token: str | None = None, *, loopback_only: bool = True,
               max_body_bytes: int = MAX_BODY_BYTES, metrics: Metrics | None = None):
    """The FastAPI application over ``follower`` (started and stopped with the app)."""
    from contextlib import asynccontextmanager

    import anyio
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.exceptions import HTTPException

    if metrics is None:
        metrics = Metrics()
        follower.on_load = metrics.count_load
    page = (files("mnist_pipeline.flows") / PAGE).read_text(encoding="utf-8")
    scoring = anyio.CapacityLimiter(SCORING_SLOTS)

    async def scored(function, body_bytes: int):
        if body_bytes <= INLINE_BODY_BYTES:
            return function()
        return await anyio.to_thread.run_sync(function, limiter=scoring)

    @asynccontextmanager
    async def lifespan(_app):
        follower.start()
        try:
            yield
        finally:
            follower.stop()

    app = FastAPI(title="mnist serve", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    def refusal(headers: dict[bytes, bytes], path: str) -> JSONResponse | None:
        """Why a request is not let in (a foreign host name, no token), or None."""
        host = _host_name(headers.get(b"host", b"").decode("latin-1"))
        if loopback_only and not is_loopback(host):
            return error(400, f"this service listens on a loopback address and answers only for loopback "
                              f"hosts (127.0.0.1, localhost, ::1), not the host name {host[:60]!r}")
        if path not in OPEN_PATHS and not token_matches(
                bearer_token(headers.get(b"authorization", b"").decode("latin-1")), token):
            return error(401, "this service needs a token: send `Authorization: Bearer TOKEN`")
        return None

    async def guard_and_measure(app, scope, receive, send):
        """Every request: let in or refused, then counted by endpoint and outcome. Plain ASGI (a
        `@app.middleware` costs about half a millisecond a request in task groups and streams)."""
        if scope["type"] != "http":
            return await app(scope, receive, send)
        started, path, status = time.perf_counter(), scope["path"], 500  # 500: the app raised

        async def noting_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            refused = refusal(dict(scope["headers"]), path)
            if refused is not None:
                await refused(scope, receive, noting_status)
            else:
                await app(scope, receive, noting_status)
        finally:
            metrics.observe(path, status, time.perf_counter() - started)

    app.add_middleware(lambda inner: functools.partial(guard_and_measure, inner))

    @app.exception_handler(RequestError)
    async def bad_request(_request, exc: RequestError):
        return error(exc.status, str(exc))

    @app.exception_handler(MnistError)
    async def unusable_input(_request, exc: MnistError):
        return error(400, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(_request, exc: HTTPException):
        return error(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def bug(request, exc: Exception):
        log.exception("%s %s failed", request.method, request.url.path)
        return error(500, f"internal error ({type(exc).__name__}); the service log has the details")

    def serving() -> Serving:
        current = follower.current
        if current is None:
            raise RequestError(f"no model to answer with yet: {follower.problem or 'loading'}", status=503)
        return current

    def answered(current: Serving, found: list[tuple[list[str] | None, np.ndarray]]) -> JSONResponse:
        from mnist_pipeline.tasks.core.scoring import answers, score

        total = sum(len(images) for _, images in found)
        if total > MAX_IMAGES_PER_REQUEST:
            raise RequestError(f"the request holds {total:,} images; at most {MAX_IMAGES_PER_REQUEST:,} a request",
                               status=413)
        rows = []
        for names, images in found:
            scores = score(current.registered.model, images, current.registered.class_names)
            rows += [answer.as_json() for answer in answers(scores, current.model_id, names)]
        metrics.images.inc(len(rows))
        return JSONResponse({"predictions": rows}, headers={"X-Model-Id": current.model_id})

    @app.post("/invocations")
    async def invocations(request: Request):
        content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise RequestError(f"/invocations takes application/json (MLflow's scoring format), not {content_type}; "
                               "send image files to /predict", status=415)
        body = await _limited_body(request, max_body_bytes)
        current = serving()

        def parse_and_score():
            try:
                payload = json.loads(body)
            except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested thousands deep
                raise RequestError(f"the body is not JSON ({str(exc)[:80]})") from None
            return answered(current, [(None, images_from_request(payload))])

        return await scored(parse_and_score, len(body))

    @app.post("/predict")
    async def predict(request: Request, preprocess: str = "auto"):
        from mnist_pipeline.storage.inputs import images_in_bytes
        from mnist_pipeline.tasks.core.images import PREPROCESS_MODES
        from mnist_pipeline.tasks.predict import prepared

        if preprocess not in PREPROCESS_MODES:
            raise RequestError(f"unknown preprocess {preprocess!r}; choose from {', '.join(PREPROCESS_MODES)}")
        uploads = await _uploads(request, max_body_bytes)
        current = serving()

        def score_uploads():
            found = []
            for name, data in uploads:
                names, images = prepared(images_in_bytes(data, name, MAX_IMAGES_PER_REQUEST), preprocess,
                                         current.registered.digits)
                found.append((names, images))
            return answered(current, found)

        return await scored(score_uploads, sum(len(data) for _, data in uploads))

    # The checks answer on the event loop, never queued behind scoring.
    @app.get("/ping")
    async def ping():
        return Response(status_code=200 if follower.current else 503)

    @app.get("/health")
    async def health():
        current = follower.current
        body = {"status": "ok" if current and not follower.problem else "stale" if current else "no model",
                "model_id": current.model_id if current else None, "reference": follower.reference,
                "revision": current.revision if current else None, "problem": follower.problem,
                "looked_at": follower.looked_at}
        return JSONResponse(body, status_code=200 if current else 503)

    @app.get("/version")
    def version():
        return JSONResponse(serving().version())

    @app.get("/metrics")
    def prometheus():
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.text(follower.current), media_type=CONTENT_TYPE_LATEST)

    @app.get("/")
    def draw_page():
        return HTMLResponse(page)

    return app


async def _limited_body(request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed ``limit`` bytes."""
    from starlette.requests import ClientDisconnect

    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestError(f"the body is {int(declared):,} bytes; at most {limit:,} are read", status=413)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestError(f"the body is over {limit:,} bytes, the most that is read", status=413)
            chunks.append(chunk)
    except ClientDisconnect:
        raise RequestError("the client went away before its body arrived") from None
    body = b"".join(chunks)
    if not body:
        raise RequestError("the body is empty; send an image file, or JSON to /invocations")
    return body


async def _uploads(request, limit: int) -> list[tuple[str, bytes]]:
    """The files of a /predict request: each part of a multipart form, or the raw body."""
    from starlette.requests import Request

    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        raise RequestError("/predict takes image files (PNG, JPEG, IDX); send JSON pixel lists to /invocations",
                           status=415)
    body = await _limited_body(request, limit)
    if content_type != "multipart/form-data":
        return [(request.query_params.get("name", "body"), body)]

    async def replay():  # the form parser reads the body already read (and size-checked)
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form(max_files=MAX_FILES_PER_REQUEST, max_fields=MAX_FILES_PER_REQUEST)
    try:
        uploads = [(part.filename or key, await part.read()) for key, part in form.multi_items() if hasattr(part, "read")]
    finally:
        await form.close()
    if not uploads:
        raise RequestError("the multipart form holds no file; attach images as file fields")
    empty = [name for name, data in uploads if not data]
    if empty:
        raise RequestError(f"{empty[0]} is empty (0 bytes); give a PNG or JPEG image")
    return uploads


def _host_name(host: str) -> str:
    """The name of a Host header, without its port: ``[::1]:8000`` -> ``::1``."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _reason(error: Exception) -> str:
    return str(error) if isinstance(error, MnistError) else f"{type(error).__name__}: {error}"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _one_thread_a_scoring() -> None:
    """Torch and BLAS on one thread per scoring: requests run side by side on the cores instead.
    A one-image CNN forward split over two threads took longer than on one (their spinning
    thread teams fight): 465 against 670 requests a second at 8 clients (benchmarks/serve.py)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(limits=1)


def serve(config: "ServeConfig") -> int:
    """Serve until SIGINT or SIGTERM (uvicorn installs its handlers, so a background job that
    inherited SIGINT ignored still stops on Ctrl-C's signal)."""
    import uvicorn

    store = config.store()
    store.existing_root()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _one_thread_a_scoring()
    metrics = Metrics()
    follower = Follower(store, config.model, config.poll_seconds, on_load=metrics.count_load)
    follower.refresh()
    if follower.current is None and follower.alias is None:
        raise InputError(follower.problem or f"model {config.model!r} cannot be loaded")
    app = create_app(follower, config.token.get_secret_value() if config.token else None,
                     loopback_only=is_loopback(config.host), metrics=metrics)
    log.info("mnist serve on http://%s:%d (model %s%s)", config.host, config.port, config.model,
             f", following it every {config.poll_seconds:g} s" if follower.alias else "")
    server = uvicorn.Server(uvicorn.Config(app, host=config.host, port=config.port, access_log=False,
                                           log_level="info", timeout_graceful_shutdown=10))
    server.run()
    return 0 if server.started else 1
