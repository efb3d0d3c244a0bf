"""The model registry: model versions, their evaluations, aliases and every alias change.

Metadata lives in a SQL database through SQLAlchemy: SQLite at ``<storage root>/registry.db``
by default, or any URL in ``$MNIST_REGISTRY_URL`` / ``--registry`` (PostgreSQL for a shared
deployment: ``postgresql+psycopg://user:pass@host/db``). Weights and reports stay in the storage
root (``storage/models.py``, ``storage/evaluations.py``).

Model versions are immutable: a version's row is written once, keyed by the model id (a hash of
everything that made the model), with its lineage: the source its dataset came from, the class
names, and whether it is a smoke model (a subset, a few dozen steps). Aliases (``production``,
``candidate``) carry a revision number; moving one is a compare-and-set on that revision, in the
same transaction as its history row, so two flows promoting at once never both win and never
lose an update. Moving an alias to the model it already names changes nothing and records nothing.

Model references are an alias, an exact id or a unique prefix of one, compared case-sensitively
as plain text (never as a SQL pattern).
"""

import datetime
import json
import os

import sqlalchemy as sa
from mnist_pipeline.storage.root import HOME_ENV, REGISTRY_ENV, StorageRoot
from mnist_pipeline.tasks.core.errors import MnistError
from mnist_pipeline.tasks.core.promotion import Lineage
from mnist_pipeline.tasks.core.records import TrainingRecord
from mnist_pipeline.tasks.core.results import AliasChange, Evaluated, FlowRun, RegisteredModel

SQLITE_FILE = "registry.db"
ALIASES = ("production", "candidate")

