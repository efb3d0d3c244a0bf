"""The summary artifact of a `train-all` run: what every stage produced, with links to it.

In the Prefect UI a run's page lists only its own artifacts; ingestion, EDA and training leave
theirs on their subflow runs. This artifact, on the top-level run, links to each of them.
"""

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from mnist_pipeline.tasks.artifacts import artifact_key
from mnist_pipeline.tasks.core.pages import markdown_table


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


@task(name="run-summary", cache_policy=NO_CACHE)
def run_summary(result: dict, subflow_runs: dict) -> str:
    """A markdown artifact ``train-all-summary`` linking to everything the run produced."""
    version, promotion = result["dataset_version"], result["promotion"]
    rows = []
    for family, trained in sorted(result["models"].items(), key=lambda kv: -kv[1]["validation_accuracy"]):
        evaluation = result["evaluations"].get(family, {})
        rows.append({"family": family, "model": f"`{trained['model_id']}`",
                     "validation": f"{trained['validation_accuracy']:.4f}",
                     "test": f"{evaluation['accuracy']:.4f}" if evaluation else "-",
                     "status": "reused" if trained["reused"] else f"trained in {trained['train_seconds']:.0f} s",
                     "evaluation": _artifact(f"evaluation-{family}") if evaluation else "-",
                     "HTML report": f"`{evaluation['report']}`" if evaluation.get("report") else "-"})
    rows += [{"family": family, "model": "-", "validation": "-", "test": "-", "status": f"FAILED: {reason}",
              "evaluation": "-", "HTML report": "-"} for family, reason in result["failed"].items()]
    rows += [{"family": family, "model": "-", "validation": "-", "test": "-", "status": reason,
              "evaluation": "-", "HTML report": "-"} for family, reason in result.get("left_out", {}).items()]
    if promotion:
        verdict = "promoted to production" if promotion["promote"] else "not promoted"
        decision = f"`{promotion['challenger']}` {verdict}: {promotion['reason']}"
    else:
        decision = "no model to promote"
    lines = [
        f"# Run summary: dataset `{version}`", "",
        "| stage | what it produced | artifacts | subflow run |", "| --- | --- | --- | --- |",
        f"| ingestion | dataset `{version}` ({'already published' if result['dataset_reused'] else 'published'}) "
        f"| {_artifact('dataset-validation')} | {_run(subflow_runs.get('ingest'))} |",
        f"| EDA report | `{result['eda_report']}` | {_artifact('eda-report')}, {_artifact('eda-report-html')} "
        f"| {_run(subflow_runs.get('eda'))} |",
        f"| training | {len(result['models'])} model(s), {len(result['failed'])} failed "
        f"| {_artifact('training-leaderboard')} | {_run(subflow_runs.get('train'))} |",
        f"| evaluation | {len(result['evaluations'])} model(s) on the test split | {_artifact('evaluation-leaderboard')} | - |",
        f"| promotion | {decision} | {_artifact('promotion-decision')}, {_artifact('registry-report')} | - |",
        "", "## Models", "", markdown_table(rows, numeric=("validation", "test")),
    ]
    text = "\n".join(lines)
    create_markdown_artifact(key=artifact_key("train-all-summary"), markdown=text,
                             description=f"everything this run produced for dataset {version}")
    return text
