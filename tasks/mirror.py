"""Bringing the MLflow mirror up to date with the registry: after every pipeline run (the task
``mirror-to-mlflow`` of ``tasks/registry.py``), after every alias moved by hand, and on demand
(`mnist models sync-mlflow`). No Prefect here: the commands that move aliases run no flow.

One idempotent pass does it all: every registered version gets its run (under the run of the
pipeline run that registered it) and its version of the lineage's registered model, the test
scores on newer dataset versions are added, and the aliases are set where ours are. The registry
is only read: whatever MLflow does, it never changes our models, aliases or a run's outcome. A
mirror that cannot be reached is one warning line and a "behind" in the run summary.
"""

import json
from dataclasses import dataclass

from mnist_pipeline.storage import evaluations as evaluation_store
from mnist_pipeline.storage import models as model_store
from mnist_pipeline.storage.mlflow_mirror import FoundRun, MlflowMirror, quiet_retries
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.storage.store import Store
from mnist_pipeline.tasks.core import mirror as spec
from mnist_pipeline.tasks.core.promotion import Lineage
from mnist_pipeline.tasks.core.results import FlowRun, MirrorReport, RegisteredModel


@dataclass(frozen=True)
class _Ours:
    """What the registry holds that the mirror reflects, read in one go (then the registry is
    closed: it is never held open while MLflow answers)."""

    versions: list[RegisteredModel]
    flow_runs: dict[str, FlowRun]
    aliases: list[spec.AliasTarget]


def sync_mlflow(store: Store, current: FlowRun | None = None, create: bool = False) -> MirrorReport:
    """Make the MLflow mirror hold every registered version and our aliases; raises when MLflow
    cannot be reached or refuses (nothing of ours changes either way). ``current``: the pipeline
    run this is part of, when it is one; ``create``: a registry not made yet is an empty one."""
    ours = _read_registry(store, current, create)
    mirror = MlflowMirror(store.mlflow_uri)
    with quiet_retries():
        parents = mirror.runs(spec.PIPELINE, spec.FLOW_RUN_TAG)
        trained = mirror.runs(spec.TRAINING, spec.MODEL_ID_TAG)
        made_runs, made_versions, registered = 0, 0, {}
        for model in ours.versions:
            run = _finished(mirror, trained.get(model.model_id))
            if run is None:
                parent = None
                if model.flow_run:
                    parent = _finished(mirror, parents.get(model.flow_run))
                    if parent is None:
                        parent = parents[model.flow_run] = mirror.create_run(spec.pipeline_run(
                            ours.flow_runs.get(model.flow_run, FlowRun(model.flow_run)),
                            _started(ours.versions, model.flow_run)))
                        made_runs += 1
                record = model_store.read_record(store.root, model.model_id)
                run = mirror.create_run(spec.training_run(model, record), parent.run_id if parent else None,
                                        _artifacts(store.root, model, record))
                made_runs += 1
            missing = [metric for metric in spec.other_evaluations(model) if metric.key not in run.metrics]
            if missing:
                mirror.add_metrics(run.run_id, missing)
            name = spec.registered_model_name(Lineage(model.source, model.class_names))
            if name not in registered:
                mirror.ensure_registered_model(name, _description(model), {
                    "mnist.source": model.source, "mnist.class_names": json.dumps(list(model.class_names))})
                registered[name] = mirror.versions(name)
            if model.model_id not in registered[name]:
                registered[name][model.model_id] = mirror.create_version(name, run, _version_tags(model), model.card)
                made_versions += 1
        aliases = _set_aliases(mirror, registered, ours.versions, ours.aliases)
    return MirrorReport(mirror.uri, runs_made=made_runs, versions_made=made_versions, aliases=aliases)


