import json
import os
import subprocess
import sys
import time

import pytest

from mnist_pipeline.flows.cli import build_parser, main
from tests import cli


def run_cli(*args):
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mnist_pipeline.flows.cli", *args], capture_output=True, text=True, timeout=60
    )
    return done, time.perf_counter() - started


def test_help_is_instant_and_lists_the_commands():
    done, seconds = run_cli("--help")
    assert done.returncode == 0
    for command in ("ingest", "datasets", "train-all"):
        assert command in done.stdout
    # Prefect, Great Expectations and torch stay unimported: a cold `--help` is well under 1 s.
    assert seconds < 1.5, seconds


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from mnist_pipeline.flows.cli import main\n"
        "try: main(['ingest', '--help'])\n"
        "except SystemExit: pass\n"
        "heavy = [m for m in ('prefect', 'great_expectations', 'torch', 'pyarrow') if m in sys.modules]\n"
        "print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().endswith("[]"), done.stdout


@pytest.mark.parametrize("command", ["ingest", "datasets", "train-all"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([command, "--help"])
    assert exited.value.code == 0
    assert "--home" in capsys.readouterr().out


def test_unknown_source_is_one_clear_line():
    done = cli.mnist("ingest", "--source", "emnist", "--home", "/tmp/unused")
    assert done.returncode == 1
    assert "error:" in done.stderr and "unknown source 'emnist'" in done.stderr
    assert "Traceback" not in done.stderr


def test_datasets_on_an_empty_root(home, capsys):
    assert main(["datasets", "--home", home]) == 0
    assert "no dataset versions" in capsys.readouterr().out
    assert main(["datasets", "nope", "--home", home]) == 1


@pytest.mark.usefixtures("prefect_harness")
def test_ingest_then_list_and_show(home, idx_folder, capsys):
    assert main(["ingest", "--source", f"idx:{idx_folder}", "--home", home]) == 0
    out = capsys.readouterr().out
    version = out.split("dataset ", 1)[1].split()[0]
    assert "(published)" in out and "validation: passed" in out
    assert main(["datasets", "--home", home, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [m["version"] for m in listed] == [version]
    assert main(["datasets", version[:5], "--home", home]) == 0
    assert "classes (train counts)" in capsys.readouterr().out
    assert main(["ingest", "--source", f"idx:{idx_folder}", "--home", home]) == 0
    assert "unchanged, already ingested" in capsys.readouterr().out


def test_unknown_model_family_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["train-all", "--models", "logreg,xgboost"])
    assert exited.value.code == 2
    assert "unknown model family 'xgboost'" in capsys.readouterr().err


@pytest.mark.usefixtures("prefect_harness")
def test_train_all_smoke_with_chosen_models(home, idx_folder):
    # A real `mnist` process against the test server (in-process runs would share Prefect's
    # console logging with pytest's capture).
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    args = [sys.executable, "-m", "mnist_pipeline.flows.cli", "train-all", "--source", f"idx:{idx_folder}",
            "--home", home, "--smoke", "--models", "logreg,mlp"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert "EDA report:" in done.stdout and "models (by validation accuracy):" in done.stdout
    board = done.stdout.split("models (by validation accuracy):")[1].splitlines()[1:]
    assert board[0].split()[:4] == ["family", "model_id", "validation_accuracy", "test_accuracy"]
    rows = {line.split()[0]: line for line in board[1:] if line.strip()}
    # The two chosen families, trained and tested; both are perfect on these easy synthetic
    # images, so an ensemble of them adds nothing and the run says so instead of keeping it.
    assert {"logreg", "mlp"} <= set(rows) and "cnn" not in rows
    assert all("trained in" in rows[f] for f in ("logreg", "mlp"))
    assert "left out: its cross-fitted" in rows["ensemble"]
    # (Reuse on a second run is the rerun test of test_registry.py, through the same flow.)


def test_deploy_without_a_server_is_one_clear_line_and_up_needs_no_checkout(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    done = subprocess.run([sys.executable, "-m", "mnist_pipeline.flows.cli", "deploy", "--home", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "error: PREFECT_API_URL is not set" in done.stderr
    # The deployments ship with the package: nothing points `mnist up` at a checkout any more.
    assert "--project" not in run_cli("up", "--help")[0].stdout


@pytest.mark.parametrize("command", [["models", "list"], ["models", "history"], ["models", "show", "production"],
                                     ["datasets"], ["predict", "digit.png"]])
def test_a_command_that_only_reads_never_creates_a_mistyped_storage_root(command, tmp_path):
    typo = tmp_path / "mnist-hom"
    done = cli.mnist(*command, "--home", str(typo))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"the storage root {typo} does not exist (nothing was created)" in done.stderr
    assert not typo.exists()


def test_a_file_as_storage_root_is_one_clear_line(tmp_path):
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("x")
    for command in (["datasets"], ["models", "list"]):
        done = cli.mnist(*command, "--home", str(not_a_folder))
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert f"the storage root {not_a_folder} is a file, not a folder" in done.stderr


@pytest.mark.usefixtures("prefect_harness")
def test_errors_inside_a_flow_are_one_line_without_prefect_tracebacks(home, tmp_path):
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    done = subprocess.run([sys.executable, "-m", "mnist_pipeline.flows.cli", "ingest", "--source", f"csv:{tmp_path}",
                           "--home", home], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"error: {tmp_path} is a directory, not a file"
    assert "Finished in state Failed" in done.stderr  # Prefect's own log lines stay


def test_a_genuine_bug_keeps_its_traceback(monkeypatch, home):
    """Only the project's own errors are shortened to a line; a ValueError from a bug is not."""
    from mnist_pipeline.storage import datasets

    def broken(root):
        raise ValueError("a bug, not a user error")

    monkeypatch.setattr(datasets, "list_manifests", broken)
    with pytest.raises(ValueError, match="a bug"):
        main(["datasets", "--home", home])


def test_options_set_their_config_fields_and_help_shows_the_configs_defaults(capsys):
    from mnist_pipeline.flows.cli.options import INGEST, PROMOTION, TRAIN, given
    from mnist_pipeline.flows.config import IngestSettings, TrainSettings

    args = build_parser().parse_args(["train-all", "--seed", "3", "--train-seed", "4", "--no-ensemble", "--models",
                                      "logreg,cnn", "--alpha", "0.01", "--mirror", "http://a/", "--mirror", "http://b/"])
    assert dict(given(args, *INGEST)) == {"seed": 3, "mirrors": ["http://a/", "http://b/"]}
    assert dict(given(args, *TRAIN)) == {"seed": 4, "ensemble": False, "models": ["logreg", "cnn"]}
    assert dict(given(args, *PROMOTION)) == {"alpha": 0.01}  # an option not given leaves the default
    with pytest.raises(SystemExit):
        main(["train-all", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    budget = TrainSettings.model_fields["time_budget_s"].default
    assert f"keeps its best weights; an SVM not yet fitted fails alone (default: {budget:g})" in shown
    assert f"held out for validation (default: {IngestSettings.model_fields['validation_fraction'].default:g})" in shown
    assert "(default: logreg,svm,mlp,cnn)" in shown and "repeatable) (default" not in shown


def test_settings_out_of_range_are_one_line_naming_each_field(home):
    done = cli.mnist("ingest", "--source", "mnist-sample", "--validation-fraction", "0.7", "--test-fraction", "0",
                     "--home", home)
    assert done.returncode == 1 and done.stdout == "" and len(done.stderr.splitlines()) == 1
    assert done.stderr == ("error: invalid IngestConfig (settings.validation_fraction: Input should be less than 0.5; "
                           "settings.test_fraction: Input should be greater than 0)\n")
    done = cli.mnist("predict", "a.parquet", "b.parquet", "--output", "out.parquet", "--home", home)
    assert done.stderr == ("error: invalid PredictConfig (settings: an output file takes the predictions of exactly "
                           "one Parquet input, got 2 inputs)\n")
