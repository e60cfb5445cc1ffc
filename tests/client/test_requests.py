"""What the client's object operations cost, counted on the wire: the HTTP requests botocore
sends for them (a ``before-send`` handler on the client's own boto3 client, which its storage
sends through), on SeaweedFS and on moto.

With a warm reference cache, a delta's ``get_object`` is the engine's download (a GET of the
likelier stored form, a HEAD of the other, sent at once) and its ``put_object`` the engine's
upload (a PUT of the delta, a HEAD of the reference after): two requests each, nothing asked
twice. ``delete_object`` asks the bucket at most once, and only where the engine's answer
needs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from client_conftest import bucket_name, deltaglider_client, plain_client, remove_bucket
from data import release
from servers import Server

from deltaglider.client import DeltaGliderClient


class Wire:
    """The operations botocore sends on a client, by name (``GetObject``...), as it sends
    them."""

    def __init__(self, client: DeltaGliderClient) -> None:
        self.sent: list[str] = []
        client.boto_client.meta.events.register("before-send.s3", self._count)

    def _count(self, event_name: str, **_: Any) -> None:
        self.sent.append(event_name.rsplit(".", 1)[-1])

    def clear(self) -> None:
        self.sent.clear()

    def count(self, operation: str) -> int:
        return self.sent.count(operation)


@pytest.fixture(params=["seaweedfs", "moto_server"])
def warm(request: pytest.FixtureRequest) -> Iterator[tuple[DeltaGliderClient, Wire, str]]:
    """A client whose reference cache is warm (``w/app-1.zip`` and ``w/app-2.zip`` stored
    through it), its wire counter and its bucket."""
    server: Server = request.getfixturevalue(request.param)
    raw = plain_client(server)
    bucket = bucket_name("rq")
    raw.create_bucket(Bucket=bucket)
    client = deltaglider_client(server)
    try:
        for version in (1, 2):
            client.put_object(Bucket=bucket, Key=f"w/app-{version}.zip", Body=release(version))
        yield client, Wire(client), bucket
    finally:
        client.close()
        remove_bucket(raw, bucket)


def test_get_and_put_of_a_delta_cost_two_requests(
    warm: tuple[DeltaGliderClient, Wire, str],
) -> None:
    client, wire, bucket = warm
    wire.clear()
    put = client.put_object(Bucket=bucket, Key="w/app-3.zip", Body=release(3))
    assert put["DeltaGliderInfo"]["IsDelta"]
    assert len(wire.sent) <= 2, wire.sent  # PUT the delta, HEAD the reference after
    wire.clear()
    got = client.get_object(Bucket=bucket, Key="w/app-2.zip")
    assert got["Body"].read() == release(2)
    assert got["DeltaGliderInfo"]["IsDelta"]
    assert len(wire.sent) <= 2, wire.sent  # GET the delta, HEAD the key's other stored form
    wire.clear()
    ranged = client.get_object(Bucket=bucket, Key="w/app-3.zip", Range="bytes=-10")
    assert ranged["Body"].read() == release(3)[-10:]
    assert ranged["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert len(wire.sent) <= 2, wire.sent


def test_delete_object_asks_the_bucket_at_most_once(
    warm: tuple[DeltaGliderClient, Wire, str],
) -> None:
    client, wire, bucket = warm
    wire.clear()
    deleted = client.delete_object(Bucket=bucket, Key="w/app-2.zip")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    # The rest: HEADs of the key's two stored forms, the DELETE of the delta, a listing of its
    # deltaspace (app-1's delta is still there: the reference stays). A key found proves the
    # bucket: none is asked for here now (the client asked once before the engine's requests).
    assert wire.count("HeadBucket") <= 1, wire.sent
    wire.clear()
    # A missing key in an existing bucket still succeeds. The rest: HEADs of the two stored
    # forms and of the deltaspace's reference, which found nothing; the one HeadBucket tells a
    # missing key (fine) from a missing bucket (the client asked a second time before).
    missing = client.delete_object(Bucket=bucket, Key="elsewhere/none.zip")
    assert missing["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert wire.count("HeadBucket") <= 1, wire.sent
    wire.clear()
    with pytest.raises(client.exceptions.NoSuchBucket):
        client.delete_object(Bucket=f"{bucket}-none", Key="w/none.zip")
    assert wire.count("HeadBucket") <= 1, wire.sent
