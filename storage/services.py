"""What `mnist up` keeps in the storage root: service logs, the API secret, where the server listens.

The Prefect server that `mnist up` starts requires an auth string (HTTP basic auth), so that other
users of the machine cannot drive it. The string is generated once and kept in
``<root>/prefect-api-auth`` with mode 0600; ``<root>/prefect-server.json`` records the API URL it
belongs to, so the `mnist` command sends the string to that server and to no other.
"""

import json
import os
import secrets
import stat

from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.tasks.core.errors import InputError

AUTH_FILE = "prefect-api-auth"
SERVER_FILE = "prefect-server.json"


def log_path(root: StorageRoot, service: str) -> str:
    folder = _local_path(root, "logs")
    os.makedirs(folder, exist_ok=True)
    return f"{folder}/{service}.log"


def auth_string(root: StorageRoot) -> str:
    """The server's auth string: created on first use, readable by its owner only."""
    path = _local_path(root, AUTH_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_private(path)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    return _read_private(path)


def auth_file(root: StorageRoot) -> str:
    return _local_path(root, AUTH_FILE)


def record_server(root: StorageRoot, api_url: str) -> None:
    """Remember which API the auth string belongs to (written by `mnist up`)."""
    root.write_bytes_atomic(root.join(SERVER_FILE), json.dumps({"api_url": api_url}).encode())


def auth_for(root: StorageRoot, api_url: str) -> str | None:
    """The auth string of the server `mnist up` started for this root, if ``api_url`` is it."""
    if not root.is_local:
        return None
    try:
        recorded = json.loads(root.read_bytes(root.join(SERVER_FILE)))["api_url"]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    if recorded.rstrip("/") != api_url.rstrip("/") or not os.path.isfile(auth_file(root)):
        return None
    return _read_private(auth_file(root))


def _read_private(path: str) -> str:
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        raise InputError(f"{path} is readable by others (mode {mode:o}); the secret in it may have leaked: "
                         "delete the file and run `mnist up` again to generate a new one")
    with open(path) as handle:
        value = handle.read().strip()
    if not value:
        raise InputError(f"{path} is empty; delete it and run `mnist up` again to generate a new secret")
    return value


def _local_path(root: StorageRoot, name: str) -> str:
    if not root.is_local:
        raise InputError(f"`mnist up` keeps its logs and secret on a local disk; the storage root {root.url} "
                         "is not one: pass --home DIR for `mnist up` (and --logs DIR)")
    return root.join(name)
