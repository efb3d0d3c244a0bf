"""What the command groups share: the store the command line names, dataset summaries, Prefect's
preparation, and one-line errors. Only the standard library at import time."""

import argparse
import os

EXIT_USAGE, EXIT_FAILED = 2, 1


def store_of(args: argparse.Namespace):
    """The storage root, registry and MLflow mirror the command line names (``--home``,
    ``--registry``, ``--mlflow``), else the environment's."""
    from mnist_pipeline.storage.store import Store

    return Store.resolve(args.home, getattr(args, "registry", None), getattr(args, "mlflow", None))


def dataset_summary(manifest, detailed: bool = False) -> str:
    """A dataset version's :class:`~mnist_pipeline.tasks.core.records.Manifest`, for the terminal."""
    from mnist_pipeline.storage.datasets import is_outdated
    from mnist_pipeline.tasks.core.pages import names_text

    rows, names = manifest.rows, manifest.class_names
    checks = sum(s["evaluated_expectations"] for s in manifest.validation.statistics.values())
    if not is_outdated(manifest):
        what = f"{manifest.known_dataset or 'your own data'}: {names_text(names)} (named by {manifest.class_names_from})"
    else:
        what = f"{names_text(names)} (OUTDATED: an earlier release's version; `mnist ingest` it again)"
    lines = [
        f"  source:     {manifest.source.spec}",
        f"  is:         {what}",
        f"  rows:       train {rows['train']:,} | validation {rows['validation']:,} | "
        f"test {rows['test']:,}",
        f"  validation: {'passed' if manifest.validated else 'FAILED'} ({checks} expectations)",
        f"  duplicates: {manifest.duplicates['test_in_train_or_validation']} test images "
        "also in train/validation",
    ]
    for part in manifest.parts or ():  # a batch source: its published dataset and each batch
        left_out = f" ({part.duplicates_left_out:,} copies of earlier images left out)" if part.duplicates_left_out else ""
        lines.append(f"  part:       {part.name}: {part.rows:,} rows{left_out}")
    if detailed:
        lines.append(f"  created:    {manifest.created_at} by {manifest.code_version}")
        lines.append("  classes (train counts):")
        for label, count in manifest.class_counts["train"].items():
            lines.append(f"    {label}: {names[int(label)]:<12} {count:>6}")
        lines.append(f"  split:      {manifest.split.model_dump() if manifest.split else '-'}")
    return "\n".join(lines)


def prepare_prefect(home: str | None) -> None:
    """Settings for the flow this command runs in-process, made before Prefect is imported."""
    from mnist_pipeline.flows.up import heartbeat_env

    # No network here or on many build machines: keep Prefect's telemetry off unless asked.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Heartbeats let a server's crash automation mark this run Crashed if the process is killed.
    for name, value in heartbeat_env().items():
        os.environ.setdefault(name, value)
    use_local_server_auth(home)
    import prefect.main  # noqa: F401  (sets up Prefect's logging, which the next line adjusts)

    quiet_user_error_tracebacks()


def use_local_server_auth(home: str | None) -> None:
    """Set PREFECT_API_AUTH_STRING to the secret of the server `mnist up` started for this storage
    root, when PREFECT_API_URL is that server (the secret is sent to that server only)."""
    api_url = os.environ.get("PREFECT_API_URL")
    if api_url and not os.environ.get("PREFECT_API_AUTH_STRING"):
        from mnist_pipeline.storage import services
        from mnist_pipeline.storage.store import Store

        auth = services.auth_for(Store.resolve(home).root, api_url)
        if auth:
            os.environ["PREFECT_API_AUTH_STRING"] = auth


def user_error(error: BaseException) -> str | None:
    """The one line to show when ``error`` is about input, configuration, stored data or a
    storage server that does not answer; None for anything else (a bug keeps its traceback)."""
    from mnist_pipeline.storage.root import unreachable
    from mnist_pipeline.tasks.core.errors import MnistError
    from pydantic import ValidationError

    if isinstance(error, ValidationError):  # a setting out of range: each offending field and why
        problems = "; ".join(f"{'.'.join(map(str, problem['loc'])) or 'settings'}: "
                             f"{problem['msg'].removeprefix('Value error, ')}" for problem in error.errors())
        return f"invalid {error.title} ({problems})"
    if isinstance(error, MnistError):
        return str(error)
    found = unreachable(error)
    return None if found is None else str(found)



def quiet_user_error_tracebacks() -> None:
    """Prefect logs each failed task and flow run with its traceback on the console; for the
    errors the user can act on, the log line and our closing `error:` line say it all. (The
    Prefect API, and so the UI, still gets the full log.)"""
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not isinstance(handler.formatter, _UserErrorFormatter):
            handler.setFormatter(_UserErrorFormatter(handler.formatter))


class _UserErrorFormatter:
    """Formats like the formatter it wraps, without the traceback of user errors."""

    def __init__(self, inner) -> None:
        import logging

        self.inner = inner or logging.Formatter()

    def format(self, record) -> str:
        import logging

        error = record.exc_info[1] if record.exc_info else None
        if error is not None and user_error(error) is not None:
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return self.inner.format(record)

    def __getattr__(self, name):
        return getattr(self.inner, name)

