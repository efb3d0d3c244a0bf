"""The summary artifact of a `train-all` run: what every stage produced, with links to it.

In the Prefect UI a run's page lists only its own artifacts; ingestion, EDA and training leave
theirs on their subflow runs. This artifact, on the top-level run, links to each of them.
"""

from prefect import task
from prefect.artifacts import create_markdown_artifact

from mnist_pipeline.tasks.artifacts import artifact_key
from mnist_pipeline.tasks.core.results import PipelineOutcome
from mnist_pipeline.tasks.core.tables import changes_table, leaderboard
from mnist_pipeline.tasks.options import STORAGE_IS_THE_CACHE


def _ui(path: str) -> str:
    """A link into the Prefect UI (absolute when the UI's address is known)."""
    from prefect.settings import PREFECT_UI_URL

    base = PREFECT_UI_URL.value()
    return f"{base.rstrip('/')}{path}" if base else path


def _artifact(name: str) -> str:
    key = artifact_key(name)
    return f"[{key}]({_ui(f'/artifacts/key/{key}')})"


def _run(flow_run_id) -> str:
    return f"[run]({_ui(f'/runs/flow-run/{flow_run_id}')})" if flow_run_id else "-"


@task(name="run-summary", **STORAGE_IS_THE_CACHE)
def run_summary(result: PipelineOutcome, subflow_runs: dict[str, str | None]) -> str:
    """A markdown artifact ``train-all-summary`` linking to everything the run produced."""
    version, promotion = result.dataset_version, result.promotion
    training = result.training
    board = leaderboard(training.trained, training.failed, training.left_out, result.evaluations)
    links = [_artifact(f"evaluation-{row['family']}") if row["family"] in result.evaluations else "-"
             for row in board.rows]
    models = board.select("family", "model_id", "validation_accuracy", "test_accuracy", "status", "report")
    decision = f"`{promotion.challenger}` {promotion.verdict}: {promotion.reason}" if promotion else "no model to promote"
    lines = [
        f"# Run summary: dataset `{version}`", "",
        "| stage | what it produced | artifacts | subflow run |", "| --- | --- | --- | --- |",
        f"| ingestion | dataset `{version}` ({'already published' if result.dataset_reused else 'published'}) "
        f"| {_artifact('dataset-validation')} | {_run(subflow_runs.get('ingest'))} |",
        f"| new data | {result.changes.describe() if result.changes else 'the first version of this problem'} "
        f"| {_artifact('eda-report')} | - |",
        f"| EDA report | `{result.eda_report}` | {_artifact('eda-report')}, {_artifact('eda-report-html')} "
        f"| {_run(subflow_runs.get('eda'))} |",
        f"| training | {len(training.trained)} model(s), {len(training.failed)} failed "
        f"| {_artifact('training-leaderboard')} | {_run(subflow_runs.get('train'))} |",
        f"| evaluation | {len(result.evaluations)} model(s) on the test split | {_artifact('evaluation-leaderboard')} | - |",
        f"| promotion | {decision} | {_artifact('promotion-decision')}, {_artifact('registry-report')} | - |",
        *([f"| MLflow mirror | {result.mirror.describe()} | - | - |"] if result.mirror.enabled else []),
        "", "## Models", "", models.with_column("evaluation", links).markdown(),
        *(["## What changed since the previous version", "", changes_table(result.changes).markdown()]
          if result.changes and result.changes.rows_added else []),
    ]
    text = "\n".join(lines)
    create_markdown_artifact(key=artifact_key("train-all-summary"), markdown=text,
                             description=f"everything this run produced for dataset {version}")
    return text
