"""Shared test configuration.

Profiles for hypothesis are chosen with HYPOTHESIS_PROFILE: ``default`` (quick, for a developer
loop) and ``ci`` (more examples, no deadline: CI machines are slow and shared).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import originals
import pytest
from hypothesis import HealthCheck, settings
from servers import Moto, SeaweedFS, Server

# Tests talk to 127.0.0.1 only; never let boto3 or the original DeltaGlider probe EC2 metadata.
os.environ["DG_DISABLE_EC2_DETECTION"] = "1"
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

settings.register_profile(
    "default",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_collection_finish(session: pytest.Session) -> None:
    """The other tools' environments install in the background while the first tests run."""
    files = {item.nodeid.split("::")[0] for item in session.items}
    originals.prefetch(
        originals=any(f.endswith("test_original_compat.py") for f in files),
        aws=any(f.endswith("test_aws_parity.py") for f in files),
    )


# --- real S3 servers, one of each per session -----------------------------------------------


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[Server]:
    server = SeaweedFS()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Server]:
    server = Moto()
    try:
        yield server.start()
    finally:
        server.stop()
