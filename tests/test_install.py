"""The package as users install it: a wheel, non-editable, in a fresh virtual environment, used
from outside the checkout. It installs under one name (mnist_pipeline.*) and knows the commit it
was built from without running git in site-packages."""

import json
import os
import subprocess
import sys
import sysconfig

import pytest

from mnist_pipeline.tasks.core import lineage

CHECKOUT = lineage.PROJECT_DIR


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with the wheel installed; the dependencies come from this venv's
    site-packages through a .pth line (nothing is downloaded, and this venv's editable install of
    the checkout is not seen: .pth files are processed only in site directories)."""
    if not lineage.is_checkout(CHECKOUT):
        pytest.skip("needs a git checkout to build the wheel from")
    where = tmp_path_factory.mktemp("install")
    # What `pip install .` of this checkout builds (offline: this venv's setuptools).
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(where / "dist"),
        CHECKOUT)
    wheel = next((where / "dist").glob("mnist_pipeline-*.whl"))
    venv = where / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    site = run(str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    with open(os.path.join(site, "dependencies.pth"), "w") as handle:
        handle.write(sysconfig.get_paths()["purelib"] + "\n")
    run(sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps",
        "--no-index", str(wheel))
    return venv, site, where


def test_the_wheel_installs_one_package_and_no_top_level_flows_tasks_or_storage(installed):
    venv, site, _ = installed
    assert "mnist_pipeline" in os.listdir(site)
    assert not {"flows", "tasks", "storage"} & set(os.listdir(site))
    assert sorted(os.listdir(os.path.join(site, "mnist_pipeline"))) == ["deployments", "flows", "storage", "tasks"]
    # The deployment definitions ship with the package: `mnist deploy` needs no checkout.
    shipped = set(os.listdir(os.path.join(site, "mnist_pipeline", "deployments")))
    assert {"prefect.yaml", "process-pool-template.json", "crash-zombie-runs.yaml"} <= shipped


def test_mnist_runs_from_outside_the_checkout_on_the_installed_code(installed, prefect_harness):
    from prefect.settings import PREFECT_API_URL

    venv, site, where = installed
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": ""}
    outside = where / "elsewhere"
    outside.mkdir()
    assert "train-all" in run(str(venv / "bin" / "mnist"), "--help", cwd=outside, env=env).stdout
    where_from = run(str(venv / "bin" / "python"), "-c", "import mnist_pipeline.flows.cli as c; print(c.__file__)",
                     cwd=outside, env=env).stdout.strip()
    assert where_from.startswith(site), where_from

    home = where / "home"
    done = run(str(venv / "bin" / "mnist"), "ingest", "--source", "mnist-sample", "--home", str(home), "--json",
               cwd=outside, env=env)
    manifest = json.loads(done.stdout[done.stdout.index("{"):])
    # The commit the wheel was built from (a dirty working tree shows as +dirty), not git's
    # answer from inside site-packages.
    expected = lineage.code_version()
    assert manifest["code_version"] == expected and expected.startswith("git:")


def test_an_installed_copy_never_asks_git_about_an_enclosing_repository(tmp_path):
    """A repository around site-packages is not the package's checkout."""
    (tmp_path / ".git").mkdir()
    assert not lineage.is_checkout(str(tmp_path / "site-packages" / "mnist_pipeline"))
    assert not lineage.is_checkout(str(tmp_path))  # a .git but no pyproject.toml of ours
    assert lineage.is_checkout(CHECKOUT)
