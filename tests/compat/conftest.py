"""The compatibility tier: what the original DeltaGlider (6.x) documents, run against this
package. Its own public-surface tests (fetched from its sdist on PyPI, run unchanged with
fixtures of ours), every CLI and Python example of its README, on SeaweedFS and the local
store (its SSE/KMS and storage-class examples on moto).

``compat_server`` is a SeaweedFS of its own that also takes the keys the original's tests
sign with (``test``/``test``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from servers import SeaweedFS, Server

#: The original release whose documentation and tests the tier holds this package to.
ORIGINAL = "6.2.0"


@pytest.fixture(scope="session")
def compat_server() -> Iterator[Server]:
    weed = SeaweedFS(admins=(("test", "test"),))
    server = weed.start()
    yield server
    weed.stop()


# Tests import this folder's helpers as ``compat_conftest`` (see tests/client/conftest.py).
sys.modules.setdefault("compat_conftest", sys.modules[__name__])
