"""Bringing the MLflow mirror up to date with the registry: after every pipeline run (the task
``mirror-to-mlflow`` of ``tasks/registry.py``), after every alias moved by hand, and on demand
(`mnist models sync-mlflow`). No Prefect here: the commands that move aliases run no flow.

One idempotent pass does it all: every registered version gets its run (under the run of the
pipeline run that registered it) and its version of the lineage's registered model, the test
scores an existing run lacks are added, and the aliases are set where ours are. The registry is
only read, and closed before MLflow is asked anything: whatever MLflow does, it never changes our
models, aliases or a run's outcome. A model whose files cannot be read is left out (and named);
the others, and the aliases, are still mirrored.
"""

import json
import time
from dataclasses import dataclass

from mnist_pipeline.storage import evaluations as evaluation_store
from mnist_pipeline.storage import models as model_store
from mnist_pipeline.storage.mlflow_mirror import FoundRun, MirrorUnavailable, MlflowMirror, session
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.storage.store import Store
from mnist_pipeline.tasks.core import mirror as spec
from mnist_pipeline.tasks.core.errors import MnistError
from mnist_pipeline.tasks.core.promotion import Lineage
from mnist_pipeline.tasks.core.results import FlowRun, MirrorReport, RegisteredModel

# A run of ours left RUNNING this long was cut off (a sync takes seconds): it is replaced. A
# younger one is another sync at work: left to it, and its model mirrored by the next sync.
ABANDONED_AFTER_S = 600


@dataclass(frozen=True)
class _Ours:
    """What the registry holds that the mirror reflects, read in one go."""

    versions: list[RegisteredModel]
    flow_runs: dict[str, FlowRun]
    aliases: list[spec.AliasTarget]


def sync_mlflow(store: Store, pipeline: FlowRun | None = None, create: bool = False) -> MirrorReport:
    """Make the MLflow mirror hold every registered version and our aliases. Raises
    :class:`MirrorUnavailable` when MLflow does not answer or refuses (nothing of ours changes
    either way). ``pipeline``: the pipeline run this sync ends, whose parent run is made even when
    it registered nothing new; ``create``: a registry not made yet counts as an empty one."""
    ours = _read_registry(store, pipeline, create)
    mirror = MlflowMirror(store.mlflow_uri)
    try:
        with session():
            return _sync(store.root, mirror, ours, pipeline)
    except mirror.errors() as error:
        raise MirrorUnavailable(_reason(error)) from error


def _sync(root: StorageRoot, mirror: MlflowMirror, ours: _Ours, pipeline: FlowRun | None) -> MirrorReport:
    parents = mirror.runs(spec.PIPELINE, spec.FLOW_RUN_TAG)
    trained = mirror.runs(spec.TRAINING, spec.MODEL_ID_TAG)
    made_runs, made_versions, registered, present, left_out = 0, 0, {}, {}, []

    def parent_of(flow_run: str) -> FoundRun:
        nonlocal made_runs
        parent = _unless_abandoned(mirror, parents.get(flow_run))  # one another sync is making will do
        if parent is None:
            parent = parents[flow_run] = mirror.create_run(spec.pipeline_run(
                ours.flow_runs.get(flow_run, FlowRun(flow_run)), *_span(ours.versions, flow_run)))
            made_runs += 1
        return parent

    if pipeline is not None:
        parent_of(pipeline.id)
    for model in ours.versions:
        run = _unless_abandoned(mirror, trained.get(model.model_id))
        if run is not None and run.status != "FINISHED":
            left_out.append(f"{model.model_id} (another sync is mirroring it)")
            continue
        if run is None:
            try:
                record = model_store.read_record(root, model.model_id)
                files = _artifacts(root, model, record)
            except (MnistError, OSError) as error:  # its files are gone or damaged: the others still go
                left_out.append(f"{model.model_id} ({' '.join(str(error).split())})")
                continue
            parent = parent_of(model.flow_run).run_id if model.flow_run else None
            run = mirror.create_run(spec.training_run(model, record), parent, files)
            made_runs += 1
        scores = spec.changed(spec.evaluation_metrics(model), run.metrics)
        if scores:
            mirror.add_metrics(run.run_id, scores)
        name = spec.registered_model_name(Lineage(model.source, model.class_names))
        if name not in registered:
            present[name] = mirror.ensure_registered_model(name, spec.registered_model_description(model),
                                                           spec.lineage_tags(model))
            registered[name] = mirror.versions(name)
        if model.model_id not in registered[name]:
            registered[name][model.model_id] = mirror.create_version(name, run, spec.version_tags(model), model.card)
            made_versions += 1
    for edit in spec.alias_edits(registered, present, ours.aliases):
        mirror.apply(edit)
    error = f"left out {len(left_out)} model(s): {'; '.join(left_out)}" if left_out else None
    return MirrorReport(mirror.uri, error=error, runs_made=made_runs, versions_made=made_versions,
                        aliases=spec.alias_places(registered, ours.aliases))


