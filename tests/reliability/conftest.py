"""Fixtures for the reliability tests: SeaweedFS behind a fault-injecting proxy.

Tests talk to the store two ways: through the proxy (the code under test, which meets the faults)
and directly (to check what the store really holds afterwards).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from faultproxy import FaultProxy
from servers import REGION, Server

from deltaglider.storage import s3 as s3_module
from deltaglider.storage.s3 import S3Storage

_sessions: dict[tuple[str, str], Any] = {}
_sessions_lock = threading.Lock()


def s3_storage(server: Server, endpoint_url: str | None = None, **options: Any) -> S3Storage:
    """An S3Storage for ``server`` (at ``endpoint_url`` if given: the proxy).

    Built exactly as the code builds it, except that the boto3 Session is shared between
    storages: a new Session loads botocore's data files again (0.15 s), and the fault matrix
    makes a fresh storage (fresh retry and rate-limiter state) for every cell.
    """
    creds = (server.access_key, server.secret_key)
    with _sessions_lock:
        session = _sessions.get(creds)
        if session is None:
            session = _sessions[creds] = boto3.Session(
                aws_access_key_id=creds[0], aws_secret_access_key=creds[1]
            )
    with mock.patch.object(s3_module.boto3, "Session", return_value=session):
        return S3Storage(
            endpoint_url=endpoint_url or server.endpoint_url,
            aws_access_key_id=creds[0],
            aws_secret_access_key=creds[1],
            region=REGION,
            **options,
        )


@pytest.fixture(scope="module")
def fault_proxy(seaweedfs: Server) -> Iterator[FaultProxy]:
    proxy = FaultProxy(seaweedfs.endpoint_url)
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture
def proxy(fault_proxy: FaultProxy) -> Iterator[FaultProxy]:
    """The module's proxy, with no rules and an empty record."""
    fault_proxy.clear()
    yield fault_proxy
    fault_proxy.clear()


# Tests import this folder's helpers as ``reliability_conftest`` (see tests/cli/conftest.py).
sys.modules.setdefault("reliability_conftest", sys.modules[__name__])
