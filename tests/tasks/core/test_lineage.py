"""Cache keys that change whenever code that could change the result does."""

import sys

import pytest
from mnist_pipeline.tasks.core import lineage
from mnist_pipeline.tasks.core.eda.report import report_code_key
from mnist_pipeline.tasks.core.models import catalog


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
    base = "mnist_pipeline.tasks.core"
    covered = lineage.imported_sources((f"{base}.models.cnn", f"{base}.training"), frozenset({f"{base}.models.catalog"}))
    # Subsampling (dataset), the image contract (digits), the training loop and the record.
    assert {f"{base}.dataset", f"{base}.digits", f"{base}.training", f"{base}.records", f"{base}.models.torch_base",
            f"{base}.models.cnn"} <= set(covered)
    eda = lineage.imported_sources(("mnist_pipeline.tasks.core.eda.report",))
    assert {"mnist_pipeline.tasks.core.dataset", "mnist_pipeline.tasks.core.pages",
            "mnist_pipeline.tasks.core.eda.figures", "mnist_pipeline.tasks.core.eda.stats"} <= set(eda)
    # Neither depends on Prefect tasks, flows or storage.
    assert not [m for m in {*covered, *eda} if m.startswith(("mnist_pipeline.flows", "mnist_pipeline.storage"))]
    assert len(catalog.code_key("cnn")) == len(report_code_key()) == 12


def test_a_family_s_code_key_covers_its_own_module_and_the_shared_helpers_never_a_sibling(monkeypatch, tmp_path):
    """Editing one family's module changes that family's model ids and no other family's: on main
    4ef742a a comment changed in svm.py gave the CNN a new model id (and the nightly run its 170 s)."""
    families = catalog.family_names()
    keys = {family: catalog.code_key(family) for family in families}
    modules = {family: catalog.declaration(family).module for family in families}
    for family in families:
        sources = lineage.imported_sources((modules[family], "mnist_pipeline.tasks.core.training"),
                                           frozenset({catalog.__name__}))
        assert {modules[other] for other in families if other != family}.isdisjoint(sources), family
        assert "mnist_pipeline.tasks.core.models.torch_base" in sources or family == "svm"
    # The SVM's module, edited (a comment appended to a copy): its key changes, the others' do not.
    svm_path = lineage.imported_sources((modules["svm"],))[modules["svm"]]
    edited = tmp_path / "svm.py"
    edited.write_text(open(svm_path).read() + "\n# a comment\n")
    real = lineage.imported_sources

    def with_edited_svm(roots, exclude=frozenset()):
        found = real(roots, exclude)
        return {name: str(edited) if name == modules["svm"] else path for name, path in found.items()}

    monkeypatch.setattr(lineage, "imported_sources", with_edited_svm)
    lineage.source_key.cache_clear()
    catalog.code_key.cache_clear()
    try:
        changed = {family: catalog.code_key(family) for family in families}
    finally:
        monkeypatch.undo()
        lineage.source_key.cache_clear()
        catalog.code_key.cache_clear()
    assert changed["svm"] != keys["svm"]
    assert {f: k for f, k in changed.items() if f != "svm"} == {f: k for f, k in keys.items() if f != "svm"}
