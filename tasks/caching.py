"""How tasks whose result lives in the storage root (EDA reports, trained models) use Prefect's cache.

Storage is the truth, Prefect's result cache a shortcut: a task gets a cache key only while its
result is in storage, so a wiped or replaced root never gets a cache hit pointing at something
that is gone. (The task itself also looks in storage first, for when Prefect's cache is empty.)

Cached results are small JSON values, never pickles, and they are read back only when they are
plain JSON. Prefect decodes a cached result with the serializer named in the cache entry's
*stored metadata*, not with the task's own setting, so an entry replaced by one that names the
pickle serializer, or a JSON "serializer" whose decoder is some other function, would run code on
the next cache hit. The cache policy below keeps that metadata in :class:`CacheKeyStorage`, which
refuses to hand Prefect an entry unless its serializer is exactly JSON and the result it points
at decodes without importing or building anything; Prefect then treats the key as a cache miss,
the task runs (finding its result in storage), and the entry is written again.
"""

import hashlib
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from prefect.cache_policies import CacheKeyFnPolicy, CachePolicy
from prefect.filesystems import LocalFileSystem

from mnist_pipeline.tasks.core.errors import MnistError

# What an entry written with result_serializer="json" names as its serializer, exactly.
JSON_SERIALIZER = {
    "type": "json",
    "jsonlib": "json",
    "object_encoder": "prefect.serializers.prefect_json_object_encoder",
    "object_decoder": "prefect.serializers.prefect_json_object_decoder",
    "dumps_kwargs": {},
    "loads_kwargs": {},
}
RESULT_SERIALIZER = "json"
KEYS_FOLDER = "mnist-pipeline-cache-keys"  # beside the results, in Prefect's local result storage

logger = logging.getLogger(__name__)


class UntrustedResult(MnistError, ValueError):
    """A cached task result that is not a plain JSON entry of this pipeline."""


def key_while_stored(stored: bool, kind: str, *parts) -> str | None:
    """``<kind>-<hash of parts>`` while the result is in storage, else None (no caching).

    Hashed so the key is a plain file name whatever the parts hold (a root URL has slashes)."""
    if not stored:
        return None
    return f"{kind}-{hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:32]}"


def stored_result_cache(key_fn: Callable) -> CachePolicy:
    """The cache policy of a task whose result is in storage: ``key_fn`` names the entry, and the
    entry's metadata lives in :class:`CacheKeyStorage`, which reads back only plain JSON."""
    return CacheKeyFnPolicy(cache_key_fn=key_fn).configure(key_storage=CacheKeyStorage())


def results_folder() -> Path:
    """Prefect's local result storage: ``PREFECT_RESULTS_LOCAL_STORAGE_PATH`` as it is set now."""
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH

    return Path(PREFECT_RESULTS_LOCAL_STORAGE_PATH.value()).expanduser().resolve()


def check_entry(metadata: bytes, read_result: Callable[[Path], bytes], where: str = "cache entry") -> bytes:
    """``metadata`` unchanged if it names exactly the JSON serializer and a result file inside
    Prefect's local result storage whose JSON decodes without importing or building anything;
    :class:`UntrustedResult` otherwise."""
    try:
        fields = json.loads(metadata)
        serializer, storage_key = fields["serializer"], fields["storage_key"]
    except (ValueError, KeyError, TypeError) as error:
        raise UntrustedResult(f"{where} is not a result entry ({type(error).__name__}: {error})") from None
    if serializer != JSON_SERIALIZER:
        raise UntrustedResult(f"{where} names the serializer {serializer!r}; only plain JSON results are read")
    folder, result_path = results_folder(), Path(str(storage_key)).resolve()
    if folder not in result_path.parents:
        raise UntrustedResult(f"{where} points outside {folder} (at {storage_key!r})")
    try:
        payload = json.loads(read_result(result_path))
    except (OSError, ValueError) as error:
        raise UntrustedResult(f"{where}: its result {result_path} is not readable JSON ({error})") from None
    marker = _object_marker(payload)
    if marker:
        raise UntrustedResult(f"{where}: its result asks the decoder to build {marker}; only plain JSON is read")
    return metadata


def _object_marker(value) -> str | None:
    """What Prefect's JSON decoder would import or build from ``value``, if anything.

    Exceptions of already-imported modules are allowed: a failed task's stored exception (its
    class name and message) decodes without importing anything new.
    """
    if isinstance(value, list):
        return next((m for m in map(_object_marker, value) if m), None)
    if not isinstance(value, dict):
        return None
    if "__class__" in value:
        return f"an object of class {value['__class__']!r}"
    if "__exc_type__" in value:
        module = str(value["__exc_type__"]).rpartition(".")[0]
        if module not in sys.modules:
            return f"an exception of {value['__exc_type__']!r}"
    return next((m for m in map(_object_marker, value.values()) if m), None)


class CacheKeyStorage(LocalFileSystem):
    """Where Prefect keeps the metadata of this pipeline's cache entries (a folder of its local
    result storage); reading an entry checks it first (see the module docstring)."""

    _block_type_name = "mnist-pipeline cache keys"

    def _resolve_path(self, path: str) -> Path:
        # The folder as the settings say now, not at import time (tests and workers set their own).
        return LocalFileSystem(basepath=str(results_folder() / KEYS_FOLDER))._resolve_path(path)

    def read_path(self, path: str, _sync: bool | None = None) -> bytes:
        return self._checked(LocalFileSystem.read_path(self, path, _sync=True), path)

    async def aread_path(self, path: str) -> bytes:
        return self._checked(await super().aread_path(path), path)

    def _checked(self, metadata: bytes, path: str) -> bytes:
        try:
            return check_entry(metadata, Path.read_bytes, f"cache entry {self._resolve_path(path)}")
        except UntrustedResult as error:
            logger.warning("ignoring %s", error)
            raise
