"""Where `mnist up` keeps the logs of the Prefect server and worker it starts."""

import os

from storage.root import StorageRoot


def log_path(root: StorageRoot, service: str) -> str:
    if not root.is_local:
        raise ValueError(f"`mnist up` keeps service logs on a local disk; {root.url} is not one: pass --logs DIR")
    folder = root.join("logs")
    os.makedirs(folder, exist_ok=True)
    return f"{folder}/{service}.log"
