"""What the MLflow mirror should hold, computed from the registry and the training records (pure:
no MLflow, no Prefect, no storage; ``storage/mlflow_mirror.py`` writes it, ``tasks/mirror.py``
wires it).

Our registry stays the source of truth; MLflow gets a copy that teams already watch:

- one **parent run per pipeline run** (Prefect flow run), named like it and tagged with its id
  and URL, and under it **one run per model it registered**: its config as params, its validation
  curve as step metrics, its test metrics, and its lineage, dataset, code version and seed as tags;
- one **registered model per lineage** (the problem a model solves: ``mnist-fashion-mnist``),
  with **a version per model** of ours, tagged with our model id;
- the ``production`` and ``candidate`` **aliases where ours are**, with the reason of their last
  move and, for a promotion, McNemar's evidence as tags of the version they name.

Everything is keyed by our ids (tags ``mnist.model_id`` and ``prefect.flow_run_id``), so bringing
the mirror up to date is idempotent: what exists is found, what is missing is made.
"""

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from mnist_pipeline.tasks.core.promotion import Lineage
from mnist_pipeline.tasks.core.records import TrainingRecord
from mnist_pipeline.tasks.core.results import AliasChange, FlowRun, RegisteredModel

# Tags that identify what we made (searched for, so their names never change).
MODEL_ID_TAG = "mnist.model_id"
FLOW_RUN_TAG = "prefect.flow_run_id"
KIND_TAG = "mnist.kind"  # "pipeline" (a parent run) or "training" (a model's run)
PIPELINE, TRAINING = "pipeline", "training"
# MLflow's own tags: a run's parent, its name and description (shown in the UI), its commit.
PARENT_TAG, NAME_TAG, NOTE_TAG, COMMIT_TAG = ("mlflow.parentRunId", "mlflow.runName", "mlflow.note.content",
                                              "mlflow.source.git.commit")
ALIASES = ("production", "candidate")
# A registered model's name: "mnist-" and the lineage's known dataset, or its own data's source
# folder and a hash of source and class names (two folders of the same name are two problems).
NAME_PREFIX = "mnist-"
KNOWN_SOURCE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# MLflow refuses longer values (params: 6,000 characters in 3.x, 500 in old releases; run tags:
# 8,000): they are cut, and say so. The whole model card is an artifact of the run too.
MAX_PARAM_CHARS = 500
MAX_TAG_CHARS = 8000
# What a test evaluation's metrics are called in a model's run (the summary ``metrics.json`` keys).
TEST_METRICS = {
    "accuracy": "test_accuracy",
    "macro_f1": "test_macro_f1",
    "expected_calibration_error": "test_ece",
    "expected_calibration_error_uncalibrated": "test_ece_uncalibrated",
    "throughput_images_per_s": "test_images_per_s",
    "latency_ms_one_image": "test_latency_ms",
    "model_size_bytes": "model_size_bytes",
}


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    step: int = 0


