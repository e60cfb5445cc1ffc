"""Bucket operations, presigned URLs and the purge of their temporary copies, on SeaweedFS
(compared with a plain ``boto3.client("s3")`` on the same server) and on the local store."""

from __future__ import annotations

import itertools
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config as BotoConfig
from client_conftest import deltaglider_client, physical_keys, remove_bucket
from data import noise, release
from servers import REGION, Server

from deltaglider import create_client
from deltaglider import format as fmt
from deltaglider.client import DeltaGliderClient, NotSupportedError
from deltaglider.config import Config

os.environ.setdefault("DG_DISABLE_EC2_DETECTION", "1")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

TMP = ".deltaglider/tmp/"
_names = itertools.count()


def fresh_name(tag: str = "b") -> str:
    return f"dg-buckets-{os.getpid()}-{next(_names):03d}-{tag}"


def _stored(raw: Any, bucket: str, prefix: str = "") -> list[str]:
    return sorted(physical_keys(raw, bucket, prefix))


def shape(response: dict[str, Any]) -> dict[str, str]:
    """Top-level keys and value types of a response, without ResponseMetadata."""
    return {k: type(v).__name__ for k, v in response.items() if k != "ResponseMetadata"}


def code_of(call: Callable[[], Any]) -> tuple[str, int]:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def fetch(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw(seaweedfs: Server) -> Any:
    """A plain boto3 client, as a program written for boto3 makes it."""
    return boto3.client(
        "s3",
        endpoint_url=seaweedfs.endpoint_url,
        aws_access_key_id=seaweedfs.access_key,
        aws_secret_access_key=seaweedfs.secret_key,
        region_name=REGION,
    )


@pytest.fixture(scope="module")
def dg(seaweedfs: Server) -> Iterator[DeltaGliderClient]:
    client = deltaglider_client(seaweedfs)
    yield client
    client.close()


@pytest.fixture
def names(raw: Any) -> Iterator[Callable[[str], str]]:
    """Fresh bucket names; whatever exists under them is removed at the end."""
    made: list[str] = []

    def new(tag: str = "b") -> str:
        made.append(fresh_name(tag))
        return made[-1]

    yield new
    for name in made:
        remove_bucket(raw, name)


@pytest.fixture
def bucket(raw: Any, names: Callable[[str], str]) -> str:
    name = names("x")
    raw.create_bucket(Bucket=name)
    return name


@pytest.fixture
def local(tmp_path: Path) -> Iterator[DeltaGliderClient]:
    client = create_client(
        (tmp_path / "store").as_uri(),
        deltaglider_config=Config.from_env(environ={}, cache_backend="memory"),
    )
    yield client
    client.close()


V1, V2 = release(1), release(2)


def put_delta(client: DeltaGliderClient, bucket: str, key: str, data: bytes) -> None:
    response = client.put_object(Bucket=bucket, Key=key, Body=data)
    assert response["DeltaGliderInfo"]["PhysicalKey"].endswith(".delta"), key


# --- bucket operations over S3: boto3's responses ------------------------------------------


def test_create_bucket_as_boto3(raw: Any, dg: DeltaGliderClient, names: Any) -> None:
    ours, theirs = names("o"), names("p")
    mine = dg.create_bucket(Bucket=ours)
    plain = raw.create_bucket(Bucket=theirs)
    assert shape(mine) == shape(plain) == {"Location": "str"}
    assert mine["Location"] == f"/{ours}"
    assert mine["ResponseMetadata"]["HTTPStatusCode"] == 200
    dg.head_bucket(Bucket=ours)
    # Again: boto3 says BucketAlreadyOwnedByYou; here it succeeds, as the original's did (a
    # program that catches the error runs the same).
    assert code_of(lambda: raw.create_bucket(Bucket=theirs))[0] == "BucketAlreadyOwnedByYou"
    again = dg.create_bucket(Bucket=ours)
    assert shape(again) == shape(mine) and again["Location"] == f"/{ours}"
    # A configuration and an ACL go through.
    third = names("c")
    dg.create_bucket(
        Bucket=third, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}, ACL="private"
    )
    assert third in [b["Name"] for b in dg.list_buckets()["Buckets"]]
    with pytest.raises(NotSupportedError, match="ObjectLockEnabledForBucket"):
        dg.create_bucket(Bucket=names("l"), ObjectLockEnabledForBucket=True)


