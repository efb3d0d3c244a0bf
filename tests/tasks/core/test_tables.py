"""The leaderboard's rows, built once from typed results, and the renderers that share them."""

from mnist_pipeline.tasks.core.results import Evaluation, LeftOut, TrainedModel
from mnist_pipeline.tasks.core.tables import Table, leaderboard


def trained(family: str, validation: float, reused: bool = False, stopped: str | None = None) -> TrainedModel:
    return TrainedModel(f"{family}-1", family, "d1", validation, 12.34, 100, 80, stopped, 1, reused)


def evaluation(family: str, accuracy: float) -> Evaluation:
    return Evaluation(f"{family}-1", family, "d1", accuracy, 0.9, 0.012345, 0.05, 1234.56, 0.789, 42, 0.9, None)


MODELS = {"mlp": trained("mlp", 0.91), "cnn": trained("cnn", 0.97, reused=True), "svm": trained("svm", 0.93)}


def test_models_rank_by_validation_then_failures_and_left_out_follow():
    board = leaderboard(MODELS, {"logreg": "ValueError: boom"}, {"ensemble": LeftOut("ensemble", 0.96, "adds nothing")})
    assert [(r["rank"], r["family"]) for r in board.rows] == [(1, "cnn"), (2, "svm"), (3, "mlp"), ("-", "logreg"),
                                                               ("-", "ensemble")]
    assert board.rows[0]["status"] == "reused" and board.rows[1]["status"] == "trained in 12.3 s"
    assert board.rows[3]["status"] == "FAILED: ValueError: boom" and board.rows[3]["validation_accuracy"] == "-"
    assert (board.rows[4]["status"], board.rows[4]["note"]) == ("left out", "adds nothing")
    assert all(r["test_accuracy"] == "-" for r in board.rows)  # nothing evaluated yet


def test_evaluations_fill_the_test_columns_rounded_once():
    board = leaderboard(MODELS, evaluations={"cnn": evaluation("cnn", 0.987654)})
    cnn = board.rows[0]
    assert (cnn["test_accuracy"], cnn["ece"], cnn["images_per_s"], cnn["latency_ms"]) == (0.9877, 0.0123, 1235, 0.79)
    assert board.rows[1]["test_accuracy"] == "-"


def test_every_renderer_shows_the_same_rows_and_columns():
    board = leaderboard(MODELS, evaluations={"cnn": evaluation("cnn", 0.98)}).select(
        "family", "validation_accuracy", "test_accuracy")
    assert board.records() == [{"family": "cnn", "validation_accuracy": 0.97, "test_accuracy": 0.98},
                               {"family": "svm", "validation_accuracy": 0.93, "test_accuracy": "-"},
                               {"family": "mlp", "validation_accuracy": 0.91, "test_accuracy": "-"}]
    markdown = board.markdown().splitlines()
    assert markdown[0] == "| family | validation_accuracy | test_accuracy |"
    assert markdown[1] == "| --- | ---: | ---: |" and markdown[2] == "| cnn | 0.97 | 0.98 |"
    text = board.text(indent="").splitlines()
    assert text[0].split() == ["family", "validation_accuracy", "test_accuracy"]
    assert text[1].split() == ["cnn", "0.97", "0.98"] and len({len(line) for line in text[1:]}) == 1
    assert board.html().count("<tr>") == 4 and "<td class='number'>0.98</td>" in board.html()


def test_a_table_grows_a_column_and_keeps_its_first_rows():
    table = Table(({"a": 1}, {"a": 2}, {"a": 3}), numeric=("a",))
    assert table.with_column("b", ["x", "y", "z"]).head(2).records() == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert Table(()).text() == "    (none)"