@dataclass(frozen=True)
class RunSpec:
    """One MLflow run as it should be: name, params, metrics and tags (artifacts come with it)."""

    name: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: tuple[Metric, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    start_ms: int | None = None
    end_ms: int | None = None


@dataclass(frozen=True)
class AliasTarget:
    """Where one of our aliases points, and why it moved there last."""

    alias: str
    model_id: str
    tags: dict[str, str]  # for the model version it names: mnist.<alias>.reason, ... evidence


def registered_model_name(lineage: Lineage) -> str:
    """The MLflow registered model of a lineage: ``mnist-fashion-mnist`` for a known dataset,
    ``mnist-<folder>-<hash>`` for your own data."""
    if KNOWN_SOURCE.match(lineage.source):
        return NAME_PREFIX + lineage.source
    where = lineage.source.split(":", 1)[-1].rstrip("/").rsplit("/", 1)[-1]
    slug = re.sub(r"[^a-z0-9]+", "-", where.lower()).strip("-")[:40] or "data"
    digest = hashlib.sha256(json.dumps([lineage.source, list(lineage.class_names)]).encode()).hexdigest()[:8]
    return f"{NAME_PREFIX}{slug}-{digest}"


def pipeline_run(flow_run: FlowRun, started_ms: int | None = None, ended_ms: int | None = None) -> RunSpec:
    """The parent run of every model a pipeline run registered (from when it registered its first
    to its last, where known)."""
    tags = {KIND_TAG: PIPELINE, FLOW_RUN_TAG: flow_run.id}
    if flow_run.url:
        tags["prefect.flow_run_url"] = flow_run.url
    return RunSpec(name=flow_run.name or f"flow-run-{flow_run.id[:8]}", tags=tags, start_ms=started_ms,
                   end_ms=ended_ms)


def training_run(model: RegisteredModel, record: TrainingRecord) -> RunSpec:
    """A model's run: config as params, the validation curve as step metrics, its test metrics
    on its own dataset version, and what it is as tags (its model card as the run's note)."""
    params = {"family": model.family, "seed": str(model.seed), "dataset_version": model.dataset_version,
              **{f"config.{key}": _param(value) for key, value in sorted(model.config.items())}}
    for split, rows in sorted(record.rows.items()):
        params[f"rows.{split}"] = str(rows)
    params["threads"] = str(record.threads)
    metrics = [*curve(record.history),
               Metric("best_validation_accuracy", model.validation_accuracy),
               Metric("train_seconds", model.train_seconds)]
    metrics += test_metrics(model.metrics)
    tags = {KIND_TAG: TRAINING, **version_tags(model), **lineage_tags(model),
            "mnist.lineage": str(Lineage(model.source, model.class_names)), "mnist.seed": str(model.seed),
            NOTE_TAG: _cut(model.card, MAX_TAG_CHARS)}
    if model.code_version.startswith("git:"):
        tags[COMMIT_TAG] = model.code_version.removeprefix("git:").split("+", 1)[0]
    if model.flow_run:
        tags[FLOW_RUN_TAG] = model.flow_run
    end_ms = epoch_ms(record.trained_at)
    start_ms = None if end_ms is None else end_ms - round(model.train_seconds * 1000)
    return RunSpec(name=f"{model.family}-{model.dataset_version[:8]}", params=params, metrics=tuple(metrics),
                   tags=tags, start_ms=start_ms, end_ms=end_ms)


def version_tags(model: RegisteredModel) -> dict[str, str]:
    """What a model is, on its run and on its registered model's version: our id first."""
    return {MODEL_ID_TAG: model.model_id, "mnist.family": model.family, "mnist.dataset_version": model.dataset_version,
            "mnist.smoke": str(model.smoke).lower(), "mnist.code_version": model.code_version}


def lineage_tags(model: RegisteredModel) -> dict[str, str]:
    """The problem a model solves, on its run and on its lineage's registered model."""
    return {"mnist.source": model.source, "mnist.class_names": json.dumps(list(model.class_names))}


def registered_model_description(model: RegisteredModel) -> str:
    return (f"Classifiers of {Lineage(model.source, model.class_names)} trained by mnist-pipeline. A mirror of its "
            "registry, which is the source of truth: versions carry its model ids (tag mnist.model_id), and the "
            "production and candidate aliases follow its own.")


def curve(history: Sequence[dict]) -> list[Metric]:
    """Every number a training step reported (validation accuracy, loss...), as step metrics; a
    step named rather than counted (the SVM's stages) is numbered by its place in the history."""
    return [Metric(key, float(value), entry["step"] if isinstance(entry.get("step"), int) else position)
            for position, entry in enumerate(history, start=1) for key, value in entry.items()
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)]


def test_metrics(summary: dict) -> list[Metric]:
    """The numbers of a model's evaluation on its own dataset version's test split, as metrics."""
    return [Metric(name, float(summary[key])) for key, name in TEST_METRICS.items()
            if isinstance(summary.get(key), (int, float))]


def evaluation_metrics(model: RegisteredModel) -> list[Metric]:
    """Every test score the registry holds of a model: on its own dataset version, and the accuracy
    on each other one (a champion re-scored on newer data) as ``test_accuracy.on.<version>``. A
    sync logs those an existing run lacks, or holds another value of (a forced re-evaluation)."""
    return test_metrics(model.metrics) + [
        Metric(f"test_accuracy.on.{version}", evaluated.accuracy)
        for version, evaluated in sorted(model.evaluations.items()) if version != model.dataset_version]


def changed(metrics: list[Metric], held: dict[str, float]) -> list[Metric]:
    """The metrics a run lacks, or holds another latest value of."""
    return [m for m in metrics if m.key not in held or abs(held[m.key] - m.value) > 1e-12]