def test_head_location_list_acl_as_boto3(raw: Any, dg: DeltaGliderClient, bucket: str) -> None:
    for call in ("head_bucket", "get_bucket_location", "get_bucket_acl"):
        mine = getattr(dg, call)(Bucket=bucket)
        plain = getattr(raw, call)(Bucket=bucket)
        assert shape(mine) == shape(plain), call
        assert mine["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert dg.get_bucket_location(Bucket=bucket)["LocationConstraint"] is None
    assert (
        dg.put_bucket_acl(Bucket=bucket, ACL="private")["ResponseMetadata"]["HTTPStatusCode"]
        == (raw.put_bucket_acl(Bucket=bucket, ACL="private")["ResponseMetadata"]["HTTPStatusCode"])
    )
    acl = dg.get_bucket_acl(Bucket=bucket)
    assert acl["Grants"] and acl["Owner"]["ID"]

    mine, plain = dg.list_buckets(), raw.list_buckets()
    assert shape(mine) == shape(plain)
    assert [b["Name"] for b in mine["Buckets"]] == [b["Name"] for b in plain["Buckets"]]
    entry = next(b for b in mine["Buckets"] if b["Name"] == bucket)
    assert isinstance(entry["CreationDate"], datetime)


def test_missing_bucket_errors_as_boto3(raw: Any, dg: DeltaGliderClient) -> None:
    missing = fresh_name("missing")
    seen = {}
    for call in ("head_bucket", "get_bucket_location", "get_bucket_acl"):
        mine = code_of(lambda c=call: getattr(dg, c)(Bucket=missing))
        assert mine == code_of(lambda c=call: getattr(raw, c)(Bucket=missing)), call
        seen[call] = mine
    assert seen["head_bucket"] == ("404", 404)
    assert code_of(lambda: dg.purge_temp_files(missing)) == ("NoSuchBucket", 404)
    # Deleting a bucket that is not there: boto3 says NoSuchBucket; here it succeeds, as the
    # original's did (a program that catches the error runs the same).
    assert code_of(lambda: raw.delete_bucket(Bucket=missing)) == ("NoSuchBucket", 404)
    assert dg.delete_bucket(Bucket=missing)["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_delete_empty_bucket_as_boto3(raw: Any, dg: DeltaGliderClient, names: Any) -> None:
    ours, theirs = names("o"), names("p")
    raw.create_bucket(Bucket=ours)
    raw.create_bucket(Bucket=theirs)
    mine, plain = dg.delete_bucket(Bucket=ours), raw.delete_bucket(Bucket=theirs)
    assert shape(mine) == shape(plain) == {}
    assert (
        mine["ResponseMetadata"]["HTTPStatusCode"]
        == plain["ResponseMetadata"]["HTTPStatusCode"]
        == 204
    )
    assert code_of(lambda: raw.head_bucket(Bucket=ours)) == ("404", 404)


def test_delete_bucket_with_user_objects_is_refused(
    raw: Any, dg: DeltaGliderClient, bucket: str
) -> None:
    put_delta(dg, bucket, "rel/app-1.zip", V1)
    dg.put_object(Bucket=bucket, Key="notes.txt", Body=b"mine")
    dg.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "rel/app-1.zip"})
    before = _stored(raw, bucket)
    assert "rel/reference.bin" in before and any(k.startswith(TMP) for k in before)

    assert code_of(lambda: dg.delete_bucket(Bucket=bucket)) == ("BucketNotEmpty", 409)
    # Nothing of ours went either: the reference and the presigned copy are still there.
    assert _stored(raw, bucket) == before
    assert dg.get_object(Bucket=bucket, Key="rel/app-1.zip")["Body"].read() == V1

    dg.delete_object(Bucket=bucket, Key="notes.txt")
    assert code_of(lambda: dg.delete_bucket(Bucket=bucket)) == ("BucketNotEmpty", 409)
    assert "rel/app-1.zip.delta" in _stored(raw, bucket)


