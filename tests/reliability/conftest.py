"""Fixtures for the reliability tests: SeaweedFS behind a fault-injecting proxy.

Tests talk to the store two ways: through the proxy (the code under test, which meets the faults)
and directly (to check what the store really holds afterwards).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
import sanitized
from faultproxy import FaultProxy
from servers import REGION, Server

from deltaglider.storage import _s3_session
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
    with mock.patch.object(_s3_session.boto3, "Session", return_value=session):
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


# --- the sanitized build of the fuzz runs ---------------------------------------------------


@pytest.fixture(scope="session")
def sanitized_build(tmp_path_factory: pytest.TempPathFactory) -> sanitized.SanitizedBuild:
    """This checkout's extension with ASan/UBSan and libFuzzer's coverage (sanitized.py),
    built once for every fuzz harness of the session (about 30 s, or a minute on a busy
    machine)."""
    base = tmp_path_factory.mktemp("sanitized")
    return sanitized.build(base / "pkg", base / "build")


# --- the soak runs beside the rest of the suite --------------------------------------------


@dataclass
class Soak:
    """The soak runner (tests/reliability/soak.py) started in the background."""

    process: subprocess.Popen[bytes]
    out: Path
    log: Path
    seconds: float
    workers: int


SOAK = pytest.StashKey[Soak]()


def soak_settings() -> tuple[float, int, float]:
    """Seconds, workers and mean pause between a worker's operations (DG_SOAK_SECONDS,
    DG_SOAK_WORKERS, DG_SOAK_PAUSE): by default 150 s (a first and a last minute that do not
    overlap), 3 processes, 100 ms (light enough to run beside the other tests)."""
    return (
        float(os.environ.get("DG_SOAK_SECONDS", "150")),
        int(os.environ.get("DG_SOAK_WORKERS", "3")),
        float(os.environ.get("DG_SOAK_PAUSE", "0.1")),
    )


def start_soak() -> Soak:
    seconds, workers, pause = soak_settings()
    folder = Path(tempfile.mkdtemp(prefix="dg-soak-report-"))
    out, log = folder / "soak.json", folder / "soak.log"
    runner = Path(__file__).with_name("soak.py")
    cmd = [sys.executable, str(runner), "--seconds", str(seconds), "--workers", str(workers)]
    cmd += ["--pause", str(pause), "--out", str(out)]
    with open(log, "wb") as fh:
        process = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    return Soak(process, out, log, seconds, workers)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The soak takes minutes of wall time but little CPU: when its test is selected, it starts
    as soon as collection ends and runs while the other tests do; its test waits for it."""
    if any(item.nodeid.split("::")[0].endswith("test_soak.py") for item in session.items):
        session.config.stash[SOAK] = start_soak()


def pytest_unconfigure(config: pytest.Config) -> None:
    soak = config.stash.get(SOAK, None)
    if soak is not None and soak.process.poll() is None:
        soak.process.terminate()  # the runner stops its SeaweedFS and workers
        try:
            soak.process.wait(30)
        except subprocess.TimeoutExpired:
            soak.process.kill()
            soak.process.wait()


# Tests import this folder's helpers as ``reliability_conftest`` (see tests/cli/conftest.py).
sys.modules.setdefault("reliability_conftest", sys.modules[__name__])
