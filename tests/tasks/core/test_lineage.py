"""Cache keys that change whenever code that could change the result does."""

import sys

import pytest

from mnist_pipeline.tasks.core import lineage
from mnist_pipeline.tasks.core.eda.report import report_code_key
from mnist_pipeline.tasks.core.models import code_key


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A small package: ``main`` imports ``helpers`` only inside a function, ``helpers``
    imports ``deep`` relatively; ``unrelated`` is imported by nobody."""
    root = tmp_path / "keyed"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "main.py").write_text("def run():\n    from keyed.helpers import helper\n    return helper()\n")
    (root / "helpers.py").write_text("from . import deep\n\ndef helper():\n    return deep.VALUE\n")
    (root / "deep.py").write_text("VALUE = 1\n")
    (root / "unrelated.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(lineage, "PACKAGE", "keyed")
    lineage.source_key.cache_clear()
    yield root
    lineage.source_key.cache_clear()
    for name in [m for m in sys.modules if m == "keyed" or m.startswith("keyed.")]:
        del sys.modules[name]


def test_the_key_follows_imports_in_functions_and_relative_ones(package):
    assert set(lineage.imported_sources(("keyed.main",))) == {"keyed", "keyed.main", "keyed.helpers", "keyed.deep"}


def test_changing_a_helper_two_imports_away_changes_the_key_and_an_unrelated_module_does_not(package):
    before = lineage.source_key("test", "keyed.main")
    (package / "unrelated.py").write_text("X = 2\n")
    lineage.source_key.cache_clear()
    assert lineage.source_key("test", "keyed.main") == before
    (package / "deep.py").write_text("VALUE = 2\n")
    lineage.source_key.cache_clear()
    assert lineage.source_key("test", "keyed.main") != before


def test_model_ids_and_eda_reports_cover_the_helpers_they_use():
    import pkgutil

    import mnist_pipeline.tasks.core.models as models

    family_modules = [f"{models.__name__}.{m.name}" for m in pkgutil.iter_modules(models.__path__)]
    covered = lineage.imported_sources((models.__name__, "mnist_pipeline.tasks.core.training", *family_modules))
    # Subsampling (dataset), the image contract (digits) and the training record (training).
    assert {"mnist_pipeline.tasks.core.dataset", "mnist_pipeline.tasks.core.digits",
            "mnist_pipeline.tasks.core.training", *family_modules} <= set(covered)
    eda = lineage.imported_sources(("mnist_pipeline.tasks.core.eda.report",))
    assert {"mnist_pipeline.tasks.core.dataset", "mnist_pipeline.tasks.core.pages",
            "mnist_pipeline.tasks.core.eda.figures", "mnist_pipeline.tasks.core.eda.stats"} <= set(eda)
    # Neither depends on Prefect tasks, flows or storage.
    assert not [m for m in {*covered, *eda} if m.startswith(("mnist_pipeline.flows", "mnist_pipeline.storage"))]
    assert len(code_key()) == len(report_code_key()) == 12
