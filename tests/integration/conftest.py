"""Fixtures for tests against real stores: SeaweedFS (primary), moto, and the local backend.

Every test that takes ``store`` (or ``storage``) runs once per backend, in a fresh bucket.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import Server

from deltaglider.cache import MemoryCache
from deltaglider.config import Config
from deltaglider.engine import DeltaStore
from deltaglider.storage.base import Storage
from deltaglider.storage.local import LocalStorage
from deltaglider.storage.s3 import S3Storage

logging.getLogger("werkzeug").setLevel(logging.ERROR)

BACKENDS = ["seaweedfs", "moto", "local"]
_names = itertools.count()


def s3_storage(server: Server, **options: Any) -> S3Storage:
    return S3Storage(
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region="us-east-1",
        max_attempts=3,
        **options,
    )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def storage(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if backend == "local":
        st: Storage = LocalStorage(tmp_path / "store")
    else:
        server = request.getfixturevalue("seaweedfs" if backend == "seaweedfs" else "moto_server")
        st = s3_storage(server)
    yield st
    st.close()


@pytest.fixture
def bucket(storage: Storage) -> Iterator[str]:
    name = f"dg-test-{os.getpid()}-{next(_names)}"
    storage.create_bucket(name)
    yield name
    keys = [o.key for o in storage.iter_objects(name)]
    if keys:
        storage.delete_many(name, keys)
    storage.delete_bucket(name)


def make_config(**overrides: Any) -> Config:
    """Settings independent of the environment the tests run in."""
    return Config.from_env(environ={}, **{"cache_backend": "memory", **overrides})


@pytest.fixture
def store(storage: Storage) -> Iterator[DeltaStore]:
    engine = DeltaStore(storage, MemoryCache(256 << 20), make_config())
    yield engine
    engine.pools.shutdown()


# Tests import this folder's helpers as ``integration_conftest``: every folder has a ``conftest``,
# and when pytest is given files from several folders it imports all the conftests before
# any test, so the name ``conftest`` would be the last folder's.
sys.modules.setdefault("integration_conftest", sys.modules[__name__])