def _read_registry(store: Store, current: FlowRun | None, create: bool) -> _Ours:
    with store.registry(create=create) as registry:
        versions = registry.list_versions()
        flow_runs = registry.flow_runs()
        current_ids = {alias: registry.alias(alias)[0] for alias in spec.ALIASES}
        last_moves = {alias: next(iter(registry.history(alias)[-1:]), None) for alias in spec.ALIASES}
        production, candidate = current_ids["production"], current_ids["candidate"]
        decisions = {"production": registry.decision(production, promoted=True) if production else None,
                     "candidate": registry.decision(candidate) if candidate else None}
    if current is not None:
        flow_runs[current.id] = current
    return _Ours(versions, flow_runs, spec.alias_targets(current_ids, last_moves, decisions))


def mirror_quietly(store: Store, current: FlowRun | None, warn) -> MirrorReport:
    """:func:`sync_mlflow` where a failure must not fail what called it: the report says the
    mirror is behind, and ``warn`` gets one line saying so."""
    if not store.mlflow_uri:
        return MirrorReport(None)
    try:
        return sync_mlflow(store, current, create=current is not None)
    except Exception as error:  # MLflow down or refusing, or mlflow-skinny missing: never ours to fail on
        report = MirrorReport(store.mlflow_uri, error=_reason(error))
        warn(report.describe())
        return report


def _finished(mirror: MlflowMirror, run: FoundRun | None) -> FoundRun | None:
    """``run`` if it was finished; one an earlier attempt left unfinished is removed."""
    if run is not None and run.status != "FINISHED":
        mirror.discard(run.run_id)
        return None
    return run


def _started(versions: list[RegisteredModel], flow_run: str) -> int | None:
    """When a pipeline run registered its first model (ms since the epoch): its parent run's start."""
    times = [spec.epoch_ms(v.registered_at) for v in versions if v.flow_run == flow_run]
    return min((t for t in times if t is not None), default=None)


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


def _version_tags(model: RegisteredModel) -> dict[str, str]:
    return {spec.MODEL_ID_TAG: model.model_id, "mnist.family": model.family,
            "mnist.dataset_version": model.dataset_version, "mnist.smoke": str(model.smoke).lower(),
            "mnist.code_version": model.code_version}


def _description(model: RegisteredModel) -> str:
    return (f"Classifiers of {Lineage(model.source, model.class_names)} trained by mnist-pipeline. A mirror of its "
            "registry, which is the source of truth: versions carry its model ids (tag mnist.model_id), and the "
            "production and candidate aliases follow its own.")


def _set_aliases(mirror: MlflowMirror, registered: dict, versions: list[RegisteredModel],
                 targets: list[spec.AliasTarget]) -> tuple[str, ...]:
    """Each alias on the version of ours it names, and on no other registered model; the tags
    saying why on that version only."""
    lineage_of = {v.model_id: spec.registered_model_name(Lineage(v.source, v.class_names)) for v in versions}
    wanted = {t.alias: (lineage_of[t.model_id], registered[lineage_of[t.model_id]][t.model_id], t) for t in targets}
    shown = []
    for name, found in registered.items():
        present = mirror.aliases(name)
        for alias in spec.ALIASES:
            target = wanted.get(alias)
            if target is not None and target[0] == name:
                if present.get(alias) != target[1].version:
                    mirror.set_alias(name, alias, target[1].version)
                shown.append(f"{alias}: {name} v{target[1].version}")
            elif alias in present:
                mirror.delete_alias(name, alias)
            for model_id, version in found.items():
                tags = target[2].tags if target is not None and target[2].model_id == model_id else {}
                for key, value in tags.items():
                    if version.tags.get(key) != value:
                        mirror.set_version_tag(name, version.version, key, value)
                for key in version.tags:
                    if key.startswith(f"mnist.{alias}.") and key not in tags:
                        mirror.delete_version_tag(name, version.version, key)
    return tuple(sorted(shown))


def _reason(error: BaseException) -> str:
    """Why the mirror could not be brought up to date, in a few words."""
    text = " ".join(str(error).split())
    if "Connection refused" in text or "NewConnectionError" in text:
        return "the server does not answer (connection refused)"
    if "timed out" in text.lower():
        return "the server did not answer in time"
    text = f"{type(error).__name__}: {text}"
    return text if len(text) <= 300 else text[:297] + "..."