def mirror_quietly(store: Store, pipeline: FlowRun | None, warn) -> MirrorReport:
    """:func:`sync_mlflow` where a failure must not fail what called it (a pipeline run, a moved
    alias): the report says the mirror is behind, and ``warn`` gets one line saying so."""
    if not store.mlflow_uri:
        return MirrorReport(None)
    try:
        report = sync_mlflow(store, pipeline, create=pipeline is not None)
    except Exception as error:  # whatever MLflow does, it is never ours to fail on
        shown = str(error) if isinstance(error, MnistError) else f"{type(error).__name__}: {error}"
        report = MirrorReport(store.mlflow_uri, error=" ".join(shown.split()))
    if report.error is not None:
        warn(report.describe())
    return report


def _read_registry(store: Store, pipeline: FlowRun | None, create: bool) -> _Ours:
    with store.registry(create=create) as registry:
        versions = registry.list_versions()
        flow_runs = registry.flow_runs()
        current = {alias: registry.alias(alias)[0] for alias in spec.ALIASES}
        last_moves = {alias: next(iter(registry.history(alias)[-1:]), None) for alias in spec.ALIASES}
        decisions = {"production": registry.decision(current["production"], promoted=True)
                     if current["production"] else None,
                     "candidate": registry.decision(current["candidate"]) if current["candidate"] else None}
    if pipeline is not None:
        flow_runs[pipeline.id] = pipeline
    return _Ours(versions, flow_runs, spec.alias_targets(current, last_moves, decisions))


def _unless_abandoned(mirror: MlflowMirror, run: FoundRun | None) -> FoundRun | None:
    """``run``, unless an attempt cut off long ago left it unfinished: then it is removed (None)."""
    age_s = time.time() - (run.start_ms or 0) / 1000 if run is not None else 0
    if run is not None and run.status != "FINISHED" and age_s > ABANDONED_AFTER_S:
        mirror.discard(run.run_id)
        return None
    return run


def _span(versions: list[RegisteredModel], flow_run: str) -> tuple[int | None, int | None]:
    """When a pipeline run registered its first and its last model (ms since the epoch)."""
    times = [t for t in (spec.epoch_ms(v.registered_at) for v in versions if v.flow_run == flow_run) if t is not None]
    return (min(times), max(times)) if times else (None, None)


def _artifacts(root: StorageRoot, model: RegisteredModel, record: dict) -> dict[str, bytes]:
    """A model's run artifacts: its own files (checked) under ``model/``, its card, and the figures
    of its evaluation on its dataset's test split."""
    files = {f"model/{name}": data for name, data in model_store.read_model_files(root, model.model_id, record).items()}
    files[f"model/{model_store.RECORD}"] = json.dumps(record, indent=2, sort_keys=True, default=str).encode()
    files["model_card.md"] = model.card.encode()
    if evaluation_store.find_evaluation(root, model.model_id, model.dataset_version):
        for name, png in evaluation_store.read_figures(root, model.model_id, model.dataset_version).items():
            files[f"evaluation/{name}.png"] = png
    return files


def _reason(error: BaseException) -> str:
    """Why MLflow could not be brought up to date, in a few words."""
    text = " ".join(str(error).split())
    if "Connection refused" in text or "NewConnectionError" in text:
        return "the server does not answer (connection refused)"
    if "timed out" in text.lower():
        return "the server did not answer in time"
    text = f"{type(error).__name__}: {text}"
    return text if len(text) <= 300 else text[:297] + "..."