def test_delete_bucket_that_looks_empty(raw: Any, dg: DeltaGliderClient, bucket: str) -> None:
    put_delta(dg, bucket, "rel/app-1.zip", V1)
    put_delta(dg, bucket, "rel/app-2.zip", V2)
    dg.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "rel/app-2.zip"})
    # Left behind as if a cleanup was interrupted: the deltas are gone, the reference stays.
    raw.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "rel/app-1.zip.delta"}, {"Key": "rel/app-2.zip.delta"}]},
    )
    raw.put_object(Bucket=bucket, Key=".deltaglider/stats/cache.json", Body=b"{}")
    left = _stored(raw, bucket)
    assert "rel/reference.bin" in left and any(k.startswith(TMP) for k in left)
    assert dg.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    # The store sees objects; the plain client cannot delete the bucket.
    assert code_of(lambda: raw.delete_bucket(Bucket=bucket)) == ("BucketNotEmpty", 409)

    response = dg.delete_bucket(Bucket=bucket)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert code_of(lambda: raw.head_bucket(Bucket=bucket)) == ("404", 404)


# --- presigned URLs --------------------------------------------------------------------------


def test_presigned_get_of_a_delta_downloads_its_bytes(
    raw: Any, dg: DeltaGliderClient, bucket: str
) -> None:
    put_delta(dg, bucket, "rel/app-1.zip", V1)
    put_delta(dg, bucket, "rel/app-2.zip", V2)
    dg.put_object(Bucket=bucket, Key="rel/readme.txt", Body=b"read me")
    before = datetime.now(timezone.utc)
    url = dg.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "rel/app-2.zip"}, ExpiresIn=600
    )
    status, headers, body = fetch(url)
    assert status == 200
    assert body == V2
    assert int(headers["Content-Length"]) == len(V2)

    copies = _stored(raw, bucket, TMP)
    assert len(copies) == 1
    copy = copies[0]
    assert copy.endswith("/app-2.zip") and len(copy.split("/")) == 4
    assert f"/{bucket}/{copy}" in urllib.request.unquote(url)
    head = raw.head_object(Bucket=bucket, Key=copy)
    expires = fmt.parse_time(head["Metadata"]["dg-expires-at"])
    assert expires is not None
    assert (
        before + timedelta(seconds=599)
        <= expires
        <= datetime.now(timezone.utc) + timedelta(seconds=601)
    )
    assert head["ContentLength"] == len(V2)

    # The copies are deltaglider's own: never listed, never readable as user objects.
    for params in ({}, {"Delimiter": "/"}, {"Prefix": "rel/"}):
        listing = dg.list_objects_v2(Bucket=bucket, **params)
        keys = [o["Key"] for o in listing.get("Contents", [])]
        keys += [p["Prefix"] for p in listing.get("CommonPrefixes", [])]
        assert not any(k.startswith(".deltaglider") for k in keys), params
    assert sorted(o["Key"] for o in dg.list_objects_v2(Bucket=bucket)["Contents"]) == [
        "rel/app-1.zip",
        "rel/app-2.zip",
        "rel/readme.txt",
    ]

    # HEAD through a presigned head_object of the same delta.
    head_url = dg.generate_presigned_url(
        "head_object", Params={"Bucket": bucket, "Key": "rel/app-1.zip"}, HttpMethod="HEAD"
    )
    status, headers, _ = fetch(head_url, "HEAD")
    assert status == 200 and int(headers["Content-Length"]) == len(V1)


