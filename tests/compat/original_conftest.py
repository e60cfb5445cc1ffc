"""The fixtures the original DeltaGlider's own tests run with here: copied as ``conftest.py``
beside its unchanged test files (from its sdist) by ``test_original_tests.py``.

Only fixtures change: ``client`` is this package's client on a real SeaweedFS (not the
original's in-memory ``MockStorage``), in a fresh ``test-bucket`` holding the objects the
original's fixture holds, written as physical objects with the metadata it gives them; the
tests reach the bucket's physical objects through ``client.service.storage.objects``, as
they reached the mock's dict, here a view of the real bucket. The LocalStack tests' server is
the same SeaweedFS (``AWS_ENDPOINT_URL``; SeaweedFS knows their ``test``/``test`` keys).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping
from types import SimpleNamespace
from typing import Any

import pytest

from deltaglider import create_client

ENDPOINT = os.environ["DG_COMPAT_ENDPOINT"]
KEY, SECRET = "test", "test"
BUCKET = "test-bucket"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: the original's end-to-end tests")


@pytest.fixture(autouse=True)
def _server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every client a test makes on its own (boto3's, the CLI's) talks to SeaweedFS, never to
    AWS or to anything but 127.0.0.1."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", ENDPOINT)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("DG_DISABLE_EC2_DETECTION", "1")
    monkeypatch.setenv("DG_CACHE_BACKEND", "memory")
    for name in ("AWS_PROFILE", "DG_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def skip_if_no_xdelta() -> None:
    """This package needs no xdelta3 program (its codec is built in): nothing to skip."""


class PhysicalObjects(MutableMapping[str, dict[str, Any]]):
    """The physical objects of the server as the original's ``MockStorage.objects`` showed
    them: ``"bucket/key" -> {"data", "size", "metadata"}``. Setting one writes it to the
    server (``data``, or ``size`` bytes when the fixture gives only a size)."""

    def __init__(self, storage: Any) -> None:
        self._storage = storage

    @staticmethod
    def _split(name: str) -> tuple[str, str]:
        bucket, _, key = name.partition("/")
        return bucket, key

    def __setitem__(self, name: str, spec: dict[str, Any]) -> None:
        bucket, key = self._split(name)
        data = spec.get("data", b"\0" * int(spec.get("size", 0)))
        self._storage.put(bucket, key, data, size=len(data), metadata=spec.get("metadata") or {})

    def __getitem__(self, name: str) -> dict[str, Any]:
        bucket, key = self._split(name)
        info = self._storage.head_or_none(bucket, key)
        if info is None:
            raise KeyError(name)
        _, body = self._storage.get(bucket, key)
        try:
            data = body.read()
        finally:
            body.close()
        return {"data": data, "size": info.size, "metadata": dict(info.metadata or {})}

    def __delitem__(self, name: str) -> None:
        bucket, key = self._split(name)
        if name not in self:
            raise KeyError(name)
        self._storage.delete(bucket, key)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        bucket, key = self._split(name)
        return self._storage.head_or_none(bucket, key) is not None

    def __iter__(self) -> Iterator[str]:
        return (f"{BUCKET}/{o.key}" for o in self._storage.iter_objects(BUCKET))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class Adapted:
    """The client, with ``service.storage.objects`` reaching the server's physical objects
    (the original's tests look there); everything else is the client's own."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.service = SimpleNamespace(
            storage=SimpleNamespace(objects=PhysicalObjects(client.storage))
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _empty_bucket(client: Any) -> None:
    storage = client.storage
    if any(b.name == BUCKET for b in storage.list_buckets()):
        keys = [o.key for o in storage.iter_objects(BUCKET)]
        if keys:
            storage.delete_many(BUCKET, keys)
    else:
        storage.create_bucket(BUCKET)


@pytest.fixture
def client() -> Iterator[Adapted]:
    """The original's fixture, on a real server: the same objects, in a fresh test-bucket."""
    real = create_client(ENDPOINT, aws_access_key_id=KEY, aws_secret_access_key=SECRET)
    _empty_bucket(real)
    adapted = Adapted(real)
    adapted.service.storage.objects.update(
        {
            "test-bucket/file1.txt": {"size": 100, "metadata": {}},
            "test-bucket/folder1/file2.txt": {"size": 200, "metadata": {}},
            "test-bucket/folder1/file3.txt": {"size": 300, "metadata": {}},
            "test-bucket/folder2/file4.txt": {"size": 400, "metadata": {}},
            "test-bucket/archive.zip.delta": {
                "size": 50,
                "metadata": {"file_size": "1000", "compression_ratio": "0.95"},
            },
        }
    )
    yield adapted
    real.close()
