"""Artifact keys: the Prefect UI's Artifacts page shows the newest artifact of each key, so a
smoke run keeps keys of its own (``<key>-smoke``) and never hides the nightly run's results.

A smoke run is marked with the ``smoke`` tag (the ``mnist`` flow wraps a smoke run in it, and the
``mnist/smoke`` deployment carries it), which every task run and subflow run inside it inherits.
"""

SMOKE_TAG = "smoke"


def artifact_key(name: str) -> str:
    from prefect.runtime import flow_run, task_run

    tags = set(task_run.tags or ()) | set(flow_run.tags or ())
    return f"{name}-{SMOKE_TAG}" if SMOKE_TAG in tags else name