def test_presigned_get_of_direct_objects_is_the_stored_object(
    raw: Any, dg: DeltaGliderClient, bucket: str
) -> None:
    data = noise(50_000, 3)
    dg.put_object(Bucket=bucket, Key="docs/data.bin", Body=data)
    dg.put_object(Bucket=bucket, Key="docs/notes.delta", Body=b"not a delta")  # stored escaped
    raw.put_object(Bucket=bucket, Key="docs/foreign.txt", Body=b"from another tool")
    for key, expected in (
        ("docs/data.bin", data),
        ("docs/notes.delta", b"not a delta"),
        ("docs/foreign.txt", b"from another tool"),
    ):
        url = dg.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})
        status, _, body = fetch(url)
        assert (status, body) == (200, expected), key
    assert _stored(raw, bucket, TMP) == []  # nothing rebuilt for them
    # A direct object's conditions hold on the stored object itself.
    etag = dg.head_object(Bucket=bucket, Key="docs/data.bin")["ETag"]
    url = dg.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "docs/data.bin", "IfMatch": etag}
    )
    assert fetch(url)[0] == 200


def test_presigned_url_keeps_response_overrides(raw: Any, seaweedfs: Server, bucket: str) -> None:
    # SigV4 (SeaweedFS rejects response-* overrides in SigV2 URLs, whoever makes them).
    with deltaglider_client(seaweedfs, config=BotoConfig(signature_version="s3v4")) as client:
        put_delta(client, bucket, "rel/app-1.zip", V1)
        url = client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": bucket,
                "Key": "rel/app-1.zip",
                "ResponseContentType": "application/x-test",
                "ResponseContentDisposition": 'attachment; filename="app-1.zip"',
            },
            ExpiresIn=120,
        )
        assert "X-Amz-Signature" in url
        status, headers, body = fetch(url)
    assert status == 200 and body == V1
    assert headers["Content-Type"] == "application/x-test"
    assert headers["Content-Disposition"] == 'attachment; filename="app-1.zip"'


def test_presigned_url_refusals(dg: DeltaGliderClient, bucket: str, raw: Any) -> None:
    put_delta(dg, bucket, "rel/app-1.zip", V1)
    for method in ("put_object", "upload_part", "list_objects_v2", "delete_object"):
        with pytest.raises(NotSupportedError) as info:
            dg.generate_presigned_url(method, Params={"Bucket": bucket, "Key": "rel/x.zip"})
        assert method in str(info.value)
    with pytest.raises(NotSupportedError, match="bypassing delta storage"):
        dg.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "a.zip"})
    with pytest.raises(NotSupportedError, match="IfMatch"):
        dg.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "rel/app-1.zip", "IfMatch": '"x"'}
        )
    with pytest.raises(NotSupportedError, match="VersionId"):
        dg.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "rel/app-1.zip", "VersionId": "1"}
        )
    # A key with no object: signed as boto3 signs it (the URL answers 404 until one is stored)
    missing = dg.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "rel/none.zip"}
    )
    assert "rel/none.zip" in missing and fetch(missing)[0] == 404
    assert code_of(
        lambda: dg.generate_presigned_url(
            "get_object", Params={"Bucket": fresh_name("missing"), "Key": "a.zip"}
        )
    ) == ("NoSuchBucket", 404)
    with pytest.raises(botocore.exceptions.ParamValidationError):
        dg.generate_presigned_url("get_object", Params={"Bucket": bucket})
    assert _stored(raw, bucket, TMP) == []  # no copy made for any of them


# --- purge -----------------------------------------------------------------------------------


