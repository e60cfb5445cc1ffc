"""Fixtures for the boto3-compatible client: on the session's SeaweedFS server, a plain
``boto3.client("s3")`` and a ``deltaglider.create_client()``, each with buckets of its own.

A :class:`Pair` runs the same call on both clients (each against its own bucket) so the tests
can compare the two outcomes (see ``test_parity.py``).
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from servers import REGION, Server

from deltaglider import create_client
from deltaglider.client import DeltaGliderClient
from deltaglider.config import Config
from deltaglider.storage.s3 import _no_expect_for_empty_body

# Never probe EC2 metadata (tests/conftest.py sets these too; the client tests rely on them).
os.environ.setdefault("DG_DISABLE_EC2_DETECTION", "1")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

_names = itertools.count()


def bucket_name(tag: str) -> str:
    """A fresh bucket name; the two sides of a pair differ only in their last two letters."""
    return f"dg-client-{os.getpid()}-{next(_names):04d}-{tag}"


def plain_client(
    server: Server, key: str | None = None, secret: str | None = None, *, config: Any = None
) -> Any:
    """``boto3.client("s3")`` for the server, as a program written for boto3 would make it
    (with another identity's keys if given, and a botocore ``Config`` if given)."""
    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=key or server.access_key,
        aws_secret_access_key=secret or server.secret_key,
        region_name=REGION,
        config=config,
    )
    # The one change from a stock client: an empty upload skips Expect: 100-continue, as
    # S3Storage's do. Without it, with botocore 1.43 and urllib3 2.7 the next upload on that
    # connection waits out the 60 s read timeout against SeaweedFS (the same bytes arrive
    # either way; a minute per empty file is all it costs).
    client.meta.events.register("before-send.s3", _no_expect_for_empty_body)
    return client


def deltaglider_client(
    server: Server, key: str | None = None, secret: str | None = None, config: Any = None
) -> DeltaGliderClient:
    """``create_client()`` for the server (a botocore ``config`` if given)."""
    return create_client(
        endpoint_url=server.endpoint_url,
        aws_access_key_id=key or server.access_key,
        aws_secret_access_key=secret or server.secret_key,
        region_name=REGION,
        config=config,
        deltaglider_config=Config.from_env(environ={}, cache_backend="memory"),
    )


def remove_bucket(raw: Any, bucket: str) -> None:
    """Deletes a bucket and every object in it (deltaglider's own objects too), with a plain
    boto3 client; a bucket that is already gone is fine."""
    try:
        for page in raw.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                raw.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        raw.delete_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] not in ("NoSuchBucket", "404"):
            raise


def physical_keys(raw: Any, bucket: str, prefix: str = "") -> list[str]:
    """What is really stored in a bucket (references and deltas included)."""
    keys: list[str] = []
    for page in raw.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


@pytest.fixture(scope="session")
def s3_client(seaweedfs: Server) -> Any:
    """A plain boto3 S3 client on SeaweedFS."""
    return plain_client(seaweedfs)


@pytest.fixture(scope="session")
def dg_client(seaweedfs: Server) -> Iterator[DeltaGliderClient]:
    """A deltaglider client on the same SeaweedFS."""
    client = deltaglider_client(seaweedfs)
    yield client
    client.close()


@dataclass
class Buckets:
    """Makes buckets with a plain client and removes them (and what is in them) at the end."""

    raw: Any
    made: list[str] = field(default_factory=list)

    def new(self, tag: str) -> str:
        name = bucket_name(tag)
        self.raw.create_bucket(Bucket=name)
        self.made.append(name)
        return name

    def name(self, tag: str) -> str:
        """A name for a bucket the test itself creates (removed at the end if it exists)."""
        name = bucket_name(tag)
        self.made.append(name)
        return name

    def cleanup(self) -> None:
        for name in self.made:
            remove_bucket(self.raw, name)
        self.made.clear()


@pytest.fixture
def buckets(s3_client: Any) -> Iterator[Buckets]:
    made = Buckets(s3_client)
    yield made
    made.cleanup()


@dataclass
class Side:
    """One client and its bucket."""

    name: str
    client: Any
    bucket: str

    def resolve(self, value: Any) -> Any:
        """A call's argument for this side: a callable is called with the side (a fresh
        file object, a CopySource naming this side's bucket)."""
        return value(self) if callable(value) else value


