"""The README's deployment walkthrough, run as written in a terminal would run it: only the port
(a free one) and the home folder (a temporary one) differ."""

import base64
import json
import os
import re
import signal
import subprocess
import time

import httpx
import pytest

from mnist_pipeline.storage.registry import Registry
from mnist_pipeline.storage.root import StorageRoot
from tests.deployments.test_deployments import PROJECT, free_port


def walkthrough() -> str:
    readme = open(os.path.join(PROJECT, "README.md")).read()
    section = readme[readme.index("The same by hand, on a"):]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def test_the_readme_walkthrough_works_when_pasted_into_a_terminal(tmp_path):
    script = walkthrough()
    assert "--no-prompt deploy" in script and "--watch" in script
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "MNIST_"))}
    env.update(HOME=str(tmp_path), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    terminal = open(tmp_path / "terminal.log", "w")
    # The shell ends after `--watch`; the server and worker it started in the background live on
    # (holding the terminal) until the end of the test kills its process group.
    shell = subprocess.Popen(
        ["bash", "-e", "-c", script.replace("4200", str(port))], cwd=PROJECT, env=env, start_new_session=True,
        stdin=subprocess.DEVNULL, stdout=terminal, stderr=subprocess.STDOUT,
    )
    started = time.monotonic()
    try:
        shell.wait(timeout=300)
        seconds = time.monotonic() - started
        output = (tmp_path / "terminal.log").read_text()
        assert shell.returncode == 0, output[-4000:]
        assert "Flow run finished successfully in 'Completed'" in output, output[-4000:]

        home = tmp_path / "mnist-data"
        secret = (home / "prefect-api-auth").read_text().strip()
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}/api", timeout=30,
                           headers={"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()})
        deployment = api.get("/deployments/name/mnist/train-all").json()
        assert deployment["job_variables"]["env"]["MNIST_HOME"] == str(home)  # recorded from the shell
        assert "source" not in json.dumps(deployment["parameters"])  # the Variable decides
        registry = Registry.open(StorageRoot(home))
        assert registry.alias("candidate")[0] is not None and registry.alias("production")[0] is None
        print(f"walkthrough with server start, deploy and the smoke run: {seconds:.0f} s")
    finally:
        try:
            os.killpg(shell.pid, signal.SIGTERM)
            time.sleep(3)
            os.killpg(shell.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("phrase", ["prefect --no-prompt deploy", "--watch", "mnist_source"])
def test_the_readme_shows_the_non_interactive_commands(phrase):
    readme = open(os.path.join(PROJECT, "README.md")).read()
    assert phrase in readme
