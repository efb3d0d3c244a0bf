"""What produced an artifact: code version and library versions, recorded in manifests."""

import ast
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import threading
from dataclasses import dataclass

# The folder holding flows/, tasks/ and storage/: a checkout's root, or site-packages/mnist_pipeline.
PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Written into a built wheel by tasks/core/build_hook.py: the commit it was built from.
BUILD_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "build.json")
TRACKED_LIBRARIES = ("numpy", "pandas", "pyarrow", "great-expectations", "prefect")


@functools.cache
def code_version() -> str:
    """``git:<commit>[+dirty]``: from the metadata an installed wheel was built with, else from git
    when this code runs from a checkout; else ``package:<version>`` or ``unknown``."""
    if os.path.isfile(BUILD_FILE):
        with open(BUILD_FILE, encoding="utf-8") as handle:
            state = GitState(**json.load(handle))
    else:
        state = git_state(PROJECT_DIR) if is_checkout(PROJECT_DIR) else GitState()
    if state.commit:
        return f"git:{state.commit}{'+dirty' if state.dirty else ''}"
    try:
        return f"package:{importlib.metadata.version('mnist-pipeline')}"
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def is_checkout(directory: str) -> bool:
    """Whether ``directory`` is the root of a git checkout of this project (never a repository
    that merely encloses an installed copy)."""
    return os.path.exists(os.path.join(directory, ".git")) and os.path.isfile(os.path.join(directory, "pyproject.toml"))


@dataclass(frozen=True)
class GitState:
    commit: str | None = None  # None: no git to ask (built from an sdist or an export)
    dirty: bool | None = None  # whether tracked files differ from the commit


def git_state(directory: str) -> GitState:
    """The commit checked out in ``directory`` and whether tracked files differ from it.
    Standard library only: the wheel build runs it too (build_hook.py)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", directory, *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        return GitState(git("rev-parse", "HEAD"), bool(git("status", "--porcelain", "--untracked-files=no")))
    except (OSError, subprocess.SubprocessError):
        return GitState()


PACKAGE = "mnist_pipeline"


# CPython 3.11's parser is not safe to enter from two threads at once ("SystemError: AST
# constructor recursion depth mismatch"), and trainings side by side in threads each ask for the
# model code's key the first time together: one parse at a time.
_PARSING = threading.Lock()


@functools.cache
def source_key(label: str, *modules: str, exclude: tuple[str, ...] = ()) -> str:
    """A short hash of the source of ``modules`` and of every project module they import, directly
    or not, at the top or inside functions: a storage key that changes whenever any code that could
    change the result does (a helper in another folder included). ``exclude`` names modules that
    are not followed (a catalog that only lists what exists)."""
    digest = hashlib.sha256(label.encode())
    with _PARSING:
        sources = imported_sources(modules, frozenset(exclude))
    for name, path in sorted(sources.items()):
        with open(path, "rb") as handle:
            digest.update(f"\0{name}\0".encode() + handle.read())
    return digest.hexdigest()[:12]


def imported_sources(modules: tuple[str, ...], exclude: frozenset[str] = frozenset()) -> dict[str, str]:
    """Module name -> source file, for ``modules`` (of this project, or not: a family defined
    elsewhere) and the project modules they import (read from their syntax, so imports made only
    on some paths count too), and the packages around them; never those of ``exclude``."""
    found: dict[str, str] = {}
    pending = list(modules)
    roots = set(modules)
    while pending:
        name = pending.pop()
        ours = name == PACKAGE or name.startswith(PACKAGE + ".")
        if name in found or name in exclude or not (ours or name in roots):
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            continue
        found[name] = spec.origin
        pending.append(name.rsplit(".", 1)[0])  # its package's __init__ runs first
        with open(spec.origin, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), spec.origin)
        package = name if spec.submodule_search_locations else name.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                pending += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                    if node.level else node.module
                pending.append(base)
                pending += [_submodule(base, alias.name) for alias in node.names]
    return found


def _submodule(package: str, name: str) -> str:
    """``package.name`` when that is a module (``from package import module``), else the package."""
    candidate = f"{package}.{name}"
    try:
        return candidate if importlib.util.find_spec(candidate) else package
    except (ImportError, ValueError):  # ``from module import function``: module is no package
        return package


def library_versions(names: tuple[str, ...] = TRACKED_LIBRARIES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
