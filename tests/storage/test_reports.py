"""EDA reports in storage: written whole, and replaced without a moment where none exists."""

import os

import pytest

from mnist_pipeline.storage import reports
from mnist_pipeline.storage.root import StorageRoot


def write(root, html):
    return reports.write_eda_report(root, "v1", "k1", html, {"figure": b"png"}, '{"n": 1}')


def test_a_redrawn_report_replaces_the_old_one_and_the_old_one_is_never_deleted_first(tmp_path, monkeypatch):
    root = StorageRoot(str(tmp_path))
    write(root, "<p>first</p>")

    removed_while_live = []
    real_rm = root.fs.rm

    def watching_rm(path, *args, **kwargs):  # deleting the live report would open a window
        if path.rstrip("/") == reports.eda_dir(root, "v1", "k1"):
            removed_while_live.append(path)
        return real_rm(path, *args, **kwargs)

    monkeypatch.setattr(root.fs, "rm", watching_rm)
    write(root, "<p>second</p>")
    assert removed_while_live == []
    assert root.read_bytes(f"{reports.eda_dir(root, 'v1', 'k1')}/{reports.INDEX}") == b"<p>second</p>"
    assert not [n for n in os.listdir(os.path.dirname(reports.eda_dir(root, "v1", "k1"))) if n.startswith(".retired")]


def test_a_redraw_that_fails_while_moving_in_puts_the_old_report_back(tmp_path, monkeypatch):
    root = StorageRoot(str(tmp_path))
    write(root, "<p>first</p>")
    real_rename = os.rename

    def rename(source, target, *args, **kwargs):  # the new report's move into place fails
        if "/.staging/" in str(source):
            raise OSError("disk full")
        return real_rename(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="disk full"):
        write(root, "<p>second</p>")
    monkeypatch.setattr(os, "rename", real_rename)
    assert root.read_bytes(f"{reports.eda_dir(root, 'v1', 'k1')}/{reports.INDEX}") == b"<p>first</p>"
    assert not [n for n in os.listdir(os.path.dirname(reports.eda_dir(root, "v1", "k1"))) if n.startswith(".retired")]
