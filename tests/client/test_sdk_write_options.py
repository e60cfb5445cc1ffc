"""S3's own write options (server-side encryption with AES256 or a KMS key, storage class,
canned ACL, Cache-Control, Content-Encoding) on every write path of the client, applied to the
objects a key maps to and to the reference behind them. Against moto, which implements them
(SeaweedFS ignores most), and refused on the local store."""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from client_conftest import memory_config
from data import release
from servers import REGION, Server

from deltaglider import create_client
from deltaglider.client import DeltaGliderClient, NotSupportedError

_names = itertools.count()

OPTIONS = {
    "ServerSideEncryption": "AES256",
    "StorageClass": "STANDARD_IA",
    "CacheControl": "max-age=60",
    "ContentEncoding": "identity",
}


@pytest.fixture(scope="module")
def raw(moto_server: Server) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=moto_server.endpoint_url,
        aws_access_key_id=moto_server.access_key,
        aws_secret_access_key=moto_server.secret_key,
        region_name=REGION,
    )


def _moto_client(server: Server) -> DeltaGliderClient:
    """A deltaglider client on moto, with a cache of its own (cold)."""
    return create_client(
        server.endpoint_url,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=REGION,
        deltaglider_config=memory_config(),
    )


@pytest.fixture
def dg(moto_server: Server) -> Iterator[DeltaGliderClient]:
    with _moto_client(moto_server) as client:
        yield client


@pytest.fixture
def bucket(raw: Any) -> str:
    name = f"dg-wopt-{os.getpid()}-{next(_names)}"
    raw.create_bucket(Bucket=name)
    return name


def _stored(raw: Any, bucket: str, key: str) -> dict[str, Any]:
    head = raw.head_object(Bucket=bucket, Key=key)
    return {
        "ServerSideEncryption": head.get("ServerSideEncryption"),
        "StorageClass": head.get("StorageClass", "STANDARD"),
        "CacheControl": head.get("CacheControl"),
        "ContentEncoding": head.get("ContentEncoding"),
    }


def _public(raw: Any, bucket: str, key: str) -> bool:
    grants = raw.get_object_acl(Bucket=bucket, Key=key)["Grants"]
    return any(g["Grantee"].get("URI", "").endswith("/AllUsers") for g in grants)


def test_put_object_applies_them_to_the_delta_and_the_reference(
    dg: DeltaGliderClient, raw: Any, bucket: str
) -> None:
    dg.put_object(Bucket=bucket, Key="r/app-1.zip", Body=release(1), ACL="public-read", **OPTIONS)
    dg.put_object(Bucket=bucket, Key="r/app-2.zip", Body=release(2), ACL="public-read", **OPTIONS)
    dg.put_object(Bucket=bucket, Key="r/notes.txt", Body=b"notes", ACL="public-read", **OPTIONS)
    for physical in ("r/reference.bin", "r/app-1.zip.delta", "r/app-2.zip.delta", "r/notes.txt"):
        assert _stored(raw, bucket, physical) == OPTIONS, physical
        assert _public(raw, bucket, physical), physical
    for key, data in (("r/app-2.zip", release(2)), ("r/notes.txt", b"notes")):
        assert dg.get_object(Bucket=bucket, Key=key)["Body"].read() == data


def test_kms_encryption(dg: DeltaGliderClient, raw: Any, bucket: str) -> None:
    kms = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/deltaglider-test"}
    dg.put_object(Bucket=bucket, Key="k/app-1.zip", Body=release(1), **kms)
    dg.put_object(Bucket=bucket, Key="k/app-2.zip", Body=release(2), **kms)
    for physical in ("k/reference.bin", "k/app-2.zip.delta"):
        head = raw.head_object(Bucket=bucket, Key=physical)
        assert head["ServerSideEncryption"] == "aws:kms", physical
        assert head["SSEKMSKeyId"].endswith("alias/deltaglider-test"), head["SSEKMSKeyId"]
    assert dg.get_object(Bucket=bucket, Key="k/app-2.zip")["Body"].read() == release(2)


