"""Worker processes for the race tests: each has its own engine, and acts at a given instant.

Runs in separate processes (multiprocessing, spawn): nothing is shared with other workers but
the store itself.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from data import get_bytes, release

from deltaglider.cache import MemoryCache
from deltaglider.config import Config
from deltaglider.engine import DeltaStore
from deltaglider.errors import ObjectNotFound
from deltaglider.storage.local import LocalStorage
from deltaglider.storage.s3 import S3Storage

STORE: DeltaStore | None = None


def init(spec: dict[str, Any]) -> None:
    global STORE
    if spec["kind"] == "local":
        storage: Any = LocalStorage(spec["root"])
    else:
        storage = S3Storage(
            endpoint_url=spec["endpoint"],
            aws_access_key_id=spec["key"],
            aws_secret_access_key=spec["secret"],
            region="us-east-1",
        )
    config = Config.from_env(environ={}, cache_backend="memory")
    STORE = DeltaStore(storage, MemoryCache(256 << 20), config)


def data_for(seed: int) -> bytes:
    return release(seed % 20 + 1, seed=seed // 20 + 1)


def run(op: tuple[Any, ...]) -> tuple[str, Any]:
    """Executes one operation at ``start_at`` (a time.time() instant)."""
    kind, bucket, key, seed, start_at = op
    assert STORE is not None
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    try:
        if kind == "put":
            result = STORE.put(bucket, key, data_for(seed))
            return "ok", result.sha256
        if kind == "delete":
            return "ok", STORE.delete(bucket, key)
        if kind == "get":
            data = get_bytes(STORE, bucket, key)
            return "ok", hashlib.sha256(data).hexdigest()
        if kind == "copy":  # key is "source>destination"
            source, destination = key.split(">")
            return "ok", STORE.copy(bucket, source, bucket, destination).sha256
        raise ValueError(kind)
    except ObjectNotFound:
        return "missing", None
    except Exception as exc:
        return "error", f"{type(exc).__name__}: {exc}"