metadata = sa.MetaData()
versions = sa.Table(
    "model_versions", metadata,
    sa.Column("model_id", sa.String(64), primary_key=True),
    sa.Column("family", sa.String(16), nullable=False),
    sa.Column("dataset_version", sa.String(64), nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("config", sa.Text, nullable=False),  # JSON
    sa.Column("code_version", sa.String(80), nullable=False),
    sa.Column("libraries", sa.Text, nullable=False),  # JSON
    sa.Column("train_seconds", sa.Float, nullable=False),
    sa.Column("validation_accuracy", sa.Float, nullable=False),
    sa.Column("artifact_url", sa.Text, nullable=False),
    sa.Column("card", sa.Text, nullable=False),  # markdown model card
    sa.Column("registered_at", sa.String(32), nullable=False),
    sa.Column("flow_run", sa.String(64)),
    # Lineage: the source of the model's dataset and its class names (what promotion compares).
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("class_names", sa.Text, nullable=False),  # JSON list
    sa.Column("smoke", sa.Boolean, nullable=False),
)
evaluations = sa.Table(
    "evaluations", metadata,
    sa.Column("model_id", sa.String(64), sa.ForeignKey("model_versions.model_id"), primary_key=True),
    sa.Column("dataset_version", sa.String(64), primary_key=True),
    sa.Column("accuracy", sa.Float, nullable=False),
    sa.Column("metrics", sa.Text, nullable=False),  # JSON summary (no per-image rows)
    sa.Column("evaluated_at", sa.String(32), nullable=False),
)
aliases = sa.Table(
    "aliases", metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("model_id", sa.String(64), sa.ForeignKey("model_versions.model_id"), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
)
alias_history = sa.Table(
    "alias_history", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alias", sa.String(32), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("from_model", sa.String(64)),
    sa.Column("to_model", sa.String(64), nullable=False),
    sa.Column("changed_at", sa.String(32), nullable=False),
    sa.Column("flow_run", sa.String(64)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # promote, rollback, manual
    sa.UniqueConstraint("alias", "revision"),
)
decisions = sa.Table(
    "promotion_decisions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("decided_at", sa.String(32), nullable=False),
    sa.Column("flow_run", sa.String(64)),
    sa.Column("challenger", sa.String(64), nullable=False),
    sa.Column("champion", sa.String(64)),
    sa.Column("promoted", sa.Boolean, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),  # JSON
)

# The pipeline runs (Prefect flow runs) that registered models: their names and UI links, so that
# what mirrors the registry elsewhere (MLflow) names a run as Prefect did, even much later.
flow_runs = sa.Table(
    "flow_runs", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("url", sa.Text),
    sa.Column("recorded_at", sa.String(32), nullable=False),
)


class RegistryError(MnistError, LookupError):
    """A registry reference, alias move or database location cannot be used."""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def registry_url(root: StorageRoot, url: str | None = None, create: bool = True) -> str:
    """The registry's database URL: ``url`` as the run resolved it (see ``Store.resolve``), else
    SQLite in the storage root. With ``create=False`` a missing SQLite file is an error, so that a
    command that only reads never creates a registry (or a storage root) by mistake. The
    environment is not read here: a task on a worker opens the registry its run resolved."""
    if url:
        return url
    if not root.is_local:
        raise RegistryError(
            f"the storage root {root.url} is not a local disk, so it cannot hold the SQLite registry; "
            f"set {REGISTRY_ENV} (or --registry) to a database URL, e.g. postgresql+psycopg://host/db"
        )
    path = root.join(SQLITE_FILE)
    if not create and not os.path.isfile(path):
        raise RegistryError(
            f"no model registry in the storage root {root.url} ({path} does not exist); check --home "
            f"or {HOME_ENV}, or run `mnist train-all` to train and register models there"
        )
    os.makedirs(root.path, exist_ok=True)
    return f"sqlite:///{path}"


class Registry:
    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            # Writers wait for each other (up to 60 s) instead of failing with "database is locked".
            self.engine = sa.create_engine(url, connect_args={"timeout": 60})
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            sa.event.listen(self.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True)
        metadata.create_all(self.engine)

    @property
    def location(self) -> str:
        """Where the registry is, for messages: the SQLite file, or the URL without its password."""
        url = sa.engine.make_url(self.url)
        return url.database if url.get_backend_name() == "sqlite" else url.render_as_string(hide_password=True)

    @classmethod
    def open(cls, root: StorageRoot, url: str | None = None, *, create: bool = True) -> "Registry":
        """The registry of a storage root; ``create=False`` for commands that must not create one."""
        return cls(registry_url(root, url, create))

    @classmethod
    def open_existing(cls, root: StorageRoot, url: str | None = None) -> "Registry":
        """The registry of an existing storage root (or external database); creates neither."""
        if not url:
            root.require_existing()
        return cls.open(root, url, create=False)

    def close(self) -> None:
        self.engine.dispose()

    # -- versions ---------------------------------------------------------------------------
    def register(self, record: TrainingRecord, artifact_url: str, card: str, lineage: Lineage,
                 flow_run: str | None = None) -> bool:
        """Add a model version; False when it is already registered (versions never change)."""
        row = {
            "source": lineage.source, "class_names": json.dumps(list(lineage.class_names)), "smoke": record.smoke,
            "model_id": record.model_id, "family": record.family, "dataset_version": record.dataset_version,
            "seed": record.seed, "config": json.dumps(record.config, sort_keys=True),
            "code_version": record.code_version, "libraries": json.dumps(record.libraries, sort_keys=True),
            "train_seconds": record.train_seconds, "validation_accuracy": record.validation_accuracy,
            "artifact_url": artifact_url, "card": card, "registered_at": _now(), "flow_run": flow_run,
        }
        with self.engine.begin() as connection:
            if connection.execute(sa.select(versions.c.model_id).where(versions.c.model_id == row["model_id"])).first():
                return False
            connection.execute(versions.insert().values(**row))
        return True

    def add_evaluation(self, model_id: str, dataset_version: str, metrics: dict) -> None:
        summary = {k: v for k, v in metrics.items() if k not in ("most_confident_errors", "calibration_bins")}
        with self.engine.begin() as connection:
            connection.execute(evaluations.delete().where(
                (evaluations.c.model_id == model_id) & (evaluations.c.dataset_version == dataset_version)))
            connection.execute(evaluations.insert().values(
                model_id=model_id, dataset_version=dataset_version, accuracy=metrics["accuracy"],
                metrics=json.dumps(summary), evaluated_at=_now()))

    def get(self, model_id: str) -> RegisteredModel:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(versions).where(versions.c.model_id == model_id)).mappings().first()
            if row is None:
                raise RegistryError(f"model version {model_id!r} is not registered; `mnist models list` shows them")
            return self._describe(connection, row)

    def resolve(self, reference: str) -> str:
        """A model id from an alias (production, candidate), a full id or a unique prefix.

        Compared case-sensitively as plain text: ``%`` and ``_`` are characters, not patterns.
        """
        if not reference or reference.strip() != reference:
            raise RegistryError(f"model reference {reference!r} is empty or padded; give an id, a prefix or an alias")
        if reference in ALIASES:
            model_id, _ = self.alias(reference)
            if model_id is None:
                raise RegistryError(f"no model has the alias {reference!r} yet in the registry {self.location}; "
                                    "run `mnist train-all` or `mnist models promote VERSION`")
            return model_id
        prefix = sa.func.substr(versions.c.model_id, 1, len(reference)) == reference
        with self.engine.connect() as connection:
            ids = connection.execute(sa.select(versions.c.model_id).where(prefix)).scalars().all()
        if reference in ids:
            return reference
        if len(ids) == 1:
            return ids[0]
        problem = "matches no registered model" if not ids else f"is ambiguous ({', '.join(sorted(ids))})"
        raise RegistryError(f"model {reference!r} {problem} in the registry {self.location}; "
                            "`mnist models list` shows them")

    def lineage(self, model_id: str) -> tuple[Lineage, bool]:
        """The problem a registered model solves and whether it is a smoke model."""
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(versions.c.source, versions.c.class_names, versions.c.smoke)
                                     .where(versions.c.model_id == model_id)).first()
        if row is None:
            raise RegistryError(f"model version {model_id!r} is not registered; `mnist models list` shows them")
        source, class_names, smoke = row
        return Lineage(source, tuple(json.loads(class_names))), bool(smoke)

    def list_versions(self) -> list[RegisteredModel]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(versions).order_by(versions.c.registered_at, versions.c.model_id)).mappings().all()
            return [self._describe(connection, row) for row in rows]

    def _describe(self, connection, row) -> RegisteredModel:
        evaluated = connection.execute(
            sa.select(evaluations).where(evaluations.c.model_id == row["model_id"]).order_by(evaluations.c.evaluated_at)
        ).mappings().all()
        names = connection.execute(sa.select(aliases.c.name).where(aliases.c.model_id == row["model_id"])).scalars().all()
        own = [e for e in evaluated if e["dataset_version"] == row["dataset_version"]]
        metrics = json.loads(own[-1]["metrics"]) if own else {}
        return RegisteredModel(
            **{k: row[k] for k in ("model_id", "family", "dataset_version", "seed", "code_version", "train_seconds",
                                   "validation_accuracy", "artifact_url", "registered_at", "flow_run", "source",
                                   "smoke", "card")},
            config=json.loads(row["config"]), libraries=json.loads(row["libraries"]),
            class_names=tuple(json.loads(row["class_names"])),
            metrics={"validation_accuracy": row["validation_accuracy"], **metrics},
            evaluations={e["dataset_version"]: Evaluated(e["accuracy"], e["evaluated_at"]) for e in evaluated},
            aliases=tuple(sorted(names)),
        )

    def evaluation(self, model_id: str, dataset_version: str) -> dict | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(evaluations.c.metrics).where(
                (evaluations.c.model_id == model_id) & (evaluations.c.dataset_version == dataset_version))).first()
        return json.loads(row[0]) if row else None

    def record_flow_run(self, run: FlowRun) -> None:
        """Keep a pipeline run's name and link (the first record of a run wins)."""
        with self.engine.begin() as connection:
            if not connection.execute(sa.select(flow_runs.c.id).where(flow_runs.c.id == run.id)).first():
                connection.execute(flow_runs.insert().values(id=run.id, name=run.name, url=run.url, recorded_at=_now()))

    def flow_runs(self) -> dict[str, FlowRun]:
        """The recorded pipeline runs, by id."""
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(flow_runs.c.id, flow_runs.c.name, flow_runs.c.url)).all()
        return {row[0]: FlowRun(*row) for row in rows}

    def decision(self, challenger: str, promoted: bool | None = None) -> dict | None:
        """The evidence of the latest promotion decision about ``challenger`` (only those that
        promoted it, or only those that did not, when ``promoted`` says so); None if none."""
        query = sa.select(decisions.c.evidence).where(decisions.c.challenger == challenger)
        if promoted is not None:
            query = query.where(decisions.c.promoted == promoted)
        with self.engine.connect() as connection:
            row = connection.execute(query.order_by(decisions.c.id.desc()).limit(1)).first()
        return json.loads(row[0]) if row else None

    # -- aliases ----------------------------------------------------------------------------
    def alias(self, name: str) -> tuple[str | None, int]:
        """The model an alias points at (None if unset) and the alias's revision (0 if unset)."""
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(aliases.c.model_id, aliases.c.revision).where(aliases.c.name == name)).first()
        return (row[0], row[1]) if row else (None, 0)

    def set_alias(self, name: str, model_id: str, expected_revision: int, *, reason: str,
                  action: str = "promote", flow_run: str | None = None) -> bool:
        """Compare-and-set: point ``name`` at ``model_id`` only if its revision is still
        ``expected_revision``. Returns False (and changes nothing) when another writer got there first."""
        with self.engine.begin() as connection:
            return self._move_alias(connection, name, model_id, expected_revision, reason, action, flow_run)

    def record_promotion(self, evidence: dict, production_revision: int, flow_run: str | None = None) -> bool:
        """A promotion decision's outcome, in one transaction: production moves to the challenger
        when the evidence says so (only if production is still at ``production_revision``), the
        challenger becomes ``candidate``, and the decision with its evidence is kept. Returns False,
        having recorded nothing, when another writer moved production meanwhile."""
        challenger = evidence["challenger"]
        with self.engine.begin() as connection:
            if evidence["promote"] and not self._move_alias(
                connection, "production", challenger, production_revision, evidence["reason"], "promote", flow_run
            ):
                return False  # nothing written yet in this transaction
            self._move_alias(connection, "candidate", challenger, self._revision(connection, "candidate"),
                             "best model of the latest run", "promote", flow_run)
            connection.execute(decisions.insert().values(
                decided_at=_now(), flow_run=flow_run, challenger=challenger, champion=evidence.get("champion"),
                promoted=bool(evidence["promote"]), evidence=json.dumps(evidence, default=str)))
        return True

    @staticmethod
    def _revision(connection, name: str) -> int:
        row = connection.execute(sa.select(aliases.c.revision).where(aliases.c.name == name)).first()
        return row[0] if row else 0

    def _move_alias(self, connection, name: str, model_id: str, expected_revision: int, reason: str,
                    action: str, flow_run: str | None) -> bool:
        if name not in ALIASES:
            raise RegistryError(f"unknown alias {name!r}; aliases are {', '.join(ALIASES)}")
        if not connection.execute(sa.select(versions.c.model_id).where(versions.c.model_id == model_id)).first():
            raise RegistryError(f"model version {model_id!r} is not registered; `mnist models list` shows them")
        current = connection.execute(sa.select(aliases.c.model_id, aliases.c.revision).where(aliases.c.name == name)).first()
        if (current[1] if current else 0) != expected_revision:
            return False
        if current is not None and current[0] == model_id:
            return True  # already there: nothing moves, nothing is recorded
        if current is None:
            try:
                # A savepoint: on PostgreSQL a concurrent writer's first move of the alias makes
                # this insert fail, and only the savepoint (not the whole transaction) is lost.
                with connection.begin_nested():
                    connection.execute(aliases.insert().values(name=name, model_id=model_id, revision=1))
            except sa.exc.IntegrityError:
                return False  # another writer set the alias first
        else:
            updated = connection.execute(aliases.update().where(
                (aliases.c.name == name) & (aliases.c.revision == expected_revision)
            ).values(model_id=model_id, revision=expected_revision + 1))
            if updated.rowcount != 1:
                return False
        connection.execute(alias_history.insert().values(
            alias=name, revision=expected_revision + 1, from_model=current[0] if current else None,
            to_model=model_id, changed_at=_now(), flow_run=flow_run, reason=reason, action=action))
        return True

    def history(self, name: str | None = None) -> list[AliasChange]:
        query = sa.select(alias_history).order_by(alias_history.c.id)
        if name:
            query = query.where(alias_history.c.alias == name)
        with self.engine.connect() as connection:
            return [AliasChange(**{k: v for k, v in row.items() if k != "id"})
                    for row in connection.execute(query).mappings().all()]

    def previous(self, name: str = "production") -> str | None:
        """The version ``name`` pointed at before its current one (rollbacks are stepped over)."""
        current, _ = self.alias(name)
        for entry in reversed(self.history(name)):
            if entry.to_model == current and entry.action != "rollback":
                return entry.from_model
        return None


def _sqlite_pragmas(connection, _record) -> None:
    # pysqlite's own transaction handling would defer BEGIN; the "begin" listener issues
    # BEGIN IMMEDIATE instead, so a compare-and-set holds the write lock from its first read.
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
