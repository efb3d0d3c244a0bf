from mnist_pipeline.tasks.core.registry_report import build_registry_report, versions_table
from mnist_pipeline.tasks.core.results import AliasChange, Evaluated, RegisteredModel


def version(model_id, family, accuracy, registered, aliases=(), smoke=False):
    return RegisteredModel(
        model_id=model_id, family=family, dataset_version="d1", seed=0, config={}, code_version="git:x", libraries={},
        train_seconds=1.0, validation_accuracy=accuracy - 0.01, artifact_url=f"/models/{model_id}",
        registered_at=registered, flow_run=None, source="mnist", class_names=tuple("0123456789"), smoke=smoke,
        card=f"# {model_id}", metrics={"accuracy": accuracy},
        evaluations={"d1": Evaluated(accuracy, registered), "d2": Evaluated(accuracy - 0.02, registered)},
        aliases=tuple(aliases))


def change(alias, to, when, source=None, action="promote"):
    return AliasChange(alias, 1, source, to, when, None, f"to {to}", action)


def test_the_report_shows_versions_production_over_time_and_history():
    versions = [version("mlp-1", "mlp", 0.97, "2026-01-01T00:00:00+00:00"),
                version("cnn-2", "cnn", 0.99, "2026-02-01T00:00:00+00:00", aliases=("production", "candidate")),
                version("cnn-3", "cnn", 0.95, "2026-03-01T00:00:00+00:00", smoke=True)]
    history = [change("production", "mlp-1", "2026-01-01T00:00:01+00:00"),
               change("production", "cnn-2", "2026-02-01T00:00:01+00:00", "mlp-1"),
               change("candidate", "cnn-2", "2026-02-01T00:00:02+00:00")]
    report = build_registry_report(versions, history, "/root/registry.db")
    assert report.figure.startswith(b"\x89PNG")
    page = report.html
    assert page.startswith("<!DOCTYPE html>") and page.count("data:image/png;base64,") == 1
    for text in ("production: cnn-2", "d1: 0.9900; d2: 0.9700", "mnist (smoke)", "id='alias-history'", "to cnn-2"):
        assert text in page, text
    assert page.index("cnn-3") < page.index("mlp-1")  # newest first
    assert "](data:image/png;base64," in report.markdown and "| mlp-1 |" in report.markdown


def test_an_empty_registry_says_so():
    report = build_registry_report([], [], "/root/registry.db")
    assert report.figure is None and "No model has been promoted yet" in report.html
    assert "0 model version(s)" in report.markdown


def test_the_versions_table_is_one_set_of_rows_for_the_page_the_artifact_and_the_terminal():
    table = versions_table([version("cnn-2", "cnn", 0.99, "2026-02-01T00:00:00+00:00", aliases=("production",))])
    (row,) = table.records()
    assert row == {"model": "cnn-2", "family": "cnn", "source": "mnist", "dataset": "d1",
                   "registered (UTC)": "2026-02-01 00:00", "validation": "0.9800",
                   "test accuracy by dataset": "d1: 0.9900; d2: 0.9700", "aliases": "production"}
    assert table.text().splitlines()[1].split()[:2] == ["cnn-2", "cnn"]