def test_purge_removes_expired_copies_and_keeps_the_others(
    raw: Any, dg: DeltaGliderClient, bucket: str
) -> None:
    put_delta(dg, bucket, "rel/app-1.zip", V1)
    put_delta(dg, bucket, "rel/app-2.zip", V2)
    short = dg.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "rel/app-1.zip"}, ExpiresIn=1
    )
    long = dg.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "rel/app-2.zip"}, ExpiresIn=3600
    )
    # One with no expiry recorded, written just now: kept until it is surely unusable.
    raw.put_object(Bucket=bucket, Key=f"{TMP}unknown/file.zip", Body=b"?")
    copies = _stored(raw, bucket, TMP)
    short_key = next(k for k in copies if k.endswith("/app-1.zip"))
    long_key = next(k for k in copies if k.endswith("/app-2.zip"))
    time.sleep(1.5)

    dry = dg.purge_temp_files(bucket, dry_run=True)
    listed = dry.pop("Objects")
    assert dry == {"Deleted": 1, "Bytes": len(V1), "Kept": 2, "Errors": [], "DryRun": True}
    assert [(o["Key"], o["Size"]) for o in listed] == [(short_key, len(V1))]
    assert fmt.parse_time(listed[0]["ExpiresAt"]) < datetime.now(timezone.utc)
    assert _stored(raw, bucket, TMP) == copies

    done = dg.purge_temp_files(bucket)
    assert [o["Key"] for o in done.pop("Objects")] == [short_key]
    assert done == {"Deleted": 1, "Bytes": len(V1), "Kept": 2, "Errors": [], "DryRun": False}
    assert _stored(raw, bucket, TMP) == sorted([long_key, f"{TMP}unknown/file.zip"])
    assert short_key not in _stored(raw, bucket)
    assert fetch(short)[0] in (403, 404)
    assert fetch(long)[2] == V2  # the unexpired URL still works

    again = dg.purge_temp_files(bucket)
    assert (again["Deleted"], again["Kept"]) == (0, 2)

    everything = dg.purge_temp_files(bucket, expired_only=False)
    assert everything["Deleted"] == 2 and everything["Bytes"] == len(V2) + 1
    assert _stored(raw, bucket, TMP) == []
    # User objects untouched.
    assert dg.get_object(Bucket=bucket, Key="rel/app-1.zip")["Body"].read() == V1
    assert "rel/reference.bin" in _stored(raw, bucket)


# --- the local store -------------------------------------------------------------------------


def test_local_bucket_operations_have_boto3_shapes(
    local: DeltaGliderClient, raw: Any, names: Any
) -> None:
    name, bucket = fresh_name("local"), names("p")
    created = local.create_bucket(Bucket=name)
    assert shape(created) == shape(raw.create_bucket(Bucket=bucket))
    assert created["Location"] == f"/{name}"
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert shape(local.head_bucket(Bucket=name)) == shape(raw.head_bucket(Bucket=bucket))
    location = local.get_bucket_location(Bucket=name)
    assert shape(location) == shape(raw.get_bucket_location(Bucket=bucket))
    assert location["LocationConstraint"] is None
    listed = local.list_buckets()
    assert shape(listed) == shape(raw.list_buckets())
    assert [b["Name"] for b in listed["Buckets"]] == [name]
    assert set(listed["Buckets"][0]) == {"Name", "CreationDate"}
    assert isinstance(listed["Buckets"][0]["CreationDate"], datetime)
    assert set(listed["Owner"]) == {"DisplayName", "ID"}

    assert local.create_bucket(Bucket=name)["Location"] == f"/{name}"  # again: idempotent
    missing = fresh_name("missing")
    assert code_of(lambda: local.head_bucket(Bucket=missing)) == ("404", 404)
    assert code_of(lambda: local.get_bucket_location(Bucket=missing)) == ("NoSuchBucket", 404)
    assert local.delete_bucket(Bucket=missing)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert code_of(lambda: local.create_bucket(Bucket="Bad_Name")) == ("InvalidBucketName", 400)

    local.put_object(Bucket=name, Key="a.txt", Body=b"a")
    assert code_of(lambda: local.delete_bucket(Bucket=name)) == ("BucketNotEmpty", 409)
    local.delete_object(Bucket=name, Key="a.txt")
    assert local.delete_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert local.list_buckets()["Buckets"] == []


