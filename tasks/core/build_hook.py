"""Build-time only: records which commit a wheel was built from (setuptools loads this module
from pyproject.toml's ``cmdclass``; the pipeline never imports it).

An installed package cannot ask git which code it is: site-packages is not a checkout (and a
repository around it would answer for the wrong code). So the wheel carries ``build.json``
beside :mod:`mnist_pipeline.tasks.core.lineage`, which reads it.
"""

import json
import os
import subprocess

from setuptools.command.build_py import build_py

BUILD_FILE = "build.json"


def git_state(directory: str) -> dict:
    """The commit checked out in ``directory`` and whether tracked files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", directory, *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"),
                "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}  # built from an sdist or an export: no git to ask


class BuildPy(build_py):
    """setuptools' build_py, plus ``build.json`` in the built ``mnist_pipeline.tasks.core``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install runs from the checkout, where git answers
        target = os.path.join(self.build_lib, "mnist_pipeline", "tasks", "core", BUILD_FILE)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as handle:
            json.dump(git_state(os.getcwd()), handle)