def alias_targets(current: dict[str, str | None], last_moves: dict[str, AliasChange | None],
                  decisions: dict[str, dict | None]) -> list[AliasTarget]:
    """Where each alias should point in MLflow and the tags that say why: the reason, action and
    time of its last move and, when a pipeline run's decision moved it, McNemar's evidence.

    Per alias: ``current``, our model id (None: unset); ``last_moves``, its last history entry;
    ``decisions``, the promotion decision behind it (for production, the one that promoted it)."""
    targets = []
    for alias in ALIASES:
        model_id = current.get(alias)
        if model_id is None:
            continue
        tags = {}
        move = last_moves.get(alias)
        if move is not None and move.to_model == model_id:
            tags.update({"reason": move.reason, "action": move.action, "changed_at": move.changed_at,
                         "revision": str(move.revision), "previous": move.from_model or "-"})
        decision = decisions.get(alias)
        if decision and decision.get("challenger") == model_id and (move is None or move.action == "promote"):
            for key in ("p_value", "challenger_only_correct", "champion_only_correct", "challenger_accuracy",
                        "champion_accuracy", "champion", "alpha", "promote"):
                if decision.get(key) is not None:
                    tags[f"mcnemar.{key}" if key in ("p_value", "challenger_only_correct", "champion_only_correct")
                         else key] = str(decision[key])
            tags.setdefault("decision", decision.get("reason", ""))
        targets.append(AliasTarget(alias, model_id, {f"mnist.{alias}.{key}": value for key, value in tags.items()}))
    return targets


def _param(value) -> str:
    return _cut(value if isinstance(value, str) else json.dumps(value, sort_keys=True), MAX_PARAM_CHARS)


def _cut(text: str, limit: int) -> str:
    cut = "...(cut)"
    return text if len(text) <= limit else text[:limit - len(cut)] + cut


def epoch_ms(timestamp: str | None) -> int | None:
    """An ISO 8601 time (ours: UTC, with Z or an offset) as milliseconds since the epoch."""
    if not timestamp:
        return None
    import datetime

    moment = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return round(moment.timestamp() * 1000)


@dataclass(frozen=True)
class HeldVersion:
    """A version of a registered model as the mirror holds it."""

    version: str
    tags: dict[str, str]


@dataclass(frozen=True)
class Edit:
    """One change the mirror needs for its aliases to be where ours are."""

    action: str  # set_alias, delete_alias, set_tag, delete_tag
    name: str  # the registered model
    key: str  # the alias, or the tag
    version: str | None = None
    value: str | None = None


def alias_edits(held: dict[str, dict[str, HeldVersion]], present: dict[str, dict[str, str]],
                targets: list[AliasTarget]) -> list[Edit]:
    """What makes each alias name, in MLflow, the version of the model ours names, on that model's
    registered model only, with the tags saying why on that version only.

    ``held``: registered model -> our model id -> its version; ``present``: registered model ->
    alias -> version. An alias whose model the mirror does not hold (it could not be made) is
    left as it is, rather than taken away."""
    where = {model_id: (name, version) for name, versions in held.items() for model_id, version in versions.items()}
    wanted = {target.alias: target for target in targets}
    edits = []
    for alias in ALIASES:
        target = wanted.get(alias)
        if target is not None and target.model_id not in where:
            continue
        place = where[target.model_id] if target is not None else None
        for name in sorted(held):
            if place is not None and place[0] == name:
                if present.get(name, {}).get(alias) != place[1].version:
                    edits.append(Edit("set_alias", name, alias, place[1].version))
            elif alias in present.get(name, {}):
                edits.append(Edit("delete_alias", name, alias))
            for model_id, version in sorted(held[name].items()):
                tags = target.tags if target is not None and target.model_id == model_id else {}
                edits += [Edit("set_tag", name, key, version.version, value) for key, value in sorted(tags.items())
                          if version.tags.get(key) != value]
                edits += [Edit("delete_tag", name, key, version.version) for key in sorted(version.tags)
                          if key.startswith(f"mnist.{alias}.") and key not in tags]
    return edits


def alias_places(held: dict[str, dict[str, HeldVersion]], targets: list[AliasTarget]) -> tuple[str, ...]:
    """Where each alias is once the edits are made: ``production: mnist-mnist v3``."""
    where = {model_id: (name, version) for name, versions in held.items() for model_id, version in versions.items()}
    return tuple(sorted(f"{t.alias}: {where[t.model_id][0]} v{where[t.model_id][1].version}"
                        for t in targets if t.model_id in where))
