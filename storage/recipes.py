"""Training recipes chosen for a dataset version: ``recipes/<dataset version>/<key>.json``.

The key hashes what the choice depends on besides the data (the trial's code and settings, the
seed), so a nightly run on an unchanged dataset finds its recipe instead of running the trial
again, and changed trial code makes a new choice.
"""

import json

from mnist_pipeline.storage.root import StorageRoot

AREA = "recipes"


def recipe_path(root: StorageRoot, dataset_version: str, key: str) -> str:
    return root.join(AREA, dataset_version, f"{key}.json")


def find_recipe(root: StorageRoot, dataset_version: str, key: str) -> dict | None:
    path = recipe_path(root, dataset_version, key)
    return json.loads(root.read_bytes(path)) if root.exists(path) else None


def write_recipe(root: StorageRoot, dataset_version: str, key: str, recipe: dict) -> None:
    """Keep a chosen recipe (atomically: a reader sees all of it or nothing)."""
    root.write_bytes_atomic(recipe_path(root, dataset_version, key), (json.dumps(recipe, indent=2) + "\n").encode())