def test_local_list_buckets_pages(local: DeltaGliderClient) -> None:
    for name in ("abc-1", "abc-2", "abd-1"):
        local.create_bucket(Bucket=name)
    assert [b["Name"] for b in local.list_buckets(Prefix="abc")["Buckets"]] == ["abc-1", "abc-2"]
    first = local.list_buckets(MaxBuckets=2)
    assert [b["Name"] for b in first["Buckets"]] == ["abc-1", "abc-2"]
    rest = local.list_buckets(MaxBuckets=2, ContinuationToken=first["ContinuationToken"])
    assert [b["Name"] for b in rest["Buckets"]] == ["abd-1"] and "ContinuationToken" not in rest


def test_local_refusals(local: DeltaGliderClient) -> None:
    local.create_bucket(Bucket="loc-bucket")
    local.put_object(Bucket="loc-bucket", Key="rel/app-1.zip", Body=V1)
    with pytest.raises(NotSupportedError):
        local.put_bucket_acl(Bucket="loc-bucket", ACL="private")
    with pytest.raises(NotSupportedError):
        local.get_bucket_acl(Bucket="loc-bucket")
    with pytest.raises(NotSupportedError, match="ACL"):
        local.create_bucket(Bucket="loc-other", ACL="private")
    with pytest.raises(NotSupportedError, match="CreateBucketConfiguration"):
        local.create_bucket(
            Bucket="loc-other",
            CreateBucketConfiguration={"LocationConstraint": "eu-west-1", "Bucket": {}},
        )
    # A region asked for (the original README's example) is recorded and read back, as S3's.
    local.create_bucket(
        Bucket="loc-region", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    region = local.get_bucket_location(Bucket="loc-region")["LocationConstraint"]
    assert region == "eu-west-1"
    assert local.delete_bucket(Bucket="loc-region")["ResponseMetadata"]["HTTPStatusCode"] == 204
    local.create_bucket(Bucket="loc-region")  # made again without one: it has none
    assert local.get_bucket_location(Bucket="loc-region")["LocationConstraint"] is None
    local.create_bucket(Bucket="loc-other", CreateBucketConfiguration={})
    with pytest.raises(NotSupportedError, match="local"):
        local.generate_presigned_url(
            "get_object", Params={"Bucket": "loc-bucket", "Key": "rel/app-1.zip"}
        )
    purge = local.purge_temp_files("loc-bucket")
    assert purge == {
        "Deleted": 0, "Bytes": 0, "Kept": 0, "Errors": [], "DryRun": False, "Objects": []
    }  # fmt: skip


def test_local_delete_bucket_that_looks_empty(local: DeltaGliderClient) -> None:
    local.create_bucket(Bucket="loc-empty")
    put_delta(local, "loc-empty", "rel/app-1.zip", V1)
    local.put_object(Bucket="loc-empty", Key="keep.txt", Body=b"k")
    storage = local.storage
    storage.delete("loc-empty", "rel/app-1.zip.delta")  # the reference is orphaned
    storage.put(
        "loc-empty",
        f"{TMP}abc/app-1.zip",
        V1,
        metadata={"dg-expires-at": fmt.format_time()},
    )
    assert code_of(lambda: local.delete_bucket(Bucket="loc-empty")) == ("BucketNotEmpty", 409)
    assert storage.head("loc-empty", "rel/reference.bin").size == len(V1)  # nothing removed

    local.delete_object(Bucket="loc-empty", Key="keep.txt")
    assert local.list_objects_v2(Bucket="loc-empty")["KeyCount"] == 0
    local.delete_bucket(Bucket="loc-empty")
    assert local.list_buckets()["Buckets"] == []
