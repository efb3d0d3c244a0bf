"""The storage root: where it is, and the mistakes it refuses."""

import pytest

from mnist_pipeline.storage.root import StorageRoot, resolve_home
from mnist_pipeline.tasks.core.errors import InputError


def test_home_comes_from_the_argument_then_the_environment_then_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_HOME", str(tmp_path / "env"))
    assert resolve_home(tmp_path / "arg") == str(tmp_path / "arg")
    assert resolve_home() == str(tmp_path / "env")
    monkeypatch.delenv("MNIST_HOME")
    assert resolve_home().endswith("/.local/share/mnist-pipeline")
    assert resolve_home("memory://bucket/x") == "memory://bucket/x"


def test_a_deployment_made_without_mnist_home_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("MNIST_HOME", "{{ $MNIST_HOME }}")  # what prefect.yaml leaves when it is unset
    with pytest.raises(InputError, match="the deployment was made from a shell without MNIST_HOME"):
        StorageRoot()


def test_a_file_is_not_a_root_and_a_missing_root_is_not_created(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        StorageRoot(tmp_path / "file")
    with pytest.raises(InputError, match="does not exist"):
        StorageRoot(tmp_path / "missing").require_existing()
    assert not (tmp_path / "missing").exists()


def test_sweeping_stale_staging_skips_a_folder_another_writer_just_published(tmp_path, monkeypatch):
    """Side-by-side training tasks share one process and one ``.staging``: a folder listed by one
    sweep can be renamed into place by its writer before the sweep reads its time (CI's failure:
    FileNotFoundError naming the other writer's staging folder, and that family failed)."""
    import os

    from mnist_pipeline.storage import root as root_module

    store = StorageRoot(tmp_path)
    old = tmp_path / "models" / ".staging" / "1-old"
    old.mkdir(parents=True)
    os.utime(old, (0, 0))  # a killed writer's leftover: swept
    busy = tmp_path / "models" / ".staging" / "2-busy"
    busy.mkdir()
    listed = list(os.scandir(busy.parent))
    busy.rename(tmp_path / "models" / "published")  # its writer publishes between listing and stat
    real_scandir = os.scandir
    monkeypatch.setattr(root_module.os, "scandir",
                        lambda path=".": iter(listed) if str(path) == str(busy.parent) else real_scandir(path))
    store.remove_stale_staging("models")
    assert not old.exists() and (tmp_path / "models" / "published").is_dir()
