"""What produced an artifact: code version and library versions, recorded in manifests."""

import functools
import importlib.metadata
import os
import subprocess

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRACKED_LIBRARIES = ("numpy", "pandas", "pyarrow", "great-expectations", "prefect")


@functools.cache
def code_version() -> str:
    """``git:<commit>[+dirty]`` when run from a checkout, else the installed package version."""
    try:
        commit = subprocess.run(
            ["git", "-C", PROJECT_DIR, "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", PROJECT_DIR, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        return f"git:{commit}{'+dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return f"package:{importlib.metadata.version('mnist-pipeline')}"
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def library_versions(names: tuple[str, ...] = TRACKED_LIBRARIES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
