"""The README's deployment walkthrough, run as written in a terminal would run it: only the port
(a free one) and the home folder (a temporary one) differ."""

import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from mnist_pipeline.storage.registry import Registry
from mnist_pipeline.storage.root import StorageRoot
from tests.deployments.test_deployments import PROJECT, free_port


def walkthrough() -> str:
    readme = open(os.path.join(PROJECT, "README.md")).read()
    section = readme[readme.index("The same by hand, on a"):]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def terminal_shell(script: str) -> list[str]:
    return ["bash", "-e", "-c", script]


def like_a_terminal() -> None:
    """Whatever launched the tests, the block's shell starts as from a terminal: SIGINT not ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_the_readme_walkthrough_works_when_pasted_into_a_terminal(tmp_path):
    script = walkthrough()
    assert "--no-prompt deploy" in script and "--watch" in script
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "MNIST_"))}
    env.update(HOME=str(tmp_path))  # the block itself turns Prefect's telemetry off
    terminal = open(tmp_path / "terminal.log", "w")
    # The block ends by stopping the server and worker it started in the background.
    shell = subprocess.Popen(
        terminal_shell(script.replace("4200", str(port))), cwd=PROJECT, env=env, start_new_session=True,
        stdin=subprocess.DEVNULL, stdout=terminal, stderr=subprocess.STDOUT, preexec_fn=like_a_terminal,
    )
    started = time.monotonic()
    try:
        shell.wait(timeout=300)
        seconds = time.monotonic() - started
        output = (tmp_path / "terminal.log").read_text()
        assert shell.returncode == 0, output[-4000:]
        assert "Flow run finished successfully in 'Completed'" in output, output[-4000:]
        assert "Failed to send telemetry" not in output
        with pytest.raises(OSError):  # the block's last line stopped the server
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        with pytest.raises(ProcessLookupError):  # and nothing the block started is left running
            os.killpg(shell.pid, 0)

        home = tmp_path / "mnist-data"
        # What the deployment recorded (job variables are `infra_overrides` in the stopped server's SQLite).
        import sqlite3

        with sqlite3.connect(tmp_path / ".prefect" / "prefect.db") as database:
            job_variables, parameters = database.execute(
                "SELECT infra_overrides, parameters FROM deployment WHERE name = 'train-all'").fetchone()
        assert json.loads(job_variables)["env"]["MNIST_HOME"] == str(home)  # recorded from the shell
        assert "source" not in parameters  # the Variable decides
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
