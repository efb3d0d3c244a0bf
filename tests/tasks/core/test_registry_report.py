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


def test_production_over_time_tells_the_nights_story_in_dates_with_accuracy_up_to_one():
    """One promotion used to draw a flat line with sub-second tick labels (`53:56.490000`) and a
    y-axis running to 1.02."""
    import datetime

    from matplotlib.dates import num2date

    from mnist_pipeline.tasks.core.registry_report import production_figure, production_points

    one = version("cnn-2", "cnn", 0.97, "2026-12-01T02:00:00+00:00")
    points = production_points([one], [change("production", "cnn-2", "2026-12-01T02:03:56.490+00:00")])
    assert points[0].test_images is None and points[0].action == "promote"
    axes = production_figure(points).axes[0]
    axes.figure.canvas.draw()
    low, high = axes.get_ylim()
    assert high == 1.0 and low < 0.97
    start, end = (num2date(x) for x in axes.get_xlim())
    assert end - start >= datetime.timedelta(days=1)  # days, not microseconds
    labels = [t.get_text() for t in axes.get_xticklabels()]
    assert labels and not any("." in label for label in labels), labels

    # a night's story: promotions and a rollback, each with its test split's size
    sized = [RegisteredModel(**{**version(m, f, a, "2026-12-01T02:00:00+00:00").__dict__, "metrics": {"accuracy": a, "images": n}})
             for m, f, a, n in (("mlp-1", "mlp", 0.95, 571), ("cnn-2", "cnn", 0.97, 710))]
    history = [change("production", "mlp-1", "2026-12-01T02:05:00+00:00"),
               change("production", "cnn-2", "2026-12-02T02:05:00+00:00", "mlp-1"),
               change("production", "mlp-1", "2026-12-03T09:00:00+00:00", "cnn-2", action="rollback")]
    points = production_points(sized, history)
    assert [(p.model_id, p.action, p.test_images) for p in points] == [
        ("mlp-1", "promote", 571), ("cnn-2", "promote", 710), ("mlp-1", "rollback", 571)]
    axes = production_figure(points).axes[0]
    texts = [t.get_text() for t in axes.texts]
    assert texts == ["mlp\nn=571", "cnn\nn=710", "mlp\nn=571"]
    assert {t.get_text() for t in axes.get_legend().get_texts()} == {"promotion", "rollback"}
    assert axes.get_ylim()[1] == 1.0