@dataclass
class Pair:
    """boto3 (the reference) and deltaglider, each on a bucket of its own."""

    s3: Side
    dg: Side

    @property
    def sides(self) -> tuple[Side, Side]:
        return self.s3, self.dg

    def call_one(self, side: Side, method: str, /, **kwargs: Any) -> Any:
        """``side.client.<method>(Bucket=side.bucket, **kwargs)``; a ClientError is returned."""
        args = {name: side.resolve(value) for name, value in kwargs.items()}
        args.setdefault("Bucket", side.bucket)
        if args["Bucket"] is None:
            del args["Bucket"]
        try:
            return getattr(side.client, method)(**args)
        except botocore.exceptions.ClientError as exc:
            return exc

    def call(self, method: str, /, **kwargs: Any) -> tuple[Any, Any]:
        """The same call on both sides: (boto3's outcome, deltaglider's outcome)."""
        return self.call_one(self.s3, method, **kwargs), self.call_one(self.dg, method, **kwargs)

    def each(self, fn: Callable[[Side], Any]) -> tuple[Any, Any]:
        return fn(self.s3), fn(self.dg)


def make_pair(buckets: Buckets, s3_client: Any, dg_client: DeltaGliderClient) -> Pair:
    return Pair(
        Side("boto3", s3_client, buckets.new("s3")), Side("dg", dg_client, buckets.new("dg"))
    )


@pytest.fixture
def pair(buckets: Buckets, s3_client: Any, dg_client: DeltaGliderClient) -> Pair:
    """A fresh bucket for each client."""
    return make_pair(buckets, s3_client, dg_client)


# --- a client and a fresh bucket on SeaweedFS or on the local store (``target``) ----------


def xfer_name(tag: str) -> str:
    return f"dg-xfer-{os.getpid()}-{next(_names):04d}-{tag}"


def memory_config() -> Config:
    return Config.from_env(environ={}, cache_backend="memory")


@pytest.fixture(scope="module")
def raw(seaweedfs: Server) -> Any:
    """A plain boto3 client on SeaweedFS: the reference behaviour, and a look at what is
    really stored."""
    return plain_client(seaweedfs)


@pytest.fixture(scope="module")
def dg(seaweedfs: Server) -> Iterator[DeltaGliderClient]:
    client = deltaglider_client(seaweedfs)
    yield client
    client.close()


@dataclass
class Made:
    raw: Any
    names: list[str] = field(default_factory=list)

    def bucket(self, tag: str, create: bool = True) -> str:
        name = xfer_name(tag)
        if create:
            self.raw.create_bucket(Bucket=name)
        self.names.append(name)  # removed at the end even if only the test created it
        return name


@pytest.fixture
def made(raw: Any) -> Iterator[Made]:
    m = Made(raw)
    yield m
    for name in m.names:
        remove_bucket(raw, name)


@dataclass
class Target:
    """A deltaglider client and a fresh bucket on one kind of store."""

    kind: str
    client: DeltaGliderClient
    bucket: str
    server: Server | None = None
    root: Path | None = None
    made: Made | None = None

    def fresh(self) -> DeltaGliderClient:
        """Another client on the same store, with a cold cache."""
        if self.server is not None:
            return deltaglider_client(self.server)
        assert self.root is not None
        return create_client(self.root.as_uri(), deltaglider_config=memory_config())

    def forget(self, bucket: str) -> None:
        """Removes ``bucket`` at the end, if the test made the store create it."""
        if self.made is not None:
            self.made.names.append(bucket)

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"

    def physical_keys(self, prefix: str = "") -> list[str]:
        return sorted(o.key for o in self.client.storage.iter_objects(self.bucket, prefix=prefix))


@pytest.fixture(params=["seaweedfs", "local"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "local":
        root = tmp_path / "store"
        client = create_client(root.as_uri(), deltaglider_config=memory_config())
        bucket = xfer_name("lc")
        client.storage.create_bucket(bucket)
        yield Target("local", client, bucket, root=root)
        client.close()
    else:
        m: Made = request.getfixturevalue("made")
        server: Server = request.getfixturevalue("seaweedfs")
        yield Target("seaweedfs", request.getfixturevalue("dg"), m.bucket("tg"), server, made=m)


class Counter:
    """A Callback: the increments it got, and whether two calls ever overlapped."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.overlapped = False
        self._inside = 0

    def __call__(self, count: int) -> None:
        self._inside += 1
        if self._inside > 1:
            self.overlapped = True
        time.sleep(0)  # let another thread in, if one could get in
        self.calls.append(count)
        self._inside -= 1

    @property
    def total(self) -> int:
        return sum(self.calls)


def tamper(client: DeltaGliderClient, bucket: str, physical_key: str, data: bytes) -> None:
    """Replaces an object's bytes in the store, keeping its metadata (as damage would)."""
    info = client.storage.head(bucket, physical_key)
    client.storage.put(
        bucket,
        physical_key,
        data,
        size=len(data),
        metadata=info.metadata,
        content_type=info.content_type,
    )


# Tests import this folder's helpers as ``client_conftest``: every folder has a ``conftest``,
# and when pytest is given files from several folders it imports all the conftests before
# any test, so the name ``conftest`` would be the last folder's.
sys.modules.setdefault("client_conftest", sys.modules[__name__])
