"""The ``eda`` flow: the exploratory report of one dataset version."""

from dataclasses import dataclass

from prefect import flow

from mnist_pipeline.flows.config import EdaConfig
from mnist_pipeline.tasks import eda as steps
from mnist_pipeline.tasks.core.eda.changes import DataChanges
from mnist_pipeline.tasks.core.eda.report import report_code_key
from mnist_pipeline.tasks.options import FLOW_RESULTS_AS_JSON


@dataclass(frozen=True)
class EdaOutcome:
    version: str
    report: str  # URL (a path on a local disk) of the HTML report
    changes: DataChanges | None  # what the version changed since the previous one (None: no previous version)


def _run_name() -> str:
    from prefect.runtime import flow_run

    return f"eda-{flow_run.parameters['config'].dataset or 'newest'}"


@flow(name="eda", flow_run_name=_run_name, log_prints=True, **FLOW_RESULTS_AS_JSON)
def eda(config: EdaConfig = EdaConfig()) -> EdaOutcome:
    """Draw the EDA report of a dataset version (the newest by default) once per version and
    report code; leave its figures as artifacts."""
    store = config.store()
    version = steps.resolve_dataset(store, config.dataset)
    key = report_code_key()
    drawn = steps.eda_report(store, version, key, config.settings.seed, config.force)
    steps.eda_artifacts(store, version, key, drawn.url)
    return EdaOutcome(version, drawn.url, drawn.changes)