def test_upload_transfers_and_copy_take_them(
    dg: DeltaGliderClient, raw: Any, bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "app-1.zip"
    src.write_bytes(release(1))
    dg.upload_file(str(src), bucket, "u/app-1.zip", ExtraArgs=dict(OPTIONS))
    dg.upload_fileobj(io.BytesIO(release(2)), bucket, "u/app-2.zip", ExtraArgs=dict(OPTIONS))
    for physical in ("u/reference.bin", "u/app-1.zip.delta", "u/app-2.zip.delta"):
        assert _stored(raw, bucket, physical) == OPTIONS, physical
    # a copy into the same folder (server-side) and into another (rebuilt, a new reference)
    dg.copy_object(Bucket=bucket, Key="u/copy.zip", CopySource=f"{bucket}/u/app-2.zip", **OPTIONS)
    dg.copy_object(Bucket=bucket, Key="v/copy.zip", CopySource=f"{bucket}/u/app-2.zip", **OPTIONS)
    for physical in ("u/copy.zip.delta", "v/copy.zip.delta", "v/reference.bin"):
        assert _stored(raw, bucket, physical) == OPTIONS, physical
    assert dg.get_object(Bucket=bucket, Key="v/copy.zip")["Body"].read() == release(2)


def test_without_them_nothing_is_set(dg: DeltaGliderClient, raw: Any, bucket: str) -> None:
    dg.put_object(Bucket=bucket, Key="p/app-1.zip", Body=release(1))
    stored = _stored(raw, bucket, "p/app-1.zip.delta")
    assert stored["StorageClass"] == "STANDARD" and stored["CacheControl"] is None
    assert not _public(raw, bucket, "p/reference.bin")


def test_the_local_store_refuses_them(tmp_path: Path) -> None:
    with create_client((tmp_path / "s").as_uri(), deltaglider_config=memory_config()) as local:
        local.create_bucket(Bucket="bkt")
        for name, value in {**OPTIONS, "ACL": "private"}.items():
            with pytest.raises(NotSupportedError, match=name):
                local.put_object(Bucket="bkt", Key="x.zip", Body=b"x", **{name: value})
        src = tmp_path / "a.zip"
        src.write_bytes(b"a")
        with pytest.raises(NotSupportedError, match="StorageClass"):
            local.upload_file(str(src), "bkt", "a.zip", ExtraArgs={"StorageClass": "GLACIER"})
        assert local.list_objects_v2(Bucket="bkt")["KeyCount"] == 0  # nothing was stored


def test_an_archive_class_is_not_given_to_the_reference(
    dg: DeltaGliderClient, raw: Any, bucket: str, moto_server: Server
) -> None:
    """Every delta of a folder needs its reference: one in GLACIER could not be read until
    restored, so a reference never gets an archive class (the deltas do, as asked)."""
    for v in (1, 2):
        dg.put_object(Bucket=bucket, Key=f"g/app-{v}.zip", Body=release(v), StorageClass="GLACIER")
    assert _stored(raw, bucket, "g/reference.bin")["StorageClass"] == "STANDARD"
    for v in (1, 2):
        assert _stored(raw, bucket, f"g/app-{v}.zip.delta")["StorageClass"] == "GLACIER"
    # A client with a cold cache still encodes the folder's next release against it.
    with _moto_client(moto_server) as fresh:
        third = fresh.put_object(
            Bucket=bucket, Key="g/app-3.zip", Body=release(3), StorageClass="GLACIER"
        )
    assert third["DeltaGliderInfo"]["IsDelta"]


def test_an_archived_object_reads_as_archived_not_as_forbidden(
    dg: DeltaGliderClient, bucket: str
) -> None:
    """S3 answers 403 InvalidObjectState for an object in GLACIER not restored: said as what it
    is, not as access denied."""
    dg.put_object(Bucket=bucket, Key="a/notes.txt", Body=b"cold", StorageClass="GLACIER")
    with pytest.raises(Exception) as caught:
        dg.get_object(Bucket=bucket, Key="a/notes.txt")["Body"].read()
    text = str(caught.value)
    assert "restored" in text and "access denied" not in text.lower(), text
