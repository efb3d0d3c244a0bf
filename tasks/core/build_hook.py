"""Build-time only: records which commit a wheel was built from (setuptools loads this module
from pyproject.toml's ``cmdclass``; the pipeline never imports it).

An installed package cannot ask git which code it is: site-packages is not a checkout (and a
repository around it would answer for the wrong code). So the wheel carries ``build.json``
beside :mod:`mnist_pipeline.tasks.core.lineage`, which reads it.
"""

import dataclasses
import importlib.util
import json
import os

from setuptools.command.build_py import build_py


def _lineage():
    """lineage.py, loaded by path: setuptools runs this file before the package is installed."""
    spec = importlib.util.spec_from_file_location("_mnist_lineage", os.path.join(os.path.dirname(__file__), "lineage.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPy(build_py):
    """setuptools' build_py, plus ``build.json`` in the built ``mnist_pipeline.tasks.core``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install runs from the checkout, where git answers
        lineage = _lineage()
        target = os.path.join(self.build_lib, "mnist_pipeline", "tasks", "core", os.path.basename(lineage.BUILD_FILE))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as handle:
            json.dump(dataclasses.asdict(lineage.git_state(os.getcwd())), handle)
