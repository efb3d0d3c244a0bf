"""The `mnist` command run in the test's own process, for commands that start no flow run.

A command in a process of its own pays a cold import of Prefect, torch and scikit-learn (seconds
each time); in this process it costs what the command itself does. Its exit status and output
are captured as a subprocess's would be. Commands that run a flow stay in a subprocess (their
Prefect settings and logging are the command's own).
"""

import io
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass

from mnist_pipeline.flows.cli import main


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str
    stderr: str


def mnist(*args: str) -> Done:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit:  # argparse: --help, usage errors
            code = exit.code if isinstance(exit.code, int) else 1
    return Done(code, out.getvalue(), err.getvalue())
